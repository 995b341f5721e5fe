// Everything a proxy ends up holding, resolved the way a client subscribes: listeners, then the
// routes they name, the clusters those routes use, and the endpoints of the EDS clusters.
import type { PushContext } from '../model/push-context.ts';
import type { Proxy } from '../model/proxy.ts';
import { generate } from './generate/index.ts';
import type { Json, JsonObject } from './proto-json.ts';
import type { EnvoyResource } from './resource.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, type ResourceTypeUrl } from './type-urls.ts';

export type RenderedResources = Record<ResourceTypeUrl, readonly EnvoyResource[]>;

function collect(json: Json, key: string, out: Set<string>): void {
  if (Array.isArray(json)) {
    for (const item of json) collect(item, key, out);
  } else if (json !== null && typeof json === 'object') {
    for (const [k, v] of Object.entries(json)) {
      if (k === key && typeof v === 'string') out.add(v);
      else collect(v, key, out);
    }
  }
}

/** Names of the secrets a resource takes over SDS on the ADS stream (`sds_config: { ads: {} }`). */
function adsSecretNames(json: Json, out: Set<string>): void {
  if (Array.isArray(json)) {
    for (const item of json) adsSecretNames(item, out);
  } else if (json !== null && typeof json === 'object') {
    const source = json['sds_config'];
    if (typeof json['name'] === 'string' && typeof source === 'object' && source !== null && !Array.isArray(source) && source['ads'] !== undefined) out.add(json['name']);
    for (const value of Object.values(json)) adsSecretNames(value, out);
  }
}

function asObjects(value: Json | undefined): JsonObject[] {
  return Array.isArray(value) ? value.filter((v): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)) : [];
}

/** Clusters a RouteConfiguration's routes send to (single or weighted). */
function routeClusters(routeConfig: JsonObject): string[] {
  const names: string[] = [];
  for (const vhost of asObjects(routeConfig['virtual_hosts'])) {
    for (const route of asObjects(vhost['routes'])) {
      const action = route['route'];
      if (typeof action !== 'object' || action === null || Array.isArray(action)) continue;
      if (typeof action['cluster'] === 'string') names.push(action['cluster']);
      const weighted = action['weighted_clusters'];
      if (typeof weighted === 'object' && weighted !== null && !Array.isArray(weighted)) {
        for (const entry of asObjects(weighted['clusters'])) if (typeof entry['name'] === 'string') names.push(entry['name']);
      }
    }
  }
  return names;
}

/**
 * Renders the config a proxy would hold. `listenerNames` is what a proxyless gRPC client asks
 * for (its targets); an Envoy sidecar asks for every listener and every cluster.
 */
export function renderForProxy(push: PushContext, proxy: Proxy, listenerNames?: readonly string[]): RenderedResources {
  const listeners = generate(LISTENER_TYPE, push, proxy, listenerNames);
  const routeNames = new Set<string>();
  for (const listener of listeners) collect(listener.json, 'route_config_name', routeNames);
  const routes = generate(ROUTE_TYPE, push, proxy, [...routeNames].sort());
  let clusterNames: string[] | undefined;
  if (proxy.generator === 'grpc') {
    const names = new Set<string>();
    for (const route of routes) for (const n of routeClusters(route.json)) names.add(n);
    clusterNames = [...names].sort();
  }
  const clusters = generate(CLUSTER_TYPE, push, proxy, clusterNames);
  const edsNames = clusters
    .filter((c) => c.json['type'] === 'EDS')
    .map((c) => {
      const config = c.json['eds_cluster_config'] as JsonObject | undefined;
      return typeof config?.['service_name'] === 'string' ? config['service_name'] : c.name;
    });
  const endpoints = generate(ENDPOINT_TYPE, push, proxy, edsNames);
  const secretNames = new Set<string>();
  for (const listener of listeners) adsSecretNames(listener.json, secretNames);
  // Rendered as the proxy gets them once it has authenticated as a workload of its own namespace.
  const verified: Proxy = proxy.verifiedIdentity || proxy.namespace === undefined ? proxy : { ...proxy, verifiedIdentity: { namespace: proxy.namespace, via: 'plaintext' } };
  const secrets = secretNames.size > 0 ? generate(SECRET_TYPE, push, verified, [...secretNames].sort()) : [];
  return { [CLUSTER_TYPE]: clusters, [ENDPOINT_TYPE]: endpoints, [LISTENER_TYPE]: listeners, [ROUTE_TYPE]: routes, [SECRET_TYPE]: secrets };
}
