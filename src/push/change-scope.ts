// Which resources a new PushContext may have changed, derived from the config keys that changed
// since the previous one: an endpoint change names only its ClusterLoadAssignments; a rule or
// service change re-checks clusters, listeners and routes; anything unknown is a full comparison.
import type { PushContext } from '../model/push-context.ts';
import type { Rule } from '../model/rules.ts';
import { isDestinationRule, isVirtualService } from '../model/rules.ts';
import type { Endpoint } from '../model/service.ts';
import { resolveShortName } from '../model/service.ts';
import type { ConfigChanges } from '../model/config-changes.ts';
import { changedHosts, CREDENTIAL_KIND, ENDPOINTS_KIND, isRuleChange, SERVICE_KIND } from '../model/config-changes.ts';
import { credentialResourceNames } from '../model/credentials.ts';
import { buildLoadAssignments } from '../xds/generate/endpoint.ts';
import { clusterName } from '../xds/generate/names.ts';
import { outboundTargets } from '../xds/generate/outbound.ts';
import { hostMatches } from '../model/destination-rules.ts';
import type { TypeScope } from '../xds/server/push-scope.ts';
import type { PushChange } from './proxy-scope.ts';
import { FULL_CHANGE } from './proxy-scope.ts';
import type { ResourceTypeUrl } from '../xds/type-urls.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../xds/type-urls.ts';

/** Rule kinds whose effect is limited to clusters and routes of their hosts. */
const SCOPED_RULE_KINDS = new Set(['VirtualService', 'DestinationRule']);

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
  readonly change: PushChange;
  /** Why, for the push log: 'full', or the kinds of change found. */
  readonly kinds: readonly string[];
}

const FULL = (why?: string): ChangeScope => ({ change: FULL_CHANGE, kinds: why === undefined ? ['full'] : ['full', why] });

/**
 * What `changes` (the config keys changed since `before` was built) may change in the resources
 * built from `after`. EDS names are exact: only assignments whose content hash differs are listed.
 */
export function computeChangeScope(before: PushContext | undefined, after: PushContext, changes: ConfigChanges | undefined): ChangeScope {
  if (!before || !changes) return FULL();
  const kinds: string[] = [];
  const scope = new Map<ResourceTypeUrl, TypeScope>();
  const edsHosts = new Set<string>();

  const services = changedHosts(changes, SERVICE_KIND);
  if (services.size > 0) kinds.push('services');
  for (const host of services) edsHosts.add(host);

  const endpointHosts = changedHosts(changes, ENDPOINTS_KIND);
  if (endpointHosts.size > 0) kinds.push('endpoints');
  for (const host of endpointHosts) edsHosts.add(host);
  // Workload identities and labels shape clusters (SANs, auto mTLS) and inbound listeners (PeerAuthentication).
  const identities = [...endpointHosts].some((host) => identityKey(before, host) !== identityKey(after, host));
  if (identities) kinds.push('identities');

  const sidecars = new Set<string>();
  const policies = new Set<string>();
  let scopedRules = 0;
  for (const [key, change] of changes) {
    if (!isRuleChange(change)) continue;
    const [old, rule] = [before.ruleStatus.get(key)?.rule, after.ruleStatus.get(key)?.rule];
    // A Sidecar change is a full comparison, but only for the proxies whose Sidecar changed (src/push/proxy-scope.ts).
    if (change.kind === 'Sidecar') {
      if (sidecars.size === 0) kinds.push('Sidecar');
      sidecars.add(key);
      continue;
    }
    // An AuthorizationPolicy changes only the inbound listener of the workloads it applies to (src/push/proxy-scope.ts).
    if (change.kind === 'AuthorizationPolicy') {
      if (policies.size === 0) kinds.push('AuthorizationPolicy');
      policies.add(key);
      continue;
    }
    const known = rule ?? old;
    if (!known || !SCOPED_RULE_KINDS.has(change.kind)) return FULL(`rule ${key}`);
    // A delegate's routes serve the hosts of whichever roots name it.
    if (isVirtualService(known) && (known.spec.hosts ?? []).length === 0) return FULL(`delegate ${key}`);
    kinds.push(change.kind);
    scopedRules++;
    for (const r of [rule, old]) {
      if (r) for (const host of ruleHosts(r)) edsHosts.add(host);
    }
  }
  // A Secret's SDS names go to the proxies subscribed to them; whether it can serve a certificate decides gateways' filter chains.
  const secretNames = new Set<string>();
  let gatewayCredentials = false;
  for (const change of changes.values()) {
    if (change.kind !== CREDENTIAL_KIND) continue;
    for (const name of credentialResourceNames(change.namespace, change.name)) secretNames.add(name);
    const shape = (push: PushContext): string => {
      const credential = push.credentials.get(change.namespace, change.name);
      return credential ? `${String(credential.certificateChain !== undefined)}:${String(credential.caCertificates !== undefined)}` : 'none';
    };
    if (shape(before) !== shape(after)) gatewayCredentials = true;
  }
  if (secretNames.size > 0) {
    kinds.push('Secret');
    scope.set(SECRET_TYPE, secretNames);
  }
  // Whole-set types are compared per proxy against what it holds, which is cheap when nothing differs.
  if (services.size > 0 || scopedRules > 0 || identities) {
    scope.set(CLUSTER_TYPE, 'all');
    scope.set(LISTENER_TYPE, 'all');
    scope.set(ROUTE_TYPE, 'all');
  }
  const edsNames = changedAssignments(before, after, edsHosts);
  for (const push of [before, after]) for (const name of namespaceSubsetClusters(push, edsHosts)) edsNames.add(name);
  if (edsNames.size > 0) scope.set(ENDPOINT_TYPE, edsNames);
  // A relabelled pod may change which policies select its workload, as an edited policy does.
  const anyPolicy = (push: PushContext): boolean => [...push.ruleStatus.values()].some((status) => status.rule.meta.kind === 'AuthorizationPolicy');
  const relabelled = endpointHosts.size > 0 && (anyPolicy(before) || anyPolicy(after));
  // Proxies under a Sidecar skip changes to hosts they cannot see (src/push/proxy-scope.ts).
  const change: PushChange = {
    scope,
    previous: before,
    hosts: edsHosts,
    ...(sidecars.size > 0 ? { sidecars } : {}),
    ...(policies.size > 0 || relabelled ? { policies } : {}),
    ...(gatewayCredentials ? { gatewayCredentials } : {}),
  };
  return { change, kinds };
}

/** Which identities and label sets serve `host` (a scale-up of the same workload keeps it). */
function identityKey(push: PushContext, host: string): string {
  const workload = (e: Endpoint): string => [e.serviceAccount ?? '', ...Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).sort()].join('\n');
  return [...new Set((push.endpointsByHost.get(host) ?? []).map(workload))].sort().join('\n\n');
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
