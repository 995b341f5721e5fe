// Istio's Sidecar resource: which one applies to a proxy (workload selector, then its namespace,
// then the root namespace), and what one egress listener's `namespace/dnsName` hosts import.
import { hostMatches } from './destination-rules.ts';
import type { Proxy } from './proxy.ts';
import type { Service } from './service.ts';
import type { WorkloadIndex } from './workload-labels.ts';
import { labelsMatch } from './service.ts';
import type { Rule, Sidecar, ValidationIssue } from './rules.ts';
import { ruleKey } from './rules.ts';

/** `./` in an egress host: the namespace of the proxy the Sidecar applies to. */
export const CURRENT_NAMESPACE = '.';
/** The namespace part `*` of an egress host: any namespace. */
export const ANY_NAMESPACE = '*';

export interface EgressHost {
  readonly namespace: string;
  readonly dnsName: string;
}

/** Splits `namespace/dnsName`; undefined when either part is missing. */
export function parseEgressHost(text: string): EgressHost | undefined {
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1) return undefined;
  return { namespace: text.slice(0, slash), dnsName: text.slice(slash + 1) };
}

/** One egress listener's hosts by namespace, with `.` read as the proxy's namespace (`~` matches no namespace). */
export type EgressHosts = ReadonlyMap<string, readonly string[]>;

export function egressHosts(hosts: readonly string[], proxyNamespace: string): EgressHosts {
  const byNamespace = new Map<string, string[]>();
  for (const text of hosts) {
    const host = parseEgressHost(text);
    if (!host) continue;
    const namespace = host.namespace === CURRENT_NAMESPACE ? proxyNamespace : host.namespace;
    byNamespace.set(namespace, [...(byNamespace.get(namespace) ?? []), host.dnsName]);
  }
  return byNamespace;
}

/**
 * Istio's import rule for services: hosts written for the service's own namespace decide alone;
 * only when there are none do the hosts of namespace `*` apply.
 */
export function importsService(hosts: EgressHosts, service: Pick<Service, 'hostname' | 'namespace'>): boolean {
  const patterns = hosts.get(service.namespace) ?? hosts.get(ANY_NAMESPACE) ?? [];
  return patterns.some((pattern) => hostMatches(pattern, service.hostname));
}

/** A VirtualService is imported when its namespace (or `*`) lists a host that overlaps one of its hosts. */
export function importsVirtualService(hosts: EgressHosts, namespace: string, vsHosts: readonly string[]): boolean {
  const overlaps = (patterns: readonly string[] | undefined): boolean =>
    (patterns ?? []).some((pattern) => vsHosts.some((host) => hostMatches(pattern, host) || hostMatches(host, pattern)));
  return overlaps(hosts.get(namespace)) || overlaps(hosts.get(ANY_NAMESPACE));
}

export interface SidecarStatusSink {
  set(key: string, status: { rule: Rule; issues: readonly ValidationIssue[]; applied: boolean }): unknown;
}

export interface SidecarIndex {
  /** How many Sidecars are applied (0: no proxy is scoped). */
  readonly size: number;
  /** The Sidecar that scopes `proxy`, by Istio's precedence; undefined for gateways and proxies without a namespace. */
  forProxy(proxy: Pick<Proxy, 'type' | 'namespace' | 'labels' | 'ipAddresses'>): Sidecar | undefined;
}

interface NamespaceSidecars {
  readonly selecting: Sidecar[];
  fallback?: Sidecar;
}

function selectorOf(sidecar: Sidecar): Readonly<Record<string, string>> | undefined {
  const labels = sidecar.spec.workloadSelector?.labels;
  return labels && Object.keys(labels).length > 0 ? labels : undefined;
}

function describe(sidecar: Sidecar): string {
  return `Sidecar ${sidecar.meta.namespace}/${sidecar.meta.name}`;
}

/**
 * Indexes Sidecars (sorted oldest first) and records each one's status: a second Sidecar without
 * workloadSelector in a namespace is not applied, and a newer selector that picks a workload an
 * older one already picks is reported, as Istio's analyzer does (the oldest wins in both cases).
 */
export function indexSidecars(sidecars: readonly Sidecar[], rootNamespace: string, workloads: WorkloadIndex, status: SidecarStatusSink): SidecarIndex {
  const byNamespace = new Map<string, NamespaceSidecars>();
  let size = 0;
  for (const sidecar of sidecars) {
    const namespace = sidecar.meta.namespace;
    let entry = byNamespace.get(namespace);
    if (!entry) byNamespace.set(namespace, (entry = { selecting: [] }));
    const selector = selectorOf(sidecar);
    const issues: ValidationIssue[] = [];
    if (!selector) {
      if (entry.fallback) {
        issues.push({
          code: 'MP_SIDECAR_CONFLICT',
          severity: 'warning',
          path: 'spec.workloadSelector',
          message: `${describe(entry.fallback)} also has no workloadSelector and is older, so it applies to namespace ${namespace}: give this one a workloadSelector, or merge the two and remove one`,
        });
        status.set(ruleKey(sidecar.meta), { rule: sidecar, issues, applied: false });
        continue;
      }
      entry.fallback = sidecar;
    } else {
      for (const [workload, labels] of workloads.inNamespace(namespace)) {
        if (!labelsMatch(selector, labels)) continue;
        const older = entry.selecting.find((other) => labelsMatch(selectorOf(other) ?? {}, labels));
        if (!older) continue;
        issues.push({
          code: 'MP_SIDECAR_CONFLICT',
          severity: 'warning',
          path: 'spec.workloadSelector.labels',
          message: `also selects workload ${workload}, which the older ${describe(older)} selects and scopes: make the selectors select different pods`,
        });
      }
      entry.selecting.push(sidecar);
    }
    size++;
    status.set(ruleKey(sidecar.meta), { rule: sidecar, issues, applied: true });
  }
  const meshDefault = byNamespace.get(rootNamespace)?.fallback;
  const labelsOf = (proxy: Pick<Proxy, 'namespace' | 'labels' | 'ipAddresses'>) => workloads.labelsOf(proxy);
  return {
    size,
    forProxy(proxy) {
      if (size === 0 || proxy.type === 'router' || proxy.namespace === undefined) return undefined;
      const entry = byNamespace.get(proxy.namespace);
      const labels = entry && entry.selecting.length > 0 ? labelsOf(proxy) : {};
      const selected = Object.keys(labels).length > 0 ? entry?.selecting.find((sidecar) => labelsMatch(selectorOf(sidecar) ?? {}, labels)) : undefined;
      return selected ?? entry?.fallback ?? meshDefault;
    },
  };
}
