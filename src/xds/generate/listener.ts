// LDS: sidecar outbound listeners (Istio's names and shapes) and proxyless gRPC API listeners.
import type { MeshConfig } from '../../model/mesh-config.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { scopedPush } from '../../model/sidecar-scope.ts';
import type { Protocol, Service } from '../../model/service.ts';
import { isHttpProtocol } from '../../model/service.ts';
import type { AccessLog, FilterChain, HttpConnectionManager, HttpFilter, Listener, Listener_Filter, ListenerFilter, Route, RouteAction, RouteConfiguration, SubstitutionFormatString, TypedAny } from '../envoy-types.generated.ts';
import type { EnvoyResource } from '../resource.ts';
import { internResource } from '../resource.ts';
import { CORS_TYPE, FAULT_TYPE, FILE_ACCESS_LOG_TYPE, HTTP_CONNECTION_MANAGER_TYPE, LISTENER_TYPE, ORIGINAL_DST_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE, TLS_INSPECTOR_TYPE } from '../type-urls.ts';
import { ADS_CONFIG_SOURCE, socketAddress, typed } from './common.ts';
import { authorizationKey, authorizationNetworkFilters } from './authz.ts';
import type { InboundPort } from './inbound.ts';
import { inboundPorts } from './inbound.ts';
import {
  BLACKHOLE_CLUSTER,
  INBOUND_PASSTHROUGH_CLUSTER,
  PASSTHROUGH_CLUSTER,
  VIRTUAL_INBOUND_LISTENER,
  VIRTUAL_INBOUND_PORT,
  VIRTUAL_OUTBOUND_LISTENER,
  VIRTUAL_OUTBOUND_PORT,
  clusterName,
  httpListenerName,
  parseHostPort,
  routeConfigName,
  tcpListenerName,
} from './names.ts';
import { CORS_FILTER, FAULT_FILTER } from './route-policy.ts';
import { inboundHttpFilters } from './inbound-filters.ts';
import { GRPC_SERVER_LISTENER_PREFIX, grpcServerListener } from './grpc-server-listener.ts';
import { inboundChainOptions, needsTlsInspector } from './inbound-tls.ts';
import { proxyHasIdentity, workloadMtls } from './mtls.ts';
import type { EffectiveMtlsMode } from '../../model/peer-authentication.ts';
import { portMode } from '../../model/peer-authentication.ts';
import { resolveTargetHost } from './targets.ts';
import { tcpProxyUpstream, type TcpProxyUpstream } from './tcp-routes.ts';

const ROUTER_FILTER: HttpFilter = { name: 'envoy.filters.http.router', typed_config: typed(ROUTER_TYPE, {}) };
// Empty top-level configs: routes switch them on through typed_per_filter_config, as Istio does.
const FAULT_HTTP_FILTER: HttpFilter = { name: FAULT_FILTER, typed_config: typed(FAULT_TYPE, {}) };
const CORS_HTTP_FILTER: HttpFilter = { name: CORS_FILTER, typed_config: typed(CORS_TYPE, {}) };

export type HttpConnectionManagerAny = TypedAny<typeof HTTP_CONNECTION_MANAGER_TYPE>;

export function httpConnectionManager(statPrefix: string, routeName: string, filters: readonly HttpFilter[] = [FAULT_HTTP_FILTER, CORS_HTTP_FILTER]): HttpConnectionManagerAny {
  return typed(HTTP_CONNECTION_MANAGER_TYPE, {
    stat_prefix: statPrefix,
    rds: { config_source: ADS_CONFIG_SOURCE, route_config_name: routeName },
    // The router must be last: it is the filter that forwards the request.
    http_filters: [...filters, ROUTER_FILTER],
  });
}

/** MeshConfig accessLogFile: Envoy's file access logger, TEXT or JSON lines. */
function accessLog(mesh: MeshConfig): { access_log: AccessLog[] } | undefined {
  const log = mesh.accessLog;
  if (!log) return undefined;
  const logFormat: SubstitutionFormatString = typeof log.format === 'string' ? { text_format_source: { inline_string: log.format } } : { json_format: { ...log.format } };
  return { access_log: [{ name: 'envoy.access_loggers.file', typed_config: typed(FILE_ACCESS_LOG_TYPE, { path: log.path, log_format: logFormat }) }] };
}

/** Access log and trace sampling, which MeshConfig sets for every sidecar HTTP connection manager. */
export function withObservability(hcm: HttpConnectionManagerAny, mesh: MeshConfig): HttpConnectionManagerAny {
  return { ...hcm, ...accessLog(mesh), tracing: { random_sampling: { value: mesh.tracingSampling } } };
}

