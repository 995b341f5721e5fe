// Which resources a new PushContext may have changed, found by comparing it with the previous
// one: an endpoint change names only its ClusterLoadAssignments; a rule or service change
// re-checks clusters, listeners and routes; anything unknown is a full comparison.
import type { PushContext } from '../model/push-context.ts';
import type { Rule } from '../model/rules.ts';
import { isDestinationRule, isVirtualService } from '../model/rules.ts';
import { resolveShortName } from '../model/service.ts';
import type { SourceSnapshot } from '../model/store.ts';
import { buildLoadAssignments } from '../xds/generate/endpoint.ts';
import { clusterName } from '../xds/generate/names.ts';
import { outboundTargets } from '../xds/generate/outbound.ts';
import { hostMatches } from '../model/destination-rules.ts';
import { withAuthorizationChange, withOrigin, withSidecarChange } from '../xds/proxy-scope.ts';
import type { PushScope, TypeScope } from '../xds/server/push-scope.ts';
import { FULL_SCOPE } from '../xds/server/push-scope.ts';
import type { ResourceTypeUrl } from '../xds/type-urls.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../xds/type-urls.ts';

/** Snapshot fields this analysis understands; a change in any other field means a full push. */
const KNOWN_SNAPSHOT_FIELDS = new Set(['services', 'endpoints', 'rules', 'rejected']);
/** Rule kinds whose effect is limited to clusters and routes of their hosts. */
const SCOPED_RULE_KINDS = new Set(['VirtualService', 'DestinationRule']);


function sameJson(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

function sameList<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !sameJson(a[i], b[i])) return false;
  return true;
}

function changedKeys<V>(before: ReadonlyMap<string, V>, after: ReadonlyMap<string, V>, same: (a: V, b: V) => boolean): Set<string> {
  const changed = new Set<string>();
  for (const [key, value] of after) {
    const old = before.get(key);
    if (old === undefined || !same(old, value)) changed.add(key);
  }
  for (const key of before.keys()) if (!after.has(key)) changed.add(key);
  return changed;
}

function ruleHosts(rule: Rule): string[] {
  const ns = rule.meta.namespace;
  if (isDestinationRule(rule)) return [resolveShortName(rule.spec.host, ns)];
  if (!isVirtualService(rule)) return [];
  const destinations = [
    ...(rule.spec.http ?? []).flatMap((h) => [...(h.route ?? []).map((r) => r.destination.host), ...(h.mirror ? [h.mirror.host] : [])]),
    ...(rule.spec.tcp ?? []).flatMap((t) => (t.route ?? []).map((r) => r.destination.host)),
  ];
  return [...(rule.spec.hosts ?? []), ...destinations].map((host) => resolveShortName(host, ns));
}

export interface ChangeScope {
  readonly scope: PushScope;
  /** Why, for the push log: 'full', or the kinds of change found. */
  readonly kinds: readonly string[];
}

/**
 * Compares two pushes built from `beforeSnapshot` and `afterSnapshot`. EDS names are exact:
 * only assignments whose content hash differs are listed.
 */
