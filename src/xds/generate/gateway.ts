// What a gateway proxy (`router~...`) is sent, per type URL: the listeners and routes of the
// Gateways that select it, the clusters those reach and their endpoints; never a sidecar's
// outbound or inbound listeners. Built once per distinct (Gateways, namespace, labels) and shared.
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import { scopedPush } from '../../model/sidecar-scope.ts';
import type { Json } from '../proto-json.ts';
import type { EnvoyResource } from '../resource.ts';
import { internResource } from '../resource.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, type ResourceTypeUrl } from '../type-urls.ts';
import { buildOutboundClusters } from './cluster.ts';
import { filterNames } from './common.ts';
import { buildProxyLoadAssignments } from './endpoint.ts';
import { gatewayListeners } from './gateway-listeners.ts';
import { gatewayRouteConfig } from './gateway-routes.ts';
import { buildSecrets } from './secret.ts';

interface GatewayResources {
  readonly listeners: readonly EnvoyResource[];
  readonly routes: ReadonlyMap<string, EnvoyResource>;
  /** Every cluster a route or a tcp_proxy of this gateway names. */
  readonly clusterNames: readonly string[];
  /** Those of them that exist. */
  readonly clusters: readonly EnvoyResource[];
}

const NONE: GatewayResources = { listeners: [], routes: new Map(), clusterNames: [], clusters: [] };

/** Cluster names in routes (single, weighted, mirrors) and tcp proxies. */
function collectClusters(json: Json, out: Set<string>): void {
  if (Array.isArray(json)) {
    for (const item of json) collectClusters(item, out);
    return;
  }
  if (json === null || typeof json !== 'object') return;
  for (const [key, value] of Object.entries(json)) {
    if (key === 'cluster' && typeof value === 'string') out.add(value);
    else if (key === 'weighted_clusters' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const clusters = value['clusters'];
      if (Array.isArray(clusters)) for (const entry of clusters) if (entry !== null && typeof entry === 'object' && !Array.isArray(entry) && typeof entry['name'] === 'string') out.add(entry['name']);
    } else collectClusters(value, out);
  }
}

function gatewayResources(root: PushContext, proxy: Proxy): GatewayResources {
  const merged = root.gatewayFor(proxy);
  if (!merged) return NONE;
  // What the gateway's namespace sees (exportTo); Sidecars never scope gateways.
  const push = scopedPush(root, proxy);
  return push.memo(`gateway:${merged.key}:${proxy.namespace ?? ''}:${JSON.stringify(proxy.labels)}`, (): GatewayResources => {
    const listeners = gatewayListeners(push, proxy, merged).map((listener) => internResource(push.sequence, LISTENER_TYPE, listener.name ?? '', listener));
    const routes = new Map(
      [...merged.serversByRouteName.keys()].sort().map((name) => [name, internResource(push.sequence, ROUTE_TYPE, name, gatewayRouteConfig(push, proxy, merged, name))] as const),
    );
    const names = new Set<string>();
    for (const resource of [...listeners, ...routes.values()]) collectClusters(resource.json, names);
    const clusterNames = [...names].sort();
    return { listeners, routes, clusterNames, clusters: filterNames(buildOutboundClusters(root, proxy), clusterNames) };
  });
}

/** A route name the gateway no longer has (a Gateway just deleted, Envoy draining): empty, as Istio answers. */
function emptyRoute(push: PushContext, name: string): EnvoyResource {
  return push.memo(`gateway-empty-route:${name}`, () => internResource(push.sequence, ROUTE_TYPE, name, { name, virtual_hosts: [], validate_clusters: false }));
}

export function buildGatewayResources(typeUrl: ResourceTypeUrl, push: PushContext, proxy: Proxy, names: readonly string[] | undefined): readonly EnvoyResource[] {
  const resources = gatewayResources(push, proxy);
  switch (typeUrl) {
    case LISTENER_TYPE:
      return filterNames(resources.listeners, names);
    case ROUTE_TYPE:
      return names ? names.map((name) => resources.routes.get(name) ?? emptyRoute(push, name)) : [...resources.routes.values()];
    case CLUSTER_TYPE:
      return names ? filterNames(buildOutboundClusters(push, proxy), names) : resources.clusters;
    case ENDPOINT_TYPE:
      return buildProxyLoadAssignments(push, proxy, names ?? resources.clusterNames);
    case SECRET_TYPE:
      return buildSecrets(push, proxy, names);
  }
}