export function tcpProxyWithLog(statPrefix: string, cluster: string, mesh: MeshConfig, upstream: TcpProxyUpstream = { cluster }): Listener_Filter {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: typed(TCP_PROXY_TYPE, { stat_prefix: statPrefix, ...upstream, ...accessLog(mesh) }) };
}

function httpListener(port: number, mesh: MeshConfig): Listener {
  const name = httpListenerName(port);
  const hcm = withObservability(httpConnectionManager(`outbound_${name}`, routeConfigName(port)), mesh);
  return {
    name,
    address: socketAddress('0.0.0.0', port),
    // Outbound listeners receive traffic handed over by virtualOutbound, not by binding.
    bind_to_port: false,
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }],
  };
}

function tcpListener(address: string, port: number, cluster: string, mesh: MeshConfig, upstream: TcpProxyUpstream = { cluster }): Listener {
  return {
    name: tcpListenerName(address, port),
    address: socketAddress(address, port),
    bind_to_port: false,
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ filters: [tcpProxyWithLog(cluster, cluster, mesh, upstream)] }],
  };
}

/**
 * iptables sends every outbound connection to 15001; `use_original_dst` hands it to the listener
 * bound (bind_to_port false) to its original address, else to 0.0.0.0 on its port. What no
 * listener takes is passed through (ALLOW_ANY) or dropped (REGISTRY_ONLY) here.
 */
function virtualOutbound(mesh: MeshConfig): Listener {
  const cluster = mesh.outboundTrafficPolicy === 'REGISTRY_ONLY' ? BLACKHOLE_CLUSTER : PASSTHROUGH_CLUSTER;
  return {
    name: VIRTUAL_OUTBOUND_LISTENER,
    address: socketAddress('0.0.0.0', VIRTUAL_OUTBOUND_PORT),
    use_original_dst: true,
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ name: cluster === PASSTHROUGH_CLUSTER ? 'PassthroughFilterChain' : 'BlackHoleFilterChain', filters: [tcpProxyWithLog(cluster, cluster, mesh)] }],
  };
}

/** TLS to a ServiceEntry host without an address can only be told apart by its SNI. */
function isSniRouted(service: Service, protocol: Protocol): boolean {
  return service.resolution !== undefined && service.vip === undefined && (protocol === 'TLS' || protocol === 'HTTPS');
}

/** One 0.0.0.0 listener per TLS port: tls_inspector reads the SNI, a chain per host; other names are unregistered. */
function sniListener(port: number, hosts: readonly string[], mesh: MeshConfig): Listener {
  const fallback = mesh.outboundTrafficPolicy === 'REGISTRY_ONLY' ? BLACKHOLE_CLUSTER : PASSTHROUGH_CLUSTER;
  return {
    name: tcpListenerName('0.0.0.0', port),
    address: socketAddress('0.0.0.0', port),
    bind_to_port: false,
    traffic_direction: 'OUTBOUND',
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: typed(TLS_INSPECTOR_TYPE, {}) }],
    filter_chains: [
      ...hosts.map((host): FilterChain => {
        const cluster = clusterName(port, host);
        return { name: cluster, filter_chain_match: { server_names: [host] }, filters: [tcpProxyWithLog(cluster, cluster, mesh)] };
      }),
      { name: fallback, filters: [tcpProxyWithLog(fallback, fallback, mesh)] },
    ],
  };
}

/**
 * Istio's inbound default route (route.go BuildDefaultHTTPInboundRoute): no timeout, gRPC's
 * grpc-timeout header unbounded, and requests reset before the application saw them retried
 * (not for gRPC, whose streams that would break).
 */
function inboundRoute(inbound: InboundPort): Route {
  const grpc = inbound.servicePort.protocol === 'GRPC' || inbound.servicePort.protocol === 'GRPC-Web';
  return {
    name: 'default',
    match: { prefix: '/' },
    decorator: { operation: `${inbound.service.hostname}:${String(inbound.servicePort.port)}/*` },
    route: {
      cluster: inbound.clusterName,
      timeout: '0s',
      max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' },
      ...(grpc ? {} : ({ retry_policy: { retry_on: 'reset-before-request', num_retries: 2 } } satisfies RouteAction)),
    },
  };
}

/** The chains of one workload port for its mode: Istio's shapes, each carrying the same filters. */
function withMtlsOptions(base: FilterChain, filters: Listener_Filter[], plan: InboundTlsPlan, protocol: 'http' | 'tcp', port: number): FilterChain[] {
  // A port that takes plaintext only keeps one chain that matches on its port alone.
  if (plan === 'plaintext') return [{ ...base, ...(port > 0 ? ({ filter_chain_match: { destination_port: port } } satisfies FilterChain) : {}), filters }];
  return inboundChainOptions(plan, protocol, port).map((option): FilterChain => ({
    ...base,
    filter_chain_match: option.filterChainMatch,
    filters,
    ...(option.transportSocket ? ({ transport_socket: option.transportSocket } satisfies FilterChain) : {}),
  }));
}

