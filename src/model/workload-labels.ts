// The labels of the workload behind a proxy, by which workload selectors (Sidecar,
// AuthorizationPolicy) pick it: its node metadata's LABELS, else its pod's, found by its IP.
import type { Proxy } from './proxy.ts';
import type { Endpoint } from './service.ts';

export type LabelsBy = Map<string, Readonly<Record<string, string>>>;

export interface NamespaceWorkloads {
  readonly byName: LabelsBy;
  readonly byAddress: LabelsBy;
}

/** The workloads behind endpoints, per namespace: their labels by name (to find overlapping selectors) and by address. */
export function workloadsByNamespace(endpoints: Iterable<Endpoint>): Map<string, NamespaceWorkloads> {
  const out = new Map<string, NamespaceWorkloads>();
  for (const endpoint of endpoints) {
    const workload = endpoint.workload;
    const slash = workload?.indexOf('/') ?? -1;
    if (!workload || slash <= 0) continue;
    const namespace = workload.slice(0, slash);
    let workloads = out.get(namespace);
    if (!workloads) out.set(namespace, (workloads = { byName: new Map(), byAddress: new Map() }));
    workloads.byName.set(workload, endpoint.labels);
    workloads.byAddress.set(endpoint.address, endpoint.labels);
  }
  return out;
}

/** A proxy whose node metadata has no LABELS (an Envoy from `meshpilot bootstrap`) is known by its pod's labels. */
export function workloadLabels(proxy: Pick<Proxy, 'namespace' | 'labels' | 'ipAddresses'>, workloads: ReadonlyMap<string, NamespaceWorkloads>): Readonly<Record<string, string>> {
  if (Object.keys(proxy.labels).length > 0 || proxy.namespace === undefined) return proxy.labels;
  const byAddress = workloads.get(proxy.namespace)?.byAddress;
  for (const ip of proxy.ipAddresses) {
    const labels = byAddress?.get(ip);
    if (labels) return labels;
  }
  return {};
}
