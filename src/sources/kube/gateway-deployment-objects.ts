// What Istio's gateway deployment controller makes for a Kubernetes Gateway API Gateway of its
// class, for meshpilot's class: a ServiceAccount, a Deployment of Envoy started as a router with
// `meshpilot agent` beside it (as deploy/sample's sidecar), and a LoadBalancer Service with one
// port per listener port, all named `<gateway>-<gatewayClassName>` and owned by the Gateway,
// carrying the Gateway's `spec.infrastructure` labels and annotations.
import { buildBootstrap, DEFAULT_SECURE_XDS_ADDRESS, MESHPILOT_SERVICE_NAME } from '../../commands/bootstrap.ts';
import { CA_TOKEN_AUDIENCE, ROOT_CERT_CONFIGMAP, ROOT_CERT_FILE, SDS_SOCKET_PATH } from '../../security/names.ts';

/** The controllerName of meshpilot's GatewayClass. */
export const GATEWAY_CONTROLLER_NAME = 'meshpilot.io/gateway-controller';
/** The pod label a Gateway's proxies carry, which its model selects them by (as Istio). */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
/** Istio's label on what its controller manages, with meshpilot's controller as the value. */
export const MANAGED_LABEL = 'gateway.istio.io/managed';
export const MANAGED_VALUE = 'meshpilot.io-gateway-controller';
/** Istio's Gateway annotation choosing the Service's type (LoadBalancer by default). */
export const SERVICE_TYPE_ANNOTATION = 'networking.istio.io/service-type';
const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1';

type Json = Record<string, unknown>;

/** The Gateway fields the deployment depends on. */
export interface GatewayObject {
  readonly metadata: { readonly name: string; readonly namespace: string; readonly uid: string; readonly annotations?: Readonly<Record<string, string>> };
  readonly spec: {
    readonly gatewayClassName: string;
    /** What the Gateway API says every resource made for the Gateway should carry. */
    readonly infrastructure?: { readonly labels?: Readonly<Record<string, string>>; readonly annotations?: Readonly<Record<string, string>> };
    readonly listeners?: readonly { readonly name?: string; readonly port: number; readonly protocol?: string }[];
    readonly addresses?: readonly unknown[];
  };
}

export interface GatewayDeploymentSettings {
  readonly envoyImage: string;
  readonly agentImage: string;
  /** meshpilot's secure xDS and CA address (`meshpilot.<ns>.svc:15012`). */
  readonly xdsAddress: string;
  /** The DNS name meshpilot's serving certificate carries, checked by Envoy and the agent. */
  readonly xdsServerName: string;
}

export const DEFAULT_GATEWAY_DEPLOYMENT_SETTINGS: GatewayDeploymentSettings = {
  envoyImage: 'docker.io/envoyproxy/envoy:v1.31-latest',
  agentImage: 'meshpilot:0.1.0',
  xdsAddress: DEFAULT_SECURE_XDS_ADDRESS,
  xdsServerName: MESHPILOT_SERVICE_NAME,
};

/** Istio's getDefaultName: `<gateway>-<gatewayClassName>`. */
export function deploymentName(gateway: GatewayObject): string {
  return `${gateway.metadata.name}-${gateway.spec.gatewayClassName}`;
}

/** Istio's IsManaged: a Gateway that names its own addresses points at a deployment its user runs. */
export function isManaged(gateway: GatewayObject): boolean {
  return (gateway.spec.addresses ?? []).length === 0;
}

/** Istio's extractServicePorts: each distinct listener port once, named by its first listener. */
export function servicePorts(gateway: GatewayObject): Json[] {
  const seen = new Set<number>();
  const ports: Json[] = [];
  (gateway.spec.listeners ?? []).forEach((listener, index) => {
    if (seen.has(listener.port)) return;
    seen.add(listener.port);
    const protocol = (listener.protocol ?? 'TCP').toLowerCase();
    ports.push({ name: listener.name ?? `${protocol}-${String(index)}`, port: listener.port, targetPort: listener.port, protocol: 'TCP', appProtocol: protocol });
  });
  return ports;
}

/** The infrastructure labels with meshpilot's own (which win), and the infrastructure annotations when there are any. */
function labelsAndAnnotations(gateway: GatewayObject, own: Record<string, string>): Json {
  const annotations = gateway.spec.infrastructure?.annotations ?? {};
  return { labels: { ...gateway.spec.infrastructure?.labels, ...own }, ...(Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}) };
}

function metadata(gateway: GatewayObject): Json {
  const { name, namespace, uid } = gateway.metadata;
  return {
    name: deploymentName(gateway),
    namespace,
    ...labelsAndAnnotations(gateway, { [GATEWAY_NAME_LABEL]: name, [MANAGED_LABEL]: MANAGED_VALUE }),
    ownerReferences: [{ apiVersion: GATEWAY_API_VERSION, kind: 'Gateway', name, uid }],
  };
}