/**
 * Istio's sidecar inbound: the application is told who called over mTLS in x-forwarded-client-cert
 * (`By=` its own SPIFFE ID, `URI=` the caller's), appended to what a trusted peer forwarded.
 */
const INBOUND_CLIENT_CERT_DETAILS = {
  forward_client_cert_details: 'APPEND_FORWARD',
  set_current_client_cert_details: { subject: true, uri: true, dns: true },
} as const satisfies HttpConnectionManager;

function inboundFilterChains(inbound: InboundPort, mesh: MeshConfig, plan: InboundTlsPlan, policyFilters: readonly HttpFilter[], networkFilters: readonly Listener_Filter[]): FilterChain[] {
  const statPrefix = `inbound_0.0.0.0_${inbound.port}`;
  const chain = { name: `0.0.0.0_${inbound.port}` };
  if (!isHttpProtocol(inbound.servicePort.protocol)) return withMtlsOptions(chain, [...networkFilters, tcpProxyWithLog(inbound.clusterName, inbound.clusterName, mesh)], plan, 'tcp', inbound.port);
  const { rds: _rds, ...hcm } = httpConnectionManager(statPrefix, inbound.clusterName, [...policyFilters, FAULT_HTTP_FILTER, CORS_HTTP_FILTER]);
  const routeConfig: RouteConfiguration = {
    name: inbound.clusterName,
    virtual_hosts: [
      {
        name: `inbound|http|${inbound.port}`,
        domains: ['*'],
        routes: [inboundRoute(inbound)],
      },
    ],
    validate_clusters: false,
  };
  const filters = [{ name: 'envoy.filters.network.http_connection_manager', typed_config: withObservability({ ...hcm, ...INBOUND_CLIENT_CERT_DETAILS, route_config: routeConfig }, mesh) }];
  return withMtlsOptions(chain, filters, plan, 'http', inbound.port);
}

/**
 * What a port's chains accept: STRICT always takes TLS only (failing closed without a certificate);
 * PERMISSIVE adds TLS chains only where the workload holds a certificate; otherwise plaintext.
 */
export type InboundTlsPlan = 'STRICT' | 'PERMISSIVE' | 'plaintext';

export function tlsPlan(mode: EffectiveMtlsMode, identity: boolean): InboundTlsPlan {
  if (mode === 'STRICT') return 'STRICT';
  return mode === 'PERMISSIVE' && identity ? 'PERMISSIVE' : 'plaintext';
}

interface InboundPlan {
  readonly inbound: InboundPort;
  readonly plan: InboundTlsPlan;
  readonly filters: readonly HttpFilter[];
}

interface InboundPlans {
  readonly ports: InboundPlan[];
  readonly catchAll: InboundTlsPlan;
  /** The workload's AuthorizationPolicies as network RBAC, on every TCP chain. */
  readonly network: readonly Listener_Filter[];
}

/** Each workload port with what it accepts and the policy filters it runs, and the catch-all's plan. */
function inboundPlans(push: PushContext, proxy: Proxy): InboundPlans {
  const mtls = workloadMtls(push, proxy);
  const identity = proxyHasIdentity(push, proxy);
  const ports = inboundPorts(push, proxy).map((inbound): InboundPlan => ({
    inbound,
    plan: tlsPlan(portMode(mtls, inbound.port), identity),
    filters: inboundHttpFilters(push, proxy, inbound.port),
  }));
  return { ports, catchAll: tlsPlan(mtls.mode, identity), network: authorizationNetworkFilters(push, proxy) };
}

/** iptables sends inbound connections to 15006; the original port picks the chain for that workload port. */
function virtualInbound(push: PushContext, plans: InboundPlans): Listener {
  const mesh = push.meshConfig;
  // Ports no service declares are authorized too, as Istio's passthrough chains are: a policy cannot be bypassed by port.
  const { network } = plans;
  const catchAll = withMtlsOptions(
    { name: 'virtualInbound-catchall' },
    [...network, tcpProxyWithLog(INBOUND_PASSTHROUGH_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER, mesh)],
    plans.catchAll,
    'tcp',
    0,
  );
  const chains = [...plans.ports.flatMap((p) => inboundFilterChains(p.inbound, mesh, p.plan, p.filters, network)), ...catchAll];
  const listenerFilters: ListenerFilter[] = [{ name: 'envoy.filters.listener.original_dst', typed_config: typed(ORIGINAL_DST_TYPE, {}) }];
  if (needsTlsInspector(chains)) listenerFilters.push({ name: 'envoy.filters.listener.tls_inspector', typed_config: typed(TLS_INSPECTOR_TYPE, {}) });
  return {
    name: VIRTUAL_INBOUND_LISTENER,
    address: socketAddress('0.0.0.0', VIRTUAL_INBOUND_PORT),
    traffic_direction: 'INBOUND',
    listener_filters: listenerFilters,
    filter_chains: chains,
  };
}

