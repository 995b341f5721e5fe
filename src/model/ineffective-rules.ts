// Valid rules that change nothing as written, reported the way Istio's analyzers report them:
// a Sidecar that hides every service, a subset that selects no pod, a VirtualService bound only
// to a Gateway that serves none of its hosts.
import { hostMatches } from './destination-rules.ts';
import type { GatewayIndex } from './gateways.ts';
import { intersectHosts, MESH_GATEWAY, resolveGatewayName, sanitizeHosts, serverHostsFor } from './gateways.ts';
import type { Rule, Sidecar, ValidationIssue, VirtualService } from './rules.ts';
import { isDestinationRule, isSidecar, isVirtualService } from './rules.ts';
import type { Endpoint, Service } from './service.ts';
import { labelsMatch, resolveShortName } from './service.ts';
import { egressHosts, importsService } from './sidecar.ts';

function ineffective(path: string, message: string): ValidationIssue {
  return { code: 'MP_RULE_INEFFECTIVE', severity: 'warning', path, message };
}

/**
 * Each gateway the rule names that does not exist (Istio's analyzer: referenced resource not found),
 * and each that exists but serves none of the rule's hosts (no server host intersects them).
 */
function gatewayReferences(rule: VirtualService, gateways: GatewayIndex): ValidationIssue[] {
  const hosts = (rule.spec.hosts ?? []).map((host) => resolveShortName(host, rule.meta.namespace));
  if (hosts.length === 0) return [];
  return (rule.spec.gateways ?? []).flatMap((written, index): ValidationIssue[] => {
    if (written === MESH_GATEWAY) return [];
    const name = resolveGatewayName(written, rule.meta.namespace);
    const gateway = gateways.byName.get(name);
    const path = `spec.gateways[${String(index)}]`;
    if (!gateway) {
      return [{ code: 'MP_REF_UNKNOWN', severity: 'warning', path, message: `Gateway ${name} does not exist, so no gateway proxy serves this rule through it: create the Gateway, or name one as namespace/name` }];
    }
    const serverHosts = gateway.spec.servers.flatMap((server) => serverHostsFor(sanitizeHosts(server.hosts, gateway.meta.namespace), rule.meta.namespace));
    if (intersectHosts(serverHosts, hosts).length > 0) return [];
    return [ineffective(path, `none of its hosts (${hosts.join(', ')}) is a host the servers of Gateway ${name} expose to namespace ${rule.meta.namespace} (${[...new Set(serverHosts)].join(', ') || 'none'}): the gateway serves nothing of this rule; add the host to a server, or fix the rule's hosts`)];
  });
}

function hidesEverything(sidecar: Sidecar, services: readonly Service[], rootNamespace: string): ValidationIssue[] {
  const listeners = sidecar.spec.egress ?? [];
  if (listeners.length === 0 || services.length === 0) return [];
  const isRootDefault = sidecar.meta.namespace === rootNamespace && !sidecar.spec.workloadSelector?.labels;
  // A root default applies to proxies of every namespace, so `./` can mean any of them.
  const namespaces = isRootDefault ? [...new Set(services.map((s) => s.namespace))] : [sidecar.meta.namespace];
  const seesSomething = listeners.some((listener) =>
    namespaces.some((namespace) => {
      const hosts = egressHosts(listener.hosts, namespace);
      return services.some((service) => importsService(hosts, service));
    }),
  );
  if (seesSomething) return [];
  const scope = isRootDefault ? `every namespace without its own Sidecar (it is the default in ${rootNamespace})` : `the proxies it applies to in ${sidecar.meta.namespace}`;
  return [ineffective('spec.egress', `its egress hosts match no service in the registry: ${scope} can reach no service; check the namespace/host pairs (e.g. ./* or istio-system/*)`)];
}

/** An exact host is one lookup; only a wildcard walks every host (every push runs this for each DestinationRule). */
function endpointsMatching(host: string, endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>): readonly Endpoint[] {
  if (!host.startsWith('*')) return endpointsByHost.get(host) ?? [];
  const matching: Endpoint[] = [];
  endpointsByHost.forEach((list, hostname) => {
    if (hostMatches(host, hostname)) matching.push(...list);
  });
  return matching;
}

function emptySubsets(rule: Rule, endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>): ValidationIssue[] {
  if (!isDestinationRule(rule)) return [];
  const host = resolveShortName(rule.spec.host, rule.meta.namespace);
  const endpoints = endpointsMatching(host, endpointsByHost);
  // Without labelled workloads (external DNS names, no pods yet) there is nothing to compare with.
  if (!endpoints.some((endpoint) => Object.keys(endpoint.labels).length > 0)) return [];
  return (rule.spec.subsets ?? []).flatMap((subset, index) => {
    const labels = subset.labels ?? {};
    if (Object.keys(labels).length === 0 || endpoints.some((endpoint) => labelsMatch(labels, endpoint.labels))) return [];
    const wanted = Object.entries(labels).map(([key, value]) => `${key}=${value}`).join(',');
    return [ineffective(`spec.subsets[${index}].labels`, `subset "${subset.name}" selects no pod of ${host} (no endpoint has ${wanted}): traffic routed to it fails with 503; fix the labels or deploy the version`)];
  });
}

/** Warnings for each rule that is valid but changes nothing, by rule key. */
export function ineffectiveRuleIssues(
  rule: Rule,
  services: readonly Service[],
  endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>,
  rootNamespace: string,
  gateways: GatewayIndex,
): ValidationIssue[] {
  if (isVirtualService(rule)) return gatewayReferences(rule, gateways);
  if (isSidecar(rule)) return hidesEverything(rule, services, rootNamespace);
  return emptySubsets(rule, endpointsByHost);
}
