// Sidecar injection for the conformance cluster's pods, as Istio's injector and init container do
// it: Istio's iptables capture in the pod, then a real Envoy as uid 1337 with node id
// `sidecar~IP~POD.NS~NS.svc.cluster.local` and the pod's labels as node metadata, fed by meshpilot
// over ADS. The pod is Ready once Envoy is (its `/ready`: the first listeners and clusters are in).
import { adsBootstrap, startEnvoy } from './envoy.ts';
import type { FakeKubeApi, KubeObject } from './fake-kube-api.ts';
import type { RunningPod, Sidecar } from './kube-workloads.ts';
import { PROXY_ADMIN_PORT, PROXY_UID, type PodNetwork } from './netns.ts';

type Fields = Record<string, unknown>;
const fields = (value: unknown): Fields => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {});

/** Istio's namespace label for injection. */
export const INJECTION_LABEL = 'istio-injection';

/**
 * Whether pods of `namespace` get sidecars: Istio's `istio-injection=enabled`, or the suite's mesh
 * namespaces (labelled `gateway-conformance: mesh` and `mesh-consumer` by its manifests). Istio's
 * own runs label every namespace for injection; here the gateway cases' backends stay without.
 */
export function meshNamespace(api: FakeKubeApi, namespace: string): boolean {
  const labels = fields(fields(api.get('Namespace', undefined, namespace)?.['metadata'])['labels']);
  return labels[INJECTION_LABEL] === 'enabled' || labels['gateway-conformance'] === 'mesh' || labels['gateway-conformance'] === 'mesh-consumer';
}

export class MeshSidecars {
  constructor(
    readonly network: PodNetwork,
    readonly xds: { readonly xdsHost: string; readonly xdsPort: number },
  ) {}

  async inject(pod: RunningPod, object: KubeObject): Promise<Sidecar> {
    await this.network.captureLikeIstio(pod.netns);
    const labels = fields(fields(object['metadata'])['labels']);
    const nodeId = `sidecar~${pod.ip}~${pod.name}.${pod.namespace}~${pod.namespace}.svc.cluster.local`;
    const bootstrap = adsBootstrap({
      nodeId,
      ...this.xds,
      metadata: { NAMESPACE: pod.namespace, LABELS: labels },
    });
    // The admin API on the pod's address (excluded from capture), where the kubelet asks for readiness.
    bootstrap['admin'] = { address: { socket_address: { address: pod.ip, port_value: PROXY_ADMIN_PORT } } };
    const envoy = await startEnvoy({ bootstrap, netns: pod.netns.netns, uid: PROXY_UID, logLevel: process.env['MESHPILOT_ENVOY_LOG_LEVEL'] ?? 'error', dieWithParent: true });
    try {
      await envoy.waitFor(`the sidecar of ${pod.namespace}/${pod.name} ready`, async () => (await envoy.admin('/ready')).ok, 30_000);
    } catch (error) {
      await envoy.stop();
      throw error;
    }
    return { nodeId, stop: () => envoy.stop() };
  }
}
