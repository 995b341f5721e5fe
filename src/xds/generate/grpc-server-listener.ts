// The listener an xDS-enabled gRPC server (gRFC A36) asks for by the name its bootstrap's
// server_listener_resource_name_template gives (Istio's `xds.istio.io/grpc/lds/inbound/%s`): its
// address, one filter chain for its PeerAuthentication mode (gRPC servers match filter chains on
// addresses only, so mTLS or plaintext, never both), and an inline route to the server itself.
import { portMode } from '../../model/peer-authentication.ts';
import type { EffectiveMtlsMode } from '../../model/peer-authentication.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { FilterChain, Listener } from '../envoy-types.generated.ts';
import { HTTP_CONNECTION_MANAGER_TYPE, ROUTER_TYPE } from '../type-urls.ts';
import { socketAddress, typed } from './common.ts';
import { workloadPorts } from './inbound.ts';
import { inboundHttpFilters } from './inbound-filters.ts';
import { acceptsIstioMtls, grpcDownstreamContext, tlsTransportSocket } from './mtls.ts';

/** Istio's prefix for gRPC server listener names; the rest is the server's `host:port`. */
export const GRPC_SERVER_LISTENER_PREFIX = 'xds.istio.io/grpc/lds/inbound/';

/** `0.0.0.0:50051` or `[::]:50051` after the prefix. */
export function parseServerListenerName(name: string): { host: string; port: number } | undefined {
  if (!name.startsWith(GRPC_SERVER_LISTENER_PREFIX)) return undefined;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9A-Za-z.-]+)):(\d{1,5})$/.exec(name.slice(GRPC_SERVER_LISTENER_PREFIX.length));
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  return host && port > 0 && port < 65536 ? { host, port } : undefined;
}

export interface GrpcServerMode {
  /** What the policy says for the port. */
  readonly requested: EffectiveMtlsMode;
  /** What the server is given: PERMISSIVE becomes STRICT with an identity, else DISABLE (as Istio's grpcgen). */
  readonly served: 'STRICT' | 'DISABLE';
}

/** The mode a gRPC server on `port` gets, judged by its workload's labels. */
export function grpcServerMode(push: PushContext, proxy: Proxy, port: number): GrpcServerMode {
  const labels = push.workloadLabels(proxy);
  const requested = portMode(push.peerAuthentication.forWorkload(proxy.namespace ?? '', labels), port);
  if (requested !== 'PERMISSIVE') return { requested, served: requested };
  return { requested, served: acceptsIstioMtls({ labels }) ? 'STRICT' : 'DISABLE' };
}

function serverFilterChain(push: PushContext, proxy: Proxy, port: number, mode: 'STRICT' | 'DISABLE'): FilterChain {
  const suffix = mode === 'STRICT' ? 'mtls' : 'plaintext';
  const hcm = typed(HTTP_CONNECTION_MANAGER_TYPE, {
    // The mode in the HCM's bytes too: grpc-js-xds 1.14 takes a listener that differs only in
    // transport_socket for the one it has (its listenersEquivalent), so a mode change would not apply.
    stat_prefix: `inbound_${suffix}_0.0.0.0_${port}`,
    route_config: {
      name: 'inbound',
      // gRPC serves a request itself only on a route with a non-forwarding action.
      virtual_hosts: [{ name: `inbound|grpc|${port}`, domains: ['*'], routes: [{ match: { prefix: '/' }, non_forwarding_action: {} }] }],
    },
    http_filters: [...inboundHttpFilters(push, proxy, port), { name: 'envoy.filters.http.router', typed_config: typed(ROUTER_TYPE, {}) }],
  });
  // No filter_chain_match: grpc-js ignores a chain whose match names a transport protocol or port.
  return {
    name: `inbound-${suffix}`,
    filters: [{ name: `inbound-hcm${suffix}`, typed_config: hcm }],
    ...(mode === 'STRICT' ? ({ transport_socket: tlsTransportSocket('downstream', grpcDownstreamContext()) } satisfies FilterChain) : {}),
  };
}

/** The server listener for `name`, or undefined when the proxy's workload serves no service on that port (as Istio). */
export function grpcServerListener(push: PushContext, proxy: Proxy, name: string): Listener | undefined {
  const address = parseServerListenerName(name);
  if (!address) return undefined;
  const served = workloadPorts(push, proxy).find((p) => p.port === address.port);
  if (!served) return undefined;
  const mode = grpcServerMode(push, proxy, address.port);
  return { name, address: socketAddress(address.host, address.port), filter_chains: [serverFilterChain(push, proxy, address.port, mode.served)] };
}