function outboundListeners(push: PushContext): EnvoyResource[] {
  return push.memo('lds:sidecar', () => {
    const mesh = push.meshConfig;
    const byName = new Map<string, Listener>();
    for (const service of push.services) {
      for (const port of service.ports) {
        if (isHttpProtocol(port.protocol)) {
          const name = httpListenerName(port.port);
          if (!byName.has(name)) byName.set(name, httpListener(port.port, mesh));
        }
      }
    }
    const sniHosts = new Map<number, string[]>();
    for (const service of push.services) {
      for (const port of service.ports) {
        if (isHttpProtocol(port.protocol) || port.protocol === 'UDP') continue;
        if (isSniRouted(service, port.protocol)) {
          sniHosts.set(port.port, [...(sniHosts.get(port.port) ?? []), service.hostname]);
          continue;
        }
        const address = service.vip ?? '0.0.0.0';
        const name = tcpListenerName(address, port.port);
        // An HTTP listener or an older service already owns this address:port.
        if (!byName.has(name)) byName.set(name, tcpListener(address, port.port, clusterName(port.port, service.hostname), mesh, tcpProxyUpstream(push, service, port)));
      }
    }
    for (const [port, hosts] of sniHosts) {
      const name = tcpListenerName('0.0.0.0', port);
      if (!byName.has(name)) byName.set(name, sniListener(port, hosts, mesh));
    }
    byName.set(VIRTUAL_OUTBOUND_LISTENER, virtualOutbound(mesh));
    return [...byName.entries()].map(([name, json]) => internResource(push.sequence, LISTENER_TYPE, name, json));
  });
}

/** A sidecar's listeners: the outbound ones every sidecar shares, and virtualInbound for its own workload. */
function sidecarListeners(push: PushContext, proxy: Proxy): readonly EnvoyResource[] {
  // Outbound listeners are what the proxy's Sidecar lets it see; virtualInbound depends only on the
  // workload's ports. Proxies alike in both share the list (and its encoding).
  const visible = scopedPush(push, proxy);
  const plans = inboundPlans(push, proxy);
  const inboundKey = [
    ...plans.ports.map((p) => `${p.inbound.clusterName}/${p.inbound.servicePort.port}/${p.plan}`),
    plans.catchAll,
    // The policy filters of every chain follow from the workload's policies, which this names.
    `authz:${authorizationKey(push, proxy)}`,
  ].join(',');
  return visible.memo(`lds:sidecar:${inboundKey}`, () => {
    const inbound = internResource(push.sequence, LISTENER_TYPE, VIRTUAL_INBOUND_LISTENER, virtualInbound(push, plans));
    return [...outboundListeners(visible), inbound].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  });
}

/** The API listener a proxyless gRPC client asks for by its target authority. */
export function grpcApiListener(name: string): Listener {
  return {
    name,
    // gRPC implements the fault filter but not CORS.
    api_listener: { api_listener: httpConnectionManager(name, name, [FAULT_HTTP_FILTER]) },
  };
}

/**
 * Listeners for a proxy. Wildcard (`names` undefined) gives a sidecar its outbound listeners.
 * A name of the form `host:port` that resolves to a service port gets a gRPC API listener,
 * whichever client asks for it.
 */
export function buildListeners(push: PushContext, proxy: Proxy, names: readonly string[] | undefined): readonly EnvoyResource[] {
  if (!names) return proxy.generator === 'grpc' ? [] : sidecarListeners(push, proxy);
  const sidecar = proxy.generator === 'grpc' ? new Map<string, EnvoyResource>() : new Map(sidecarListeners(push, proxy).map((r) => [r.name, r]));
  const out: EnvoyResource[] = [];
  for (const name of names) {
    const known = sidecar.get(name);
    if (known) {
      out.push(known);
      continue;
    }
    if (name.startsWith(GRPC_SERVER_LISTENER_PREFIX)) {
      // Per proxy: the mode and the policy filters are its own workload's.
      const server = grpcServerListener(push, proxy, name);
      if (server) out.push(internResource(push.sequence, LISTENER_TYPE, name, server));
      continue;
    }
    const target = parseHostPort(name);
    if (!target || !resolveTargetHost(scopedPush(push, proxy), target.host, target.port, proxy.namespace)) continue;
    out.push(push.memo(`lds:grpc:${name}`, () => internResource(push.sequence, LISTENER_TYPE, name, grpcApiListener(name))));
  }
  return out;
}
