// Which part of a push concerns one proxy. A Sidecar hides services from the proxies it scopes;
// a change to a hidden service is neither sent to them nor even regenerated for them.
import type { Proxy } from '../model/proxy.ts';
import type { PushContext } from '../model/push-context.ts';
import { ruleKey } from '../model/rules.ts';
import { scopedPush } from '../model/sidecar-scope.ts';
import { outboundTargetByName } from './generate/outbound.ts';
import type { PushScope, TypeScope } from './server/push-scope.ts';
import { FULL_SCOPE, mergeTypeScope } from './server/push-scope.ts';
import type { ResourceTypeUrl } from './type-urls.ts';
import { ENDPOINT_TYPE, LISTENER_TYPE } from './type-urls.ts';

/** What the change analysis learned about a scope, kept beside it so the PushScope type stays a plain map. */
export interface ScopeOrigin {
  /** Service hostnames (and rule hosts) whose change the scope carries. */
  readonly hosts: ReadonlySet<string>;
  /** The push before the change: a service the proxy saw then still concerns it. */
  readonly previous: PushContext;
  /** Set when Sidecars or AuthorizationPolicies changed: this scope for the proxies `changedFor` names, `otherwise` for the others. */
  readonly otherwise?: PushScope;
  readonly changedFor?: (previous: PushContext, push: PushContext, proxy: Proxy) => boolean;
}

const origins = new WeakMap<PushScope, ScopeOrigin>();

/** Attaches the hosts a scope's changes came from; a scope without them is never narrowed but by EDS name. */
export function withOrigin(scope: PushScope, origin: ScopeOrigin): PushScope {
  origins.set(scope, origin);
  return scope;
}

/** A full scope for the proxies whose Sidecar (which one, or its spec) changed; `others` for the rest. */
export function withSidecarChange(others: PushScope, previous: PushContext): PushScope {
  const full = new Map(FULL_SCOPE);
  origins.set(full, { hosts: new Set(), previous, otherwise: others, changedFor: sidecarChanged });
  return full;
}

/** The AuthorizationPolicies that apply to a proxy, as comparable text. */
function appliedPolicies(push: PushContext, proxy: Proxy): string {
  return JSON.stringify(push.authorizationPoliciesFor(proxy).map(({ policy }) => [ruleKey(policy.meta), policy.spec]));
}

function authorizationChanged(previous: PushContext, push: PushContext, proxy: Proxy): boolean {
  return appliedPolicies(previous, proxy) !== appliedPolicies(push, proxy);
}

/**
 * Listeners for the proxies whose AuthorizationPolicies (which ones, or their specs) changed, on
 * top of what `others` holds for them; `others` alone for the rest, which are sent nothing more.
 */
export function withAuthorizationChange(others: PushScope, previous: PushContext): PushScope {
  const listeners = new Map(others);
  listeners.set(LISTENER_TYPE, 'all');
  origins.set(listeners, { hosts: new Set(), previous, otherwise: others, changedFor: authorizationChanged });
  return listeners;
}

function sidecarChanged(previous: PushContext, push: PushContext, proxy: Proxy): boolean {
  const [before, after] = [previous.sidecarFor(proxy), push.sidecarFor(proxy)];
  if (before === after) return false;
  if (!before || !after) return true;
  return ruleKey(before.meta) !== ruleKey(after.meta) || JSON.stringify(before.spec) !== JSON.stringify(after.spec);
}

function sees(view: PushContext, host: string): boolean {
  return view.serviceByHost.has(host);
}

/**
 * Whether a change to `host` may change what `proxy` is sent: a host no service has (deleted, or
 * a rule's wildcard), one the proxy sees now or saw before, or one in its own namespace (its
 * inbound listener and clusters come from its own workload's services).
 */
function concerns(host: string, push: PushContext, proxy: Proxy, views: readonly PushContext[]): boolean {
  const service = push.serviceByHost.get(host);
  if (!service || service.namespace === proxy.namespace) return true;
  return views.some((view) => sees(view, host));
}

/**
 * Narrows `scope` to what `proxy` may see. After a Sidecar change, a proxy whose Sidecar changed
 * gets the full scope and the others what the other changes concern. Without a Sidecar the rest
 * of the scope is returned as is. EDS
 * names are kept when the proxy sees their cluster now or saw it before; whole-set types only
 * when one of the changed hosts concerns the proxy (always, when the hosts are not known).
 */
export function scopeForProxy(scope: PushScope, push: PushContext, proxy: Proxy): PushScope {
  const origin = origins.get(scope);
  if (origin?.otherwise) {
    const rest = scopeForProxy(origin.otherwise, push, proxy);
    if (!origin.changedFor?.(origin.previous, push, proxy)) return rest;
    const merged = new Map(rest);
    for (const [typeUrl, typeScope] of scope) merged.set(typeUrl, mergeTypeScope(rest.get(typeUrl), typeScope));
    return merged;
  }
  const visible = scopedPush(push, proxy);
  if (visible === push) return scope;
  const views = origin ? [visible, scopedPush(origin.previous, proxy)] : [visible];
  const anyConcerns = !origin || [...origin.hosts].some((host) => concerns(host, push, proxy, views));
  const everyCluster = outboundTargetByName(push);
  const seenClusters = views.map((view) => outboundTargetByName(view));
  const narrowed = new Map<ResourceTypeUrl, TypeScope>();
  for (const [typeUrl, typeScope] of scope) {
    if (typeUrl === ENDPOINT_TYPE && typeScope !== 'all') {
      const names = [...typeScope].filter((name) => !everyCluster.has(name) || seenClusters.some((clusters) => clusters.has(name)));
      if (names.length > 0) narrowed.set(typeUrl, new Set(names));
    } else if (anyConcerns) {
      narrowed.set(typeUrl, typeScope);
    }
  }
  return narrowed;
}
