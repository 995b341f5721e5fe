// The proxy's own workload: which service ports it serves (found by its IP, else its labels in
// its namespace), and the inbound clusters that hand requests to the application on localhost.
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Endpoint, Service, ServicePort } from '../../model/service.ts';
import { labelsMatch } from '../../model/service.ts';
import type { Cluster } from '../envoy-types.generated.ts';
import type { EnvoyResource } from '../resource.ts';
import { internResource } from '../resource.ts';
import { CLUSTER_TYPE, HTTP_PROTOCOL_OPTIONS_TYPE } from '../type-urls.ts';
import { socketAddress, typed } from './common.ts';
import { defaultCircuitBreakers } from './cluster-traffic-policy.ts';
import { INBOUND_PASSTHROUGH_BIND_ADDRESS, INBOUND_PASSTHROUGH_CLUSTER, inboundClusterName } from './names.ts';

/** Where the application listens, as seen from its sidecar. */
const APPLICATION_ADDRESS = '127.0.0.1';

export interface InboundPort {
  /** `inbound|8080||`: the port the workload listens on. */
  readonly clusterName: string;
  readonly service: Service;
  readonly servicePort: ServicePort;
  /** The workload's own port (the service's target port), which iptables redirects to 15006. */
  readonly port: number;
}

/** The service ports whose endpoints are this proxy's workload, one per workload port (none for proxyless gRPC, which has no sidecar). */
export function inboundPorts(push: PushContext, proxy: Proxy): readonly InboundPort[] {
  return proxy.generator === 'grpc' ? [] : workloadPorts(push, proxy);
}

/** The service ports whose endpoints are the proxy's workload: its address (else its labels) among the endpoints. */
export function workloadPorts(push: PushContext, proxy: Proxy): readonly InboundPort[] {
  const ns = proxy.namespace;
  const byAddress = endpointsByAddress(push);
  const own = proxy.ipAddresses.flatMap((ip) => byAddress.get(ip) ?? []).filter(({ service }) => ns === undefined || service.namespace === ns);
  if (own.length > 0) {
    // Proxies at the same addresses share the answer.
    return push.memo(`inbound-ports:ip:${ns ?? ''}:${proxy.ipAddresses.join(',')}`, () => portsOf(own, () => true));
  }
  // Without a matching IP (a VM, a proxy behind NAT) the workload's labels in its namespace decide.
  if (Object.keys(proxy.labels).length === 0) return [];
  return push.memo(`inbound-ports:labels:${ns ?? ''}:${JSON.stringify(proxy.labels)}`, () =>
    portsOf(candidatesIn(push, ns), ({ endpoint }) => Object.keys(endpoint.labels).length > 0 && labelsMatch(endpoint.labels, proxy.labels)),
  );
}

interface Candidate {
  readonly service: Service;
  readonly endpoint: Endpoint;
}

/** Every endpoint of the push by its address. */
export function endpointsByAddress(push: PushContext): ReadonlyMap<string, readonly Candidate[]> {
  return push.memo('endpoints-by-address', () => {
    const index = new Map<string, Candidate[]>();
    for (const service of push.services) {
      for (const endpoint of push.endpointsByHost.get(service.hostname) ?? []) {
        const list = index.get(endpoint.address);
        if (list) list.push({ service, endpoint });
        else index.set(endpoint.address, [{ service, endpoint }]);
      }
    }
    return index;
  });
}

function candidatesIn(push: PushContext, namespace: string | undefined): Candidate[] {
  const out: Candidate[] = [];
  for (const service of push.services) {
    if (namespace !== undefined && service.namespace !== namespace) continue;
    for (const endpoint of push.endpointsByHost.get(service.hostname) ?? []) out.push({ service, endpoint });
  }
  return out;
}

function portsOf(candidates: readonly Candidate[], serves: (candidate: Candidate) => boolean): InboundPort[] {
  const ports = new Map<number, InboundPort>();
  for (const candidate of candidates) {
    const { service, endpoint } = candidate;
    if (!serves(candidate) || ports.has(endpoint.port)) continue;
    const servicePort = service.ports.find((p) => p.name === endpoint.servicePortName) ?? (service.ports.length === 1 ? service.ports[0] : undefined);
    if (!servicePort || servicePort.protocol === 'UDP') continue;
    ports.set(endpoint.port, { clusterName: inboundClusterName(endpoint.port), service, servicePort, port: endpoint.port });
  }
  return [...ports.values()].sort((a, b) => a.port - b.port);
}

function usesHttp2(port: ServicePort): boolean {
  return port.protocol === 'HTTP2' || port.protocol === 'GRPC' || port.protocol === 'GRPC-Web';
}

function inboundCluster(inbound: InboundPort, connectTimeout: string): Cluster {
  const { service } = inbound;
  return {
    name: inbound.clusterName,
    type: 'STATIC',
    connect_timeout: connectTimeout,
    lb_policy: 'ROUND_ROBIN',
    circuit_breakers: defaultCircuitBreakers(),
    load_assignment: {
      cluster_name: inbound.clusterName,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(APPLICATION_ADDRESS, inbound.port) } }] }],
    },
    metadata: { filter_metadata: { istio: { services: [{ host: service.hostname, name: service.name, namespace: service.namespace }] } } },
    ...(usesHttp2(inbound.servicePort)
      ? ({
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(HTTP_PROTOCOL_OPTIONS_TYPE, { explicit_http_config: { http2_protocol_options: {} } }),
          },
        } satisfies Cluster)
      : {}),
  };
}

/** Connections to ports no service declares go on to where they were headed, from 127.0.0.6 so iptables does not loop them back. */
function inboundPassthroughCluster(connectTimeout: string): Cluster {
  return {
    name: INBOUND_PASSTHROUGH_CLUSTER,
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    connect_timeout: connectTimeout,
    circuit_breakers: defaultCircuitBreakers(),
    upstream_bind_config: { source_address: { address: INBOUND_PASSTHROUGH_BIND_ADDRESS, port_value: 0 } },
  };
}

/** A sidecar's inbound clusters: one per port of its own workload, and the inbound passthrough. */
export function buildInboundClusters(push: PushContext, proxy: Proxy): EnvoyResource[] {
  if (proxy.generator === 'grpc') return [];
  const timeout = push.meshConfig.connectTimeout;
  // Proxies of one workload share their inbound clusters: encoded once per push.
  return [
    ...inboundPorts(push, proxy).map((inbound) =>
      push.memo(`cds:${inbound.clusterName}`, () => internResource(push.sequence, CLUSTER_TYPE, inbound.clusterName, inboundCluster(inbound, timeout))),
    ),
    push.memo(`cds:${INBOUND_PASSTHROUGH_CLUSTER}`, () => internResource(push.sequence, CLUSTER_TYPE, INBOUND_PASSTHROUGH_CLUSTER, inboundPassthroughCluster(timeout))),
  ];
}
