// Which part of a push concerns one proxy. A Sidecar hides services from the proxies it scopes;
// a change to a hidden service is neither sent to them nor even regenerated for them. A change to
// a Sidecar or an AuthorizationPolicy concerns only the proxies it applies to.
import type { Proxy } from '../model/proxy.ts';
import type { PushContext } from '../model/push-context.ts';
import { ruleKey } from '../model/rules.ts';
import { scopedPush } from '../model/sidecar-scope.ts';
import { outboundTargetByName } from '../xds/generate/outbound.ts';
import type { PushScope, TypeScope } from '../xds/server/push-scope.ts';
import { FULL_SCOPE } from '../xds/server/push-scope.ts';
import type { ResourceTypeUrl } from '../xds/type-urls.ts';
import { ENDPOINT_TYPE, LISTENER_TYPE, SECRET_TYPE } from '../xds/type-urls.ts';

/** What one push may have changed, with what the change analysis learned to narrow it per proxy. */
export interface PushChange {
  /** What may have changed for any proxy. */
  readonly scope: PushScope;
  /** The push before the change: a service a proxy saw then still concerns it. Absent for a first or full push. */
  readonly previous?: PushContext;
  /** Service hostnames (and rule hosts) whose change `scope` carries; absent: narrowed only by EDS name. */
  readonly hosts?: ReadonlySet<string>;
  /** Keys of the Sidecars that changed: a proxy whose Sidecar is (or was) one of them gets the full scope. */
  readonly sidecars?: ReadonlySet<string>;
  /** Keys of the AuthorizationPolicies that changed (set, maybe empty, when workloads were relabelled too): their proxies' listeners. */
  readonly policies?: ReadonlySet<string>;
  /** A Secret appeared, went, or gained or lost its certificate or CA: gateways' TLS filter chains may change. */
  readonly gatewayCredentials?: boolean;
}

/** A full comparison for every proxy. */
export const FULL_CHANGE: PushChange = { scope: FULL_SCOPE };

function sidecarChanged(changed: ReadonlySet<string>, previous: PushContext, push: PushContext, proxy: Proxy): boolean {
  const [before, after] = [previous.sidecarFor(proxy), push.sidecarFor(proxy)];
  if (!before || !after) return before !== after;
  const key = ruleKey(after.meta);
  return ruleKey(before.meta) !== key || changed.has(key);
}

function policiesChanged(changed: ReadonlySet<string>, previous: PushContext, push: PushContext, proxy: Proxy): boolean {
  const [before, after] = [previous, push].map((p) => p.authorizationPoliciesFor(proxy).map(({ policy }) => ruleKey(policy.meta)));
  if (!before || !after) return true;
  return before.length !== after.length || after.some((key, i) => key !== before[i] || changed.has(key));
}

/**
 * Whether a change to `host` may change what `proxy` is sent: a host no service has (deleted, or
 * a rule's wildcard), one the proxy sees now or saw before, or one in its own namespace (its
 * inbound listener and clusters come from its own workload's services).
 */
function concerns(host: string, push: PushContext, proxy: Proxy, views: readonly PushContext[]): boolean {
  const service = push.serviceByHost.get(host);
  if (!service || service.namespace === proxy.namespace) return true;
  return views.some((view) => view.serviceByHost.has(host));
}

/**
 * `change.scope` narrowed to what `proxy` may see: EDS names are kept when the proxy sees their
 * cluster now or saw it before; whole-set types only when one of the changed hosts concerns the
 * proxy (always, when the hosts are not known). A proxy without a Sidecar gets the scope as is.
 */
function visibleScope(change: PushChange, push: PushContext, proxy: Proxy): PushScope {
  const visible = scopedPush(push, proxy);
  if (visible === push) return change.scope;
  const views = change.previous ? [visible, scopedPush(change.previous, proxy)] : [visible];
  const anyConcerns = !change.hosts || [...change.hosts].some((host) => concerns(host, push, proxy, views));
  const everyCluster = outboundTargetByName(push);
  const seenClusters = views.map((view) => outboundTargetByName(view));
  const narrowed = new Map<ResourceTypeUrl, TypeScope>();
  for (const [typeUrl, typeScope] of change.scope) {
    if (typeUrl === ENDPOINT_TYPE && typeScope !== 'all') {
      const names = [...typeScope].filter((name) => !everyCluster.has(name) || seenClusters.some((clusters) => clusters.has(name)));
      if (names.length > 0) narrowed.set(typeUrl, new Set(names));
    } else if (anyConcerns || typeUrl === SECRET_TYPE) {
      // Secrets are asked for by name: a proxy not subscribed to a changed one is sent nothing anyway.
      narrowed.set(typeUrl, typeScope);
    }
  }
  return narrowed;
}

/**
 * What `proxy` is to be compared against after `change`: the full scope when its Sidecar changed,
 * its listeners on top of what it sees when its AuthorizationPolicies changed, else what it sees.
 */
export function scopeForProxy(change: PushChange, push: PushContext, proxy: Proxy): PushScope {
  const { previous } = change;
  if (previous && change.sidecars && sidecarChanged(change.sidecars, previous, push, proxy)) return FULL_SCOPE;
  const scope = visibleScope(change, push, proxy);
  const listeners = (change.gatewayCredentials === true && proxy.type === 'router') || (previous !== undefined && change.policies !== undefined && policiesChanged(change.policies, previous, push, proxy));
  return listeners ? new Map([...scope, [LISTENER_TYPE, 'all']]) : scope;
}

/** The most any proxy may be sent for `change` (what the push log shows; empty: nothing to send). */
export function widestScope(change: PushChange): PushScope {
  if (change.sidecars) return FULL_SCOPE;
  return change.policies || change.gatewayCredentials ? new Map([...change.scope, [LISTENER_TYPE, 'all']]) : change.scope;
}
