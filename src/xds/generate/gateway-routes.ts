// RDS for gateway proxies (Istio's buildGatewayHTTPRouteConfig): one RouteConfiguration per HTTP
// route name, a virtual host per host where a server's hosts and a bound VirtualService's hosts
// intersect, with the VirtualService's routes translated as for sidecars.
import type { BoundServer, MergedGateway } from '../../model/gateways.ts';
import { intersectHosts, serverHostsFor } from '../../model/gateways.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import { ruleKey } from '../../model/rules.ts';
import type { ServicePort } from '../../model/service.ts';
import type { Route, RouteConfiguration, VirtualHost } from '../envoy-types.generated.ts';
import { buildVirtualServiceRoutes, type RouteCaller } from './http-routes.ts';
import { MAX_DIRECT_RESPONSE_BODY } from './route.ts';

interface HostRoutes {
  readonly port: number;
  routes: Route[];
  requireTls: boolean;
}

/** Istio's isCatchAllRoute: any path, no header or query condition. */
function isCatchAll(route: Route): boolean {
  const match = route.match;
  if (!match) return false;
  const anyPath = match.prefix === '/' || match.path_separated_prefix === '/' || match.safe_regex?.regex === '*';
  return anyPath && (match.headers ?? []).length === 0 && (match.query_parameters ?? []).length === 0;
}

/** Istio's SortVHostRoutes: catch-all routes last, the others in their order. */
function catchAllLast(routes: readonly Route[]): Route[] {
  return [...routes.filter((r) => !isCatchAll(r)), ...routes.filter(isCatchAll)];
}

/** The routes of one server: every bound VirtualService whose hosts meet the server's, host by host. */
function addServer(push: PushContext, proxy: Proxy, bound: BoundServer, byHost: Map<string, HostRoutes>, routesByRule: Map<string, Route[]>): void {
  const port = bound.server.port.number;
  const servicePort: ServicePort = { name: bound.server.port.name, port, protocol: bound.protocol };
  const caller: RouteCaller = { labels: proxy.labels, namespace: proxy.namespace, gateway: bound.gatewayName };
  const redirect = bound.server.tls?.httpsRedirect === true;
  for (const vs of push.virtualServicesForGateway(bound.gatewayName, proxy.namespace)) {
    const hosts = intersectHosts(serverHostsFor(bound.server.hosts, vs.rule.meta.namespace), vs.hosts);
    if (hosts.length === 0) continue;
    const key = `${bound.gatewayName}|${String(port)}|${ruleKey(vs.rule.meta)}`;
    let routes = routesByRule.get(key);
    if (!routes) routesByRule.set(key, (routes = buildVirtualServiceRoutes(push, vs, servicePort, caller)));
    for (const host of hosts.map((h) => h.toLowerCase())) {
      const existing = byHost.get(host);
      if (existing) {
        existing.routes = [...existing.routes, ...routes];
        existing.requireTls ||= redirect;
      } else {
        byHost.set(host, { port, routes, requireTls: redirect });
      }
    }
  }
  if (!redirect) return;
  // httpsRedirect covers every host of the server, routed or not.
  for (const host of bound.server.hosts.map((h) => h.slice(h.indexOf('/') + 1).toLowerCase())) {
    const existing = byHost.get(host);
    if (existing) existing.requireTls = true;
    else byHost.set(host, { port, routes: [], requireTls: true });
  }
}

/** Istio's host.MoreSpecific order: exact names before wildcards, longer before shorter, then alphabetical. */
function moreSpecificFirst(a: string, b: string): number {
  const [wildA, wildB] = [a.startsWith('*'), b.startsWith('*')];
  if (wildA !== wildB) return wildA ? 1 : -1;
  if (a.length !== b.length) return b.length - a.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Istio's collapseDuplicateRoutes: hosts with the very same routes share one virtual host, named by the most specific. */
function virtualHosts(byHost: ReadonlyMap<string, HostRoutes>): VirtualHost[] {
  const merged: { name: string; domains: string[]; entry: HostRoutes }[] = [];
  const sameRoutes = (a: HostRoutes, b: HostRoutes): boolean => a.requireTls === b.requireTls && a.routes.length === b.routes.length && a.routes.every((r, i) => r === b.routes[i]);
  for (const host of [...byHost.keys()].sort(moreSpecificFirst)) {
    const entry = byHost.get(host);
    if (!entry) continue;
    const twin = merged.find((m) => sameRoutes(m.entry, entry));
    if (twin) twin.domains.push(host);
    else merged.push({ name: `${host}:${String(entry.port)}`, domains: [host], entry });
  }
  return merged
    .map(({ name, domains, entry }): VirtualHost => ({
      name,
      domains,
      routes: catchAllLast(entry.routes),
      ...(entry.requireTls ? ({ require_tls: 'ALL' } satisfies VirtualHost) : {}),
    }))
    .sort((a, b) => ((a.name ?? '') < (b.name ?? '') ? -1 : (a.name ?? '') > (b.name ?? '') ? 1 : 0));
}

/** The RouteConfiguration `routeName` of a gateway proxy; empty (Envoy answers 404) when no server has that name any more. */
export function gatewayRouteConfig(push: PushContext, proxy: Proxy, merged: MergedGateway, routeName: string): RouteConfiguration {
  const servers = merged.serversByRouteName.get(routeName) ?? [];
  const byHost = new Map<string, HostRoutes>();
  const routesByRule = new Map<string, Route[]>();
  for (const bound of servers) addServer(push, proxy, bound, byHost, routesByRule);
  const [first] = servers;
  // No host to serve: one virtual host without routes, so every request gets 404 (Istio's blackhole).
  const hosts = byHost.size > 0 || !first ? virtualHosts(byHost) : [{ name: `blackhole:${String(first.server.port.number)}`, domains: ['*'], routes: [] }];
  return {
    name: routeName,
    virtual_hosts: hosts,
    validate_clusters: false,
    // Hosts are matched without the port clients add (Host: shop.example.com:8080).
    ignore_port_in_host_matching: true,
    max_direct_response_body_size_bytes: MAX_DIRECT_RESPONSE_BODY,
  };
}
