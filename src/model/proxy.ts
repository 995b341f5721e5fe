// A connected data-plane client, as its xDS Node describes it.

export type ProxyType = 'sidecar' | 'router' | 'unknown';

/** Which generator family serves the proxy: full Envoy config, or what proxyless gRPC accepts. */
export type ProxyGenerator = 'envoy' | 'grpc';

/** Something a proxyless gRPC client is known to mishandle, recognised by its node's user agent. */
export type GrpcClientLimit = 'ring-hash-crashes';

/**
 * Who the stream of a proxy proved to be (Istio's VerifiedIdentity): its client certificate or
 * token on the secure port; `plaintext` is the node's own claim, trusted only when the operator
 * allows Secrets on the plaintext port (development).
 */
export interface VerifiedIdentity {
  readonly namespace: string;
  readonly serviceAccount?: string;
  readonly via: 'certificate' | 'token' | 'plaintext';
}

export interface Proxy {
  readonly id: string;
  readonly type: ProxyType;
  readonly ipAddresses: readonly string[];
  readonly podName?: string;
  readonly namespace?: string;
  readonly dnsDomain?: string;
  readonly generator: ProxyGenerator;
  readonly labels: Readonly<Record<string, string>>;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** What this gRPC client must not be sent (empty for Envoy and for current gRPC). */
  readonly grpcLimits: readonly GrpcClientLimit[];
  /** Set by the server for a stream that authenticated; only such a proxy is sent Secrets. */
  readonly verifiedIdentity?: VerifiedIdentity;
}

export interface UserAgent {
  readonly userAgentName: string;
  readonly userAgentVersion: string;
}

/**
 * gRPC C-core before 1.52 (its core version 29 and below; grpcio 1.51 and Debian 12's
 * python3-grpcio say "C-core 29.0.0 Python 1.51.x") crashes on a RING_HASH cluster.
 */
export function grpcClientLimits(agent: UserAgent | undefined): readonly GrpcClientLimit[] {
  if (!agent || !/C-core/.test(agent.userAgentName)) return [];
  const core = /C-core (\d+)\./.exec(agent.userAgentVersion);
  return core && Number(core[1]) < 30 ? ['ring-hash-crashes'] : [];
}

const PROXY_TYPES = new Set<string>(['sidecar', 'router']);

/** What an operator calls a proxy: an Envoy sidecar, a gateway (router), or a proxyless gRPC client. */
export type ProxyKind = 'sidecar' | 'router' | 'proxyless-grpc' | 'unknown';

export const PROXY_KINDS: readonly ProxyKind[] = ['sidecar', 'router', 'proxyless-grpc', 'unknown'];

export function proxyKind(proxy: Pick<Proxy, 'type' | 'generator'>): ProxyKind {
  return proxy.generator === 'grpc' ? 'proxyless-grpc' : proxy.type;
}

function stringRecord(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

/**
 * Parses Istio's node id `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN`. Any other id is still a
 * valid proxy: it gets type `unknown` and whatever the metadata says (NAMESPACE, LABELS, GENERATOR).
 */
export function parseProxy(nodeId: string, metadata: Readonly<Record<string, unknown>> = {}, agent?: UserAgent): Proxy {
  const parts = nodeId.split('~');
  const grpcLimits = grpcClientLimits(agent);
  const generator = metadata['GENERATOR'] === 'grpc' ? 'grpc' : 'envoy';
  const labels = stringRecord(metadata['LABELS']);
  const metaNamespace = typeof metadata['NAMESPACE'] === 'string' ? metadata['NAMESPACE'] : undefined;
  const metaIps = typeof metadata['INSTANCE_IPS'] === 'string' ? metadata['INSTANCE_IPS'].split(',').filter(Boolean) : [];
  if (parts.length === 4 && PROXY_TYPES.has(parts[0] ?? '')) {
    const [type, ip, podDotNs, domain] = parts as [ProxyType, string, string, string];
    const dot = podDotNs.indexOf('.');
    const podName = dot >= 0 ? podDotNs.slice(0, dot) : podDotNs;
    const namespace = dot >= 0 ? podDotNs.slice(dot + 1) : metaNamespace;
    const domainDot = domain.indexOf('.');
    const dnsDomain = domain.length > 0 ? domain : undefined;
    return {
      id: nodeId,
      type,
      ipAddresses: ip ? [ip, ...metaIps.filter((other) => other !== ip)] : metaIps,
      podName,
      namespace: namespace ?? (domainDot > 0 ? domain.slice(0, domainDot) : undefined),
      dnsDomain,
      generator,
      labels,
      metadata,
      grpcLimits,
    };
  }
  return {
    id: nodeId,
    type: 'unknown',
    ipAddresses: metaIps,
    namespace: metaNamespace,
    generator,
    labels,
    metadata,
    grpcLimits,
  };
}
