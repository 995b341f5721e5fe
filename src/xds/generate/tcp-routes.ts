// VirtualService tcp routes -> the tcp_proxy upstream of a service's outbound TCP listener.
import type { PushContext } from '../../model/push-context.ts';
import type { RouteDestination, TcpRoute } from '../../model/rules.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import type { TcpProxy, TcpProxy_WeightedCluster_ClusterWeight } from '../envoy-types.generated.ts';
import { clusterName } from './names.ts';

function routeApplies(route: TcpRoute, port: number): boolean {
  const matches = route.match ?? [];
  // Sidecar listeners are per service, so only the port and gateway conditions can be decided here.
  return matches.length === 0 || matches.some((m) => (m.port === undefined || m.port === port) && (!m.gateways?.length || m.gateways.includes('mesh')));
}

/** Where a TcpProxy sends a connection: one cluster or weighted ones. */
export type TcpProxyUpstream = Pick<TcpProxy, 'cluster' | 'weighted_clusters'>;

/** Where a tcp (or tls) route's destinations send a connection heard on `listenerPort`; undefined when it has none. */
export function tcpRouteUpstream(push: PushContext, route: { readonly route?: readonly RouteDestination[] } | undefined, listenerPort: number): TcpProxyUpstream | undefined {
  const targets = (route?.route ?? []).filter((t, _i, all) => all.length === 1 || (t.weight ?? 0) > 0);
  const names = targets.map((t) => {
    const destination = push.serviceByHost.get(t.destination.host);
    const onlyPort = destination?.ports.length === 1 ? destination.ports[0]?.port : undefined;
    return clusterName(t.destination.port?.number ?? onlyPort ?? listenerPort, t.destination.host, t.destination.subset ?? '');
  });
  const [first] = names;
  if (first === undefined) return undefined;
  if (names.length === 1) return { cluster: first };
  return { weighted_clusters: { clusters: targets.map((t, i): TcpProxy_WeightedCluster_ClusterWeight => ({ name: names[i] ?? '', weight: t.weight ?? 0 })) } };
}

/** `{cluster}` or `{weighted_clusters}` for the TcpProxy of a service port: the first tcp route that applies, else the service's own cluster. */
export function tcpProxyUpstream(push: PushContext, service: Service, port: ServicePort): TcpProxyUpstream {
  const vs = push.virtualServiceByHost.get(service.hostname);
  const route = vs?.tcp.find((r) => routeApplies(r, port.port));
  return tcpRouteUpstream(push, route, port.port) ?? { cluster: clusterName(port.port, service.hostname) };
}
