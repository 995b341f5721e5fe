// Automated deployment of Gateway API Gateways, as Istio's gateway deployment controller does it:
// each Gateway whose class is meshpilot's gets a gateway pod (a network namespace running a real
// Envoy, node id `router~IP~POD.NS~NS.svc.cluster.local`, labelled with the Gateway's name in its
// node metadata, fed by meshpilot over ADS) and the Service `<gateway>-meshpilot` whose
// `status.loadBalancer.ingress` holds the pod's address: where meshpilot reads Gateway addresses.
import { ReconcileLoop } from './reconcile-loop.ts';
import { startTestAgent, type AgentUnderTest } from './agent-harness.ts';
import { adsBootstrap, startEnvoy, type RunningEnvoy } from './envoy.ts';
import { CA_SERVER_NAME, type FakeCa } from './fake-istio-ca.ts';
import type { FakeKubeApi, KubeObject } from './fake-kube-api.ts';
import type { Pod, PodNetwork } from './netns.ts';
import { podNetnsName } from './kube-workloads.ts';

export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

type Fields = Record<string, unknown>;
const fields = (value: unknown): Fields => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {});
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

interface GatewayPod {
  readonly pod: Pod;
  readonly name: string;
  /** Its Envoy's node id. */
  readonly nodeId: string;
  readonly envoy: RunningEnvoy;
  readonly agent: AgentUnderTest | undefined;
}

export interface GatewayDeployerOptions {
  readonly controllerName: string;
  readonly xdsHost: string;
  readonly xdsPort: number;
  /**
   * As a deployed gateway runs: ADS over TLS on meshpilot's secure port, its workload certificate
   * (the Gateway's `<gateway>-meshpilot` service account) from an agent beside Envoy, so meshpilot
   * serves it the TLS Secrets of its namespace.
   */
  readonly secure?: { readonly port: number; readonly ca: Pick<FakeCa, 'address' | 'rootFile'> };
}

export class GatewayDeployer {
  /** Gateway pods by `namespace/gateway`. */
  readonly gateways = new Map<string, GatewayPod>();
  readonly #loop = new ReconcileLoop('gateway deployer', () => this.#reconcile());
  readonly #unsubscribe: () => void;

