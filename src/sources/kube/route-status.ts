// Gateway API route status as the leader writes it: `status.parents[]`, one entry per parent
// meshpilot controls, beside the entries other controllers keep there.
import type { PushContext } from '../../model/push-context.ts';
import type { RouteCondition, RouteParentStatus, RouteStatus } from '../../model/route-status.ts';
import { GATEWAY_CONTROLLER_NAME } from '../../model/route-status.ts';
import { isFields } from '../object-fields.ts';
import type { StatusTarget } from './kube-source.ts';
import { canonicalJson } from './validation-messages.ts';

/** The routes read from the cluster, by API path. */
export function routeStatusesByLocation(push: PushContext): Map<string, RouteStatus> {
  return new Map(push.routeStatuses.filter((route) => route.source.origin === 'kube').map((route) => [route.source.location, route]));
}

/** A status without condition times: two writes that differ only in when are the same write. */
export function statusSignature(status: unknown): string {
  return canonicalJson(status).replace(/"lastTransitionTime":"[^"]*",?/g, '');
}

function liveParents(status: StatusTarget['status']): unknown[] {
  const parents = status?.['parents'];
  return Array.isArray(parents) ? parents : [];
}

function isOurs(parent: unknown): boolean {
  return isFields(parent) && parent['controllerName'] === GATEWAY_CONTROLLER_NAME;
}

/** A condition keeps the time it last changed status; a new or changed one takes `now`. */
function withTransitionTime(condition: RouteCondition, live: unknown, now: string): Record<string, unknown> {
  const liveConditions = isFields(live) && Array.isArray(live['conditions']) ? live['conditions'] : [];
  const same = liveConditions.find((c): c is Record<string, unknown> => isFields(c) && c['type'] === condition.type && c['status'] === condition.status);
  const time = same?.['lastTransitionTime'];
  return { ...condition, lastTransitionTime: typeof time === 'string' ? time : now };
}

function parentEntry(parent: RouteParentStatus, live: readonly unknown[], now: string): Record<string, unknown> {
  const ref = canonicalJson(parent.parentRef);
  const previous = live.find((p) => isFields(p) && canonicalJson(p['parentRef']) === ref);
  return { parentRef: parent.parentRef, controllerName: parent.controllerName, conditions: parent.conditions.map((c) => withTransitionTime(c, previous, now)) };
}

/**
 * The status to write for a route, or undefined: the push is about another generation (a newer
 * one will come), or the route already shows exactly these parents. Parents other controllers
 * wrote are kept, as are the status's other fields.
 */
export function routeStatusToWrite(target: StatusTarget, route: RouteStatus | undefined, now: Date): Record<string, unknown> | undefined {
  if (route?.source.generation !== undefined && target.generation !== undefined && route.source.generation !== target.generation) return undefined;
  const live = liveParents(target.status);
  const ours = live.filter(isOurs);
  const wanted = (route?.parents ?? []).map((parent) => parentEntry(parent, ours, now.toISOString()));
  if (statusSignature(wanted) === statusSignature(ours)) return undefined;
  return { ...target.status, parents: [...live.filter((p) => !isOurs(p)), ...wanted] };
}