export function computeChangeScope(
  before: PushContext | undefined,
  after: PushContext,
  beforeSnapshot: SourceSnapshot | undefined,
  afterSnapshot: SourceSnapshot,
): ChangeScope {
  if (!before || !beforeSnapshot) return { scope: FULL_SCOPE, kinds: ['full'] };
  for (const key of new Set([...Object.keys(beforeSnapshot), ...Object.keys(afterSnapshot)])) {
    if (KNOWN_SNAPSHOT_FIELDS.has(key)) continue;
    const a = (beforeSnapshot as unknown as Record<string, unknown>)[key];
    const b = (afterSnapshot as unknown as Record<string, unknown>)[key];
    if (a !== b && !sameJson(a, b)) return { scope: FULL_SCOPE, kinds: ['full', key] };
  }
  const kinds: string[] = [];
  const scope = new Map<ResourceTypeUrl, TypeScope>();
  const edsHosts = new Set<string>();

  const services = changedKeys(before.serviceByHost, after.serviceByHost, sameJson);
  if (services.size > 0) kinds.push('services');
  for (const host of services) edsHosts.add(host);

  const endpointHosts = changedKeys(before.endpointsByHost, after.endpointsByHost, (a, b) => sameList(a, b));
  if (endpointHosts.size > 0) kinds.push('endpoints');
  for (const host of endpointHosts) edsHosts.add(host);
  // Workload identities and labels shape clusters (SANs, auto mTLS) and inbound listeners (PeerAuthentication).
  const identities = [...endpointHosts].some((host) => identityKey(before, host) !== identityKey(after, host));
  if (identities) kinds.push('identities');

  const beforeRules = new Map([...before.ruleStatus].map(([key, status]) => [key, status.rule]));
  const afterRules = new Map([...after.ruleStatus].map(([key, status]) => [key, status.rule]));
  const rules = changedKeys(beforeRules, afterRules, (a, b) => a === b || sameJson(a.spec, b.spec));
  let sidecars = 0;
  let policies = 0;
  for (const key of rules) {
    const rule = afterRules.get(key) ?? beforeRules.get(key);
    // A Sidecar change is a full comparison, but only for the proxies whose Sidecar changed (src/xds/proxy-scope.ts).
    if (rule?.meta.kind === 'Sidecar') {
      if (sidecars++ === 0) kinds.push('Sidecar');
      continue;
    }
    // An AuthorizationPolicy changes only the inbound listener of the workloads it applies to (src/xds/proxy-scope.ts).
    if (rule?.meta.kind === 'AuthorizationPolicy') {
      if (policies++ === 0) kinds.push('AuthorizationPolicy');
      continue;
    }
    if (!rule || !SCOPED_RULE_KINDS.has(rule.meta.kind)) return { scope: FULL_SCOPE, kinds: ['full', `rule ${key}`] };
    // A delegate's routes serve the hosts of whichever roots name it.
    if (isVirtualService(rule) && (rule.spec.hosts ?? []).length === 0) return { scope: FULL_SCOPE, kinds: ['full', `delegate ${key}`] };
    kinds.push(rule.meta.kind);
    for (const r of [afterRules.get(key), beforeRules.get(key)]) {
      if (r) for (const host of ruleHosts(r)) edsHosts.add(host);
    }
  }
  // Whole-set types are compared per proxy against what it holds, which is cheap when nothing differs.
  if (services.size > 0 || rules.size > sidecars + policies || identities) {
    scope.set(CLUSTER_TYPE, 'all');
    scope.set(LISTENER_TYPE, 'all');
    scope.set(ROUTE_TYPE, 'all');
  }
  const edsNames = changedAssignments(before, after, edsHosts);
  for (const push of [before, after]) for (const name of namespaceSubsetClusters(push, edsHosts)) edsNames.add(name);
  if (edsNames.size > 0) scope.set(ENDPOINT_TYPE, edsNames);
  // Proxies under a Sidecar skip changes to hosts they cannot see (src/xds/proxy-scope.ts).
  const hostScope = withOrigin(scope, { hosts: edsHosts, previous: before });
  // A relabelled pod may change which policies select its workload, as an edited policy does.
  const anyPolicy = (push: PushContext): boolean => [...push.ruleStatus.values()].some((status) => status.rule.meta.kind === 'AuthorizationPolicy');
  const policyScope = policies > 0 || (endpointHosts.size > 0 && (anyPolicy(before) || anyPolicy(after))) ? withAuthorizationChange(hostScope, before) : hostScope;
  return { scope: sidecars > 0 ? withSidecarChange(policyScope, before) : policyScope, kinds };
}

/** Which identities and label sets serve `host` (a scale-up of the same workload keeps it). */
function identityKey(push: PushContext, host: string): string {
  const kinds = new Set((push.endpointsByHost.get(host) ?? []).map((e) => JSON.stringify([e.serviceAccount ?? '', e.labels])));
  return [...kinds].sort().join('\n');
}

/**
 * Subset clusters of `hosts` by every DestinationRule: a rule outside the service's namespace
 * gives that namespace's proxies its own subsets, which each proxy compares with what it holds.
 */
function namespaceSubsetClusters(push: PushContext, hosts: ReadonlySet<string>): Set<string> {
  const names = new Set<string>();
  if (hosts.size === 0) return names;
  for (const { rule } of push.ruleStatus.values()) {
    if (!isDestinationRule(rule)) continue;
    const pattern = resolveShortName(rule.spec.host, rule.meta.namespace);
    for (const host of hosts) {
      const service = push.serviceByHost.get(host);
      if (!service || !hostMatches(pattern, host)) continue;
      for (const subset of rule.spec.subsets ?? []) {
        for (const port of service.ports) names.add(clusterName(port.port, host, subset.name));
      }
    }
  }
  return names;
}

/** ClusterLoadAssignments of `hosts` whose bytes differ between the two pushes. */
function changedAssignments(before: PushContext, after: PushContext, hosts: ReadonlySet<string>): Set<string> {
  if (hosts.size === 0) return new Set();
  const names = new Set<string>();
  for (const push of [before, after]) for (const t of outboundTargets(push)) if (hosts.has(t.service.hostname)) names.add(t.clusterName);
  const list = [...names];
  // The whole push's assignments, which every proxy's are (or, for a namespace's own subsets, are listed anyway).
  const old = new Map(buildLoadAssignments(before, list).map((r) => [r.name, r.version]));
  const changed = new Set<string>();
  const present = new Set<string>();
  for (const resource of buildLoadAssignments(after, list)) {
    present.add(resource.name);
    if (old.get(resource.name) !== resource.version) changed.add(resource.name);
  }
  for (const name of old.keys()) if (!present.has(name)) changed.add(name);
  return changed;
}
