// LDS for gateway proxies (Istio's buildGatewayListeners): one listener per port its Gateways'
// servers declare (`0.0.0.0_8080`), bound for real. Plaintext HTTP servers share one connection
// manager (RDS `http.<port>`); each TLS server is a filter chain matched by SNI, terminating HTTPS
// into its own route (`https.<port>.<portName>.<gateway>.<namespace>`) or TLS into a tcp route,
// or passing it through by SNI to tls routes; TCP servers proxy to the first tcp route bound to them.
import type { BoundServer, GatewayListenerPlan, MergedGateway } from '../../model/gateways.ts';
import { intersectHosts, isHttpServer, serverHostsFor, sniHosts } from '../../model/gateways.ts';
import type { MeshConfig } from '../../model/mesh-config.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { L4MatchAttributes } from '../../model/rules.ts';
import { isPassthroughMode } from '../../model/gateways.ts';
import { missingCredential } from '../../model/gateway-credentials.ts';
import type { FilterChain, HttpConnectionManager, Listener, Listener_Filter } from '../envoy-types.generated.ts';
import { TLS_INSPECTOR_TYPE } from '../type-urls.ts';
import { socketAddress, typed } from './common.ts';
import { gatewayDownstreamTls } from './gateway-tls.ts';
import { httpConnectionManager, tcpProxyWithLog, withObservability } from './listener.ts';
import { tlsTransportSocket } from './mtls.ts';
import { tcpRouteUpstream, type TcpProxyUpstream } from './tcp-routes.ts';

/**
 * Istio's gateway connection manager: the client address is the connection's (use_remote_address),
 * and x-forwarded-client-cert is replaced by what this gateway saw (SANITIZE_SET).
 */
const GATEWAY_HCM = {
  use_remote_address: true,
  forward_client_cert_details: 'SANITIZE_SET',
  set_current_client_cert_details: { subject: true, cert: true, dns: true, uri: true },
} as const satisfies HttpConnectionManager;

function connectionManagerFilter(statPrefix: string, routeName: string, mesh: MeshConfig): Listener_Filter {
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: { ...withObservability(httpConnectionManager(statPrefix, routeName), mesh), ...GATEWAY_HCM } };
}

/** Istio's l4MultiMatch: no match applies always; else one whose port and gateways fit the server. */
function l4Applies(matches: readonly L4MatchAttributes[] | undefined, port: number, gateway: string): boolean {
  if (!matches || matches.length === 0) return true;
  return matches.some((m) => (m.port === undefined || m.port === 0 || m.port === port) && (!m.gateways?.length || m.gateways.includes(gateway)));
}

/** Istio's buildGatewayNetworkFiltersFromTCPRoutes: the first tcp route of a bound VirtualService whose hosts meet the server's. */
function tcpUpstream(push: PushContext, proxy: Proxy, bound: BoundServer): TcpProxyUpstream | undefined {
  const port = bound.server.port.number;
  for (const vs of push.virtualServicesForGateway(bound.gatewayName, proxy.namespace)) {
    if (intersectHosts(serverHostsFor(bound.server.hosts, vs.rule.meta.namespace), vs.hosts).length === 0) continue;
    for (const route of vs.tcp) {
      if (!l4Applies(route.match, port, bound.gatewayName) || !route.route?.length) continue;
      return tcpRouteUpstream(push, route, port);
    }
  }
  return undefined;
}

function tcpProxyFilter(upstream: TcpProxyUpstream, mesh: MeshConfig): Listener_Filter {
  const statPrefix = upstream.cluster ?? upstream.weighted_clusters?.clusters?.[0]?.name ?? 'tcp';
  return tcpProxyWithLog(statPrefix, statPrefix, mesh, upstream);
}

/**
 * One filter chain of a TLS listener: this server's SNI hosts (none for `*`), its TLS, its routes.
 * None while its credentialName Secret is missing (the Gateway's status says so): Envoy would
 * otherwise hold the whole listener warming for the Secret, then serve it without a certificate.
 */