  constructor(
    readonly api: FakeKubeApi,
    readonly network: PodNetwork,
    readonly options: GatewayDeployerOptions,
  ) {
    this.#unsubscribe = api.subscribe((event) => {
      if (event.kind === 'Gateway' || event.kind === 'GatewayClass') this.poke();
    });
    this.poke();
  }

  poke(): void {
    this.#loop.poke();
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    await this.#loop.stop();
    for (const key of [...this.gateways.keys()]) await this.#remove(key);
  }

  /** The Envoy of a Gateway's pod (for a test to read its stats). */
  envoyOf(namespace: string, name: string): RunningEnvoy | undefined {
    return this.gateways.get(`${namespace}/${name}`)?.envoy;
  }

  #ours(gateway: KubeObject): boolean {
    const className = text(fields(gateway['spec'])['gatewayClassName']);
    const gatewayClass = this.api.get('GatewayClass', undefined, className);
    return text(fields(gatewayClass?.['spec'])['controllerName']) === this.options.controllerName;
  }

  async #reconcile(): Promise<void> {
    const wanted = new Map<string, KubeObject>();
    for (const gateway of this.api.list('Gateway')) if (this.#ours(gateway)) wanted.set(`${text(gateway.metadata?.['namespace'])}/${text(gateway.metadata?.['name'])}`, gateway);
    for (const key of [...this.gateways.keys()]) if (!wanted.has(key)) await this.#remove(key);
    await Promise.all(
      [...wanted].map(async ([key, gateway]) => {
        const running = this.gateways.get(key) ?? (await this.#deploy(key, gateway));
        this.#service(gateway, running);
      }),
    );
  }

  async #deploy(key: string, gateway: KubeObject): Promise<GatewayPod> {
    const [namespace = '', gatewayName = ''] = key.split('/');
    const name = `${gatewayName}-meshpilot-0`;
    const pod = await this.network.addPod(podNetnsName(namespace, name));
    let agent: AgentUnderTest | undefined;
    try {
      const labels = { [GATEWAY_NAME_LABEL]: gatewayName, 'gateway.istio.io/managed': 'meshpilot.io-gateway-controller' };
      const secure = this.options.secure;
      agent = secure && (await startTestAgent(secure.ca, { namespace, serviceAccount: `${gatewayName}-meshpilot`, podName: name, podIp: pod.ip, outputDir: undefined }));
      const nodeId = `router~${pod.ip}~${name}.${namespace}~${namespace}.svc.cluster.local`;
      const bootstrap = adsBootstrap({
        nodeId,
        xdsHost: this.options.xdsHost,
        xdsPort: secure?.port ?? this.options.xdsPort,
        metadata: { NAMESPACE: namespace, LABELS: labels },
        ...(agent ? { tls: { sdsSocket: agent.sdsSocket, serverName: CA_SERVER_NAME } } : {}),
      });
      // Root in the pod: the Gateway's listeners bind their own ports (80, 443, ...), as Istio's gateways do.
      const envoy = await startEnvoy({ bootstrap, netns: pod.netns, logLevel: process.env['MESHPILOT_ENVOY_LOG_LEVEL'] ?? 'error', dieWithParent: true });
      const running: GatewayPod = { pod, name, nodeId, envoy, agent };
      this.gateways.set(key, running);
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      this.api.apply({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, labels, ownerReferences: [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: gatewayName, uid: gateway.metadata?.['uid'], controller: true }] },
        spec: { containers: [{ name: 'envoy', image: 'envoyproxy/envoy' }] },
        status: { phase: 'Running', podIP: pod.ip, podIPs: [{ ip: pod.ip }], conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: now })) },
      });
      return running;
    } catch (error) {
      await agent?.close();
      await this.network.removePod(pod.name);
      throw error;
    }
  }

  /** The Service `<gateway>-meshpilot`: the Gateway's listener ports, its pod's address as the load balancer's. */
  #service(gateway: KubeObject, running: GatewayPod): void {
    const namespace = text(gateway.metadata?.['namespace']);
    const gatewayName = text(gateway.metadata?.['name']);
    const listeners = Array.isArray(fields(gateway['spec'])['listeners']) ? (fields(gateway['spec'])['listeners'] as unknown[]).map(fields) : [];
    const ports = [...new Set(listeners.map((l) => Number(l['port'])))].sort((a, b) => a - b).map((port) => ({ name: `port-${String(port)}`, port, targetPort: port, protocol: 'TCP' }));
    const service: KubeObject = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `${gatewayName}-meshpilot`, namespace, labels: { [GATEWAY_NAME_LABEL]: gatewayName }, ownerReferences: [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: gatewayName, uid: gateway.metadata?.['uid'], controller: true }] },
      spec: { type: 'LoadBalancer', selector: { [GATEWAY_NAME_LABEL]: gatewayName }, ports },
      status: { loadBalancer: { ingress: [{ ip: running.pod.ip }] } },
    };
    const existing = this.api.get('Service', namespace, `${gatewayName}-meshpilot`);
    const spec = fields(existing?.['spec']);
    if (existing && JSON.stringify([spec['ports'], existing['status']]) === JSON.stringify([ports, service['status']])) return;
    this.api.apply({ ...service, spec: { ...spec, ...fields(service['spec']) } });
  }

  async #remove(key: string): Promise<void> {
    const running = this.gateways.get(key);
    if (!running) return;
    this.gateways.delete(key);
    const [namespace = '', gatewayName = ''] = key.split('/');
    await running.envoy.stop();
    await running.agent?.close();
    await this.network.removePod(running.pod.name);
    this.api.delete('Pod', namespace, running.name);
    this.api.delete('Service', namespace, `${gatewayName}-meshpilot`);
  }
}
