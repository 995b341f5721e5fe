// Platform-free service registry types: what a Kubernetes Service or a ServiceEntry becomes.

/** Protocols as Istio names them (protocol selection by appProtocol or port-name prefix). */
export type Protocol =
  | 'HTTP'
  | 'HTTP2'
  | 'GRPC'
  | 'GRPC-Web'
  | 'HTTPS'
  | 'TLS'
  | 'TCP'
  | 'UDP'
  | 'Mongo'
  | 'Redis'
  | 'MySQL'
  | 'Unsupported';

export interface ServicePort {
  /** Port name as written in the Service (may be empty for a single unnamed port). */
  readonly name: string;
  readonly port: number;
  /** Pod port the service port forwards to; endpoints carry the resolved number. */
  readonly targetPort?: number | string;
  readonly protocol: Protocol;
}

export interface SourceRef {
  /** `file` for the YAML directory, `kube` for the API server. */
  readonly origin: 'file' | 'kube';
  /** File path (relative to the config dir) or API path. */
  readonly location: string;
  /** The object's metadata.generation (Kubernetes custom resources): what its status's observedGeneration names. */
  readonly generation?: number;
}

export interface Service {
  /** FQDN: `name.namespace.svc.cluster.local`. */
  readonly hostname: string;
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly ServicePort[];
  readonly labels: Readonly<Record<string, string>>;
  /** ClusterIP; absent for headless services. */
  readonly vip?: string;
  /** `status.loadBalancer.ingress` IPs (or hostnames): a gateway Service's external addresses. */
  readonly ingressAddresses?: readonly string[];
  readonly source: SourceRef;
  /** Set for ServiceEntry hosts: how their endpoints are found (Kubernetes services are EDS). */
  readonly resolution?: ServiceResolution;
  /** ServiceEntry `location: MESH_EXTERNAL`: the endpoints run outside the mesh (no sidecar). */
  readonly meshExternal?: boolean;
  /** ServiceEntry `subjectAltNames`: the names its servers' certificates must carry. */
  readonly subjectAltNames?: readonly string[];
  /** ServiceEntry `exportTo`, or a Service's `networking.istio.io/exportTo` annotation: who sees it. */
  readonly exportTo?: readonly string[];
}

/** ServiceEntry resolution, as Istio names it. */
export type ServiceResolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';

export interface Locality {
  readonly region?: string;
  readonly zone?: string;
  readonly subZone?: string;
}

export interface Endpoint {
  /** Hostname of the service this endpoint backs. */
  readonly serviceHostname: string;
  /** Service port name this endpoint serves (matches ServicePort.name). */
  readonly servicePortName: string;
  readonly address: string;
  /** The port on the endpoint itself (the resolved target port). */
  readonly port: number;
  /** Labels of the workload (Pod) behind the endpoint; subsets select on them. */
  readonly labels: Readonly<Record<string, string>>;
  readonly locality?: Locality;
  readonly ready: boolean;
  /** `namespace/name` of the Pod, when known. */
  readonly workload?: string;
  /** Relative load-balancing weight (WorkloadEntry `weight`); 1 when absent. */
  readonly weight?: number;
  /** The workload's service account (a Pod's `spec.serviceAccountName`, a WorkloadEntry's `serviceAccount`), in the workload's namespace. */
  readonly serviceAccount?: string;
}

const PROTOCOL_NAMES: Readonly<Record<string, Protocol>> = {
  http: 'HTTP',
  http2: 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  https: 'HTTPS',
  tls: 'TLS',
  tcp: 'TCP',
  udp: 'UDP',
  mongo: 'Mongo',
  redis: 'Redis',
  mysql: 'MySQL',
};

/** Kubernetes' standard appProtocol names, only meaningful as appProtocol. */
const KUBERNETES_APP_PROTOCOLS: Readonly<Record<string, Protocol>> = {
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTP',
};

/** Ports Istio treats as TCP when nothing names their protocol (SMTP, DNS, MySQL, MongoDB). */
const WELL_KNOWN_TCP_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/**
 * Istio's protocol selection: UDP stays UDP; otherwise `appProtocol` if set, else the port
 * name, read by its prefix before the first `-` (`http-web` is HTTP) except that `grpc-web`
 * is read whole. Unknown means "sniff", served as TCP here; well-known ports default to TCP.
 */
export function selectProtocol(portName: string | undefined, appProtocol?: string, l4Protocol?: string, port?: number): Protocol {
  if (l4Protocol?.toUpperCase() === 'UDP') return 'UDP';
  const name = (appProtocol ?? portName ?? '').toLowerCase();
  const kubernetes = appProtocol ? KUBERNETES_APP_PROTOCOLS[name] : undefined;
  if (kubernetes) return kubernetes;
  if (name.startsWith('grpc-web')) return 'GRPC-Web';
  const selected = PROTOCOL_NAMES[name.split('-')[0] ?? ''] ?? 'Unsupported';
  return selected === 'Unsupported' && port !== undefined && WELL_KNOWN_TCP_PORTS.has(port) ? 'TCP' : selected;
}

/** Istio's protocol.Parse: a protocol written by its name (a Gateway port's protocol), case-insensitively. */
export function parseProtocolName(name: string): Protocol {
  return PROTOCOL_NAMES[name.toLowerCase()] ?? 'Unsupported';
}

export function isHttpProtocol(protocol: Protocol): boolean {
  return protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-Web';
}

export const DEFAULT_DOMAIN_SUFFIX = 'cluster.local';

export function serviceHostname(name: string, namespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  return `${name}.${namespace}.svc.${domainSuffix}`;
}

/**
 * Istio's short-name rule: a host without a dot is qualified with the rule's namespace
 * (`reviews` -> `reviews.default.svc.cluster.local`); any host with a dot, and `*`, is kept.
 */
export function resolveShortName(host: string, namespace: string, domainSuffix = DEFAULT_DOMAIN_SUFFIX): string {
  if (host === '*' || host.includes('.')) return host;
  return serviceHostname(host, namespace, domainSuffix);
}

/** Whether `labels` contain every key/value of `selector` (an empty selector matches all). */
export function labelsMatch(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}
