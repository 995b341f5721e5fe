// The labels of the workload behind a proxy, by which workload selectors (Sidecar,
// PeerAuthentication, AuthorizationPolicy, gRPC server modes) pick it: its node metadata's
// LABELS, else those of the pod (or WorkloadEntry) at one of its addresses in its namespace.
// Built once per push; every selector reads it here.
import type { Proxy } from './proxy.ts';
import type { Endpoint } from './service.ts';

type Labels = Readonly<Record<string, string>>;

export interface WorkloadIndex {
  /** The labels of each workload (`namespace/name`) of `namespace`, to find selectors that overlap. */
  inNamespace(namespace: string): ReadonlyMap<string, Labels>;
  /** The labels selectors match the proxy's workload by. */
  labelsOf(proxy: Pick<Proxy, 'namespace' | 'labels' | 'ipAddresses'>): Labels;
}

const NONE: ReadonlyMap<string, Labels> = new Map();

function entryOf(index: Map<string, Map<string, Labels>>, namespace: string): Map<string, Labels> {
  let entry = index.get(namespace);
  if (!entry) index.set(namespace, (entry = new Map<string, Labels>()));
  return entry;
}

/**
 * Workloads are the endpoints that name one (pods, WorkloadEntries); a ServiceEntry's inline
 * endpoint is an address, not a workload, even with labels. A pod's namespace is its own, not its
 * services'; a proxy without a namespace is never picked by address.
 */
/** The namespace of the workload (`namespace/name`) behind an endpoint; undefined when it names none. */
export function workloadNamespace(endpoint: Pick<Endpoint, 'workload'>): string | undefined {
  const slash = endpoint.workload?.indexOf('/') ?? -1;
  return slash > 0 ? endpoint.workload?.slice(0, slash) : undefined;
}

export function indexWorkloads(endpoints: Iterable<Endpoint>): WorkloadIndex {
  const byName = new Map<string, Map<string, Labels>>();
  const byAddress = new Map<string, Map<string, Labels>>();
  for (const endpoint of endpoints) {
    const namespace = workloadNamespace(endpoint);
    if (namespace === undefined || endpoint.workload === undefined) continue;
    entryOf(byName, namespace).set(endpoint.workload, endpoint.labels);
    entryOf(byAddress, namespace).set(endpoint.address, endpoint.labels);
  }
  return {
    inNamespace: (namespace) => byName.get(namespace) ?? NONE,
    labelsOf(proxy) {
      // A proxy whose node metadata has no LABELS (an Envoy from `meshpilot bootstrap`) is known by its pod's.
      if (Object.keys(proxy.labels).length > 0 || proxy.namespace === undefined) return proxy.labels;
      const addresses = byAddress.get(proxy.namespace);
      for (const ip of proxy.ipAddresses) {
        const labels = addresses?.get(ip);
        if (labels) return labels;
      }
      return {};
    },
  };
}