function tlsChain(push: PushContext, proxy: Proxy, bound: BoundServer, listenerName: string): FilterChain | undefined {
  const tls = bound.server.tls;
  if (!tls || missingCredential(push.credentials, bound.server, proxy.namespace ?? '') !== undefined) return undefined;
  const names = sniHosts(bound.server);
  const match: FilterChain = names.includes('*') ? {} : { filter_chain_match: { server_names: names } };
  const protocol = isHttpServer(bound.protocol, bound.server) ? 'http' : 'tcp';
  let filter: Listener_Filter;
  if (protocol === 'http') {
    // Istio's stat prefix of an HTTPS chain is the server's name, when it has one.
    const name = bound.server.name;
    filter = connectionManagerFilter(name !== undefined && name !== '' ? name : `outbound_${listenerName}`, bound.routeName ?? '', push.meshConfig);
  } else {
    const upstream = tcpUpstream(push, proxy, bound);
    if (!upstream) return undefined;
    filter = tcpProxyFilter(upstream, push.meshConfig);
  }
  return { ...match, transport_socket: tlsTransportSocket('downstream', gatewayDownstreamTls(tls)), filters: [filter] };
}

/**
 * Istio's buildGatewayNetworkFiltersFromTLSRoutes: a chain per tls match of a bound VirtualService
 * whose hosts meet the server's, matched by its SNI hosts, proxying the TLS untouched; an SNI host a
 * chain of the port already takes is left to it.
 */
function passthroughChains(push: PushContext, proxy: Proxy, bound: BoundServer, taken: Set<string>): FilterChain[] {
  const port = bound.server.port.number;
  const chains: FilterChain[] = [];
  for (const vs of push.virtualServicesForGateway(bound.gatewayName, proxy.namespace)) {
    if (intersectHosts(serverHostsFor(bound.server.hosts, vs.rule.meta.namespace), vs.hosts).length === 0) continue;
    for (const route of vs.tls) {
      const upstream = tcpRouteUpstream(push, route, port);
      if (!upstream) continue;
      for (const match of route.match ?? []) {
        if (!l4Applies([match], port, bound.gatewayName) || match.sniHosts.some((host) => taken.has(host))) continue;
        for (const host of match.sniHosts) taken.add(host);
        chains.push({ filter_chain_match: { server_names: match.sniHosts }, filters: [tcpProxyFilter(upstream, push.meshConfig)] });
      }
    }
  }
  return chains;
}

function chainsOf(push: PushContext, proxy: Proxy, plan: GatewayListenerPlan, listenerName: string): FilterChain[] {
  const [first] = plan.servers;
  if (!first) return [];
  if (plan.plaintext) {
    if (isHttpServer(first.protocol, first.server)) return [{ filters: [connectionManagerFilter(`outbound_${listenerName}`, first.routeName ?? '', push.meshConfig)] }];
    const upstream = tcpUpstream(push, proxy, first);
    return upstream ? [{ filters: [tcpProxyFilter(upstream, push.meshConfig)] }] : [];
  }
  const chains: FilterChain[] = [];
  const seen = new Set<string>();
  const passedSni = new Set<string>();
  for (const bound of plan.servers) {
    if (isPassthroughMode(bound.server.tls?.mode)) {
      chains.push(...passthroughChains(push, proxy, bound, passedSni).filter((chain) => !seen.has(JSON.stringify(chain.filter_chain_match ?? {}))));
      for (const chain of chains) seen.add(JSON.stringify(chain.filter_chain_match ?? {}));
      continue;
    }
    const chain = tlsChain(push, proxy, bound, listenerName);
    // Envoy refuses two chains with the same match: the older server keeps it (ns1/* and ns2/* are both SNI *).
    const key = JSON.stringify(chain?.filter_chain_match ?? {});
    if (!chain || seen.has(key)) continue;
    seen.add(key);
    chains.push(chain);
  }
  return chains;
}

/** The gateway proxy's listeners; a port whose servers have nothing to serve (a TCP server without route) gets none. */
export function gatewayListeners(push: PushContext, proxy: Proxy, merged: MergedGateway): Listener[] {
  return merged.listeners.flatMap((plan): Listener[] => {
    const name = `${plan.bind}_${String(plan.port)}`;
    const chains = chainsOf(push, proxy, plan, name);
    if (chains.length === 0) return [];
    const sni = chains.some((chain) => (chain.filter_chain_match?.server_names ?? []).length > 0);
    return [
      {
        name,
        address: socketAddress(plan.bind, plan.port),
        traffic_direction: 'OUTBOUND',
        ...(sni ? ({ listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: typed(TLS_INSPECTOR_TYPE, {}) }] } satisfies Listener) : {}),
        filter_chains: chains,
      },
    ];
  });
}
