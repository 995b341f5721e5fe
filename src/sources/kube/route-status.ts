// Gateway API route status as the leader writes it: `status.parents[]`, one entry per parent
// meshpilot controls, beside the entries other controllers keep there.
import type { PushContext } from '../../model/push-context.ts';
import type { GatewayApiCondition, GatewayObjectStatus, RouteCondition, RouteParentStatus, RouteStatus } from '../../model/route-status.ts';
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

/** A parent entry meshpilot wrote: its controller name, or the one of the classes it serves. */
function isOurs(parent: unknown, names: ReadonlySet<string>): boolean {
  return isFields(parent) && typeof parent['controllerName'] === 'string' && (parent['controllerName'] === GATEWAY_CONTROLLER_NAME || names.has(parent['controllerName']));
}

/** A condition keeps the time it last changed status; a new or changed one takes `now`. */
function withTransitionTime(condition: RouteCondition | GatewayApiCondition, live: unknown, now: string): Record<string, unknown> {
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
  const names = new Set((route?.parents ?? []).map((parent) => parent.controllerName));
  const ours = live.filter((p) => isOurs(p, names));
  const wanted = (route?.parents ?? []).map((parent) => parentEntry(parent, ours, now.toISOString()));
  if (statusSignature(wanted) === statusSignature(ours)) return undefined;
  return { ...target.status, parents: [...live.filter((p) => !isOurs(p, names)), ...wanted] };
}

/** Gateways, GatewayClasses and XMeshes by API path (Gateway API objects of meshpilot's controllers only). */
export function gatewayStatusesByLocation(push: PushContext): Map<string, GatewayObjectStatus> {
  return new Map(push.gatewayStatuses.filter((status) => status.source.origin === 'kube').map((status) => [status.source.location, status]));
}

/**
 * The status to write for a Gateway, GatewayClass or XMesh of meshpilot's controllers, or undefined: not
 * ours (another controller's class or mesh), another generation, or already shown. Conditions keep the time they
 * last changed; the whole status is the controller's.
 */
export function gatewayStatusToWrite(target: StatusTarget, wanted: GatewayObjectStatus | undefined, now: Date): Record<string, unknown> | undefined {
  if (!wanted) return undefined;
  if (wanted.source.generation !== undefined && target.generation !== undefined && wanted.source.generation !== target.generation) return undefined;
  const at = now.toISOString();
  const live = target.status;
  const liveListeners = Array.isArray(live?.['listeners']) ? live['listeners'] : [];
  const { conditions, listeners, ...rest } = wanted.status;
  const status: Record<string, unknown> = {
    ...live,
    ...rest,
    conditions: conditions.map((c) => withTransitionTime(c, live, at)),
    ...(listeners
      ? {
          listeners: listeners.map((l) => ({
            ...l,
            conditions: l.conditions.map((c) => withTransitionTime(c, liveListeners.find((entry) => isFields(entry) && entry['name'] === l.name), at)),
          })),
        }
      : {}),
  };
  return statusSignature(status) === statusSignature(live ?? {}) ? undefined : status;
}