export function renderServiceAccount(gateway: GatewayObject): Json {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: metadata(gateway) };
}

export function renderService(gateway: GatewayObject): Json {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(gateway),
    spec: { type: gateway.metadata.annotations?.[SERVICE_TYPE_ANNOTATION] ?? 'LoadBalancer', selector: { [GATEWAY_NAME_LABEL]: gateway.metadata.name }, ports: servicePorts(gateway) },
  };
}

const fieldEnv = (name: string, fieldPath: string): Json => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const PROXY_USER = { runAsUser: 1337, runAsGroup: 1337, allowPrivilegeEscalation: false };
const SOCKET_DIR = SDS_SOCKET_PATH.replace(/^\./, '').replace(/\/socket$/, '');

/** The bootstrap `meshpilot bootstrap --node-id router~... --xds-tls` prints for this gateway. */
export function gatewayBootstrap(gateway: GatewayObject, settings: GatewayDeploymentSettings): Record<string, unknown> {
  const name = deploymentName(gateway);
  const { namespace } = gateway.metadata;
  return buildBootstrap({
    nodeId: `router~0.0.0.0~${name}.${namespace}~${namespace}.svc.cluster.local`,
    cluster: `${name}.${namespace}`,
    xdsAddress: settings.xdsAddress,
    adminPort: 15000,
    sdsSocket: SDS_SOCKET_PATH,
    xdsTlsServerName: settings.xdsServerName,
  });
}

export function renderDeployment(gateway: GatewayObject, settings: GatewayDeploymentSettings): Json {
  const name = deploymentName(gateway);
  const selector = { [GATEWAY_NAME_LABEL]: gateway.metadata.name };
  const agent = {
    name: 'meshpilot-agent',
    image: settings.agentImage,
    args: ['agent', '--sds-socket', `${SOCKET_DIR}/socket`, '--token-file', '/var/run/secrets/tokens/istio-token', '--ca-root-cert', `/var/run/secrets/istio/${ROOT_CERT_FILE}`, '--status-host', '0.0.0.0', '--status-port', '15020'],
    env: [{ name: 'CA_ADDR', value: settings.xdsAddress }, fieldEnv('POD_NAMESPACE', 'metadata.namespace'), fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'), fieldEnv('POD_NAME', 'metadata.name'), fieldEnv('INSTANCE_IP', 'status.podIP')],
    ports: [{ name: 'http-agent', containerPort: 15020 }],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: 'http-agent' }, periodSeconds: 5 },
    securityContext: { ...PROXY_USER, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [
      { name: 'workload-socket', mountPath: SOCKET_DIR },
      { name: 'istio-token', mountPath: '/var/run/secrets/tokens', readOnly: true },
      { name: 'istio-ca-root-cert', mountPath: '/var/run/secrets/istio', readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
  const envoy = {
    name: 'envoy',
    image: settings.envoyImage,
    // The bootstrap names the SDS socket relative to the working directory, as Istio's does.
    workingDir: '/',
    args: [
      '--config-yaml',
      JSON.stringify(gatewayBootstrap(gateway, settings)),
      '--service-node',
      'router~$(POD_IP)~$(POD_NAME).$(POD_NAMESPACE)~$(POD_NAMESPACE).svc.cluster.local',
      '--service-cluster',
      `${name}.${gateway.metadata.namespace}`,
    ],
    env: [fieldEnv('POD_IP', 'status.podIP'), fieldEnv('POD_NAME', 'metadata.name'), fieldEnv('POD_NAMESPACE', 'metadata.namespace')],
    ports: servicePorts(gateway).map((port) => ({ name: `${String(port['appProtocol'])}-${String(port['port'])}`.slice(0, 15), containerPort: port['port'], protocol: 'TCP' })),
    securityContext: PROXY_USER,
    volumeMounts: [{ name: 'workload-socket', mountPath: SOCKET_DIR }],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(gateway),
    spec: {
      selector: { matchLabels: selector },
      template: {
        metadata: labelsAndAnnotations(gateway, { ...selector, [MANAGED_LABEL]: MANAGED_VALUE }),
        spec: {
          serviceAccountName: name,
          // Envoy, not root, binds the listener ports (80, 443) itself, as Istio's gateways do.
          securityContext: { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] },
          containers: [agent, envoy],
          volumes: [
            { name: 'workload-socket', emptyDir: {} },
            { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: CA_TOKEN_AUDIENCE, expirationSeconds: 43200, path: 'istio-token' } }] } },
            { name: 'istio-ca-root-cert', configMap: { name: ROOT_CERT_CONFIGMAP } },
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
          ],
        },
      },
    },
  };
}
