// Valid rules that change nothing as written, reported the way Istio's analyzers report them:
// a Sidecar that hides every service, a subset that selects no pod, a VirtualService bound only
// to gateways (meshpilot serves sidecars and proxyless clients, not gateways).
import { hostMatches } from './destination-rules.ts';
import type { Rule, Sidecar, ValidationIssue, VirtualService } from './rules.ts';
import { isDestinationRule, isSidecar, isVirtualService } from './rules.ts';
import type { Endpoint, Service } from './service.ts';
import { labelsMatch, resolveShortName } from './service.ts';
import { egressHosts, importsService } from './sidecar.ts';

function ineffective(path: string, message: string): ValidationIssue {
  return { code: 'MP_RULE_INEFFECTIVE', severity: 'warning', path, message };
}

function gatewayOnly(rule: VirtualService): ValidationIssue[] {
  const gateways = rule.spec.gateways ?? [];
  if (gateways.length === 0 || gateways.includes('mesh')) return [];
  return [
    ineffective(
      'spec.gateways',
      `binds the rule only to gateway${gateways.length > 1 ? 's' : ''} ${gateways.join(', ')}, and meshpilot configures no gateways: no proxy it serves uses this rule; add "mesh" to gateways to apply it to sidecars`,
    ),
  ];
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

function emptySubsets(rule: Rule, endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>): ValidationIssue[] {
  if (!isDestinationRule(rule)) return [];
  const host = resolveShortName(rule.spec.host, rule.meta.namespace);
  const endpoints = [...endpointsByHost].filter(([hostname]) => hostMatches(host, hostname)).flatMap(([, list]) => list);
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
): ValidationIssue[] {
  if (isVirtualService(rule)) return gatewayOnly(rule);
  if (isSidecar(rule)) return hidesEverything(rule, services, rootNamespace);
  return emptySubsets(rule, endpointsByHost);
}
