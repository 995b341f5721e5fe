// A proxy's rendered xDS resources as one static Envoy bootstrap, so `envoy --mode validate`
// judges exactly what meshpilot would send: EDS clusters carry their ClusterLoadAssignment
// inline and listeners their RouteConfiguration; every other field stays as generated. Pure.
import { BOOTSTRAP_RUNTIME } from '../../src/commands/bootstrap.ts';
import { asObject, str } from '../../src/xds/attribution.ts';
import type { Json, JsonObject } from '../../src/xds/proto-json.ts';
import type { RenderedResources } from '../../src/xds/render.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, HTTP_PROTOCOL_OPTIONS_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/xds/type-urls.ts';
import { SDS_CLUSTER, SDS_SOCKET_PATH } from '../../src/security/names.ts';
import { LOOPBACK_DNS } from './envoy.ts';

/** An EDS cluster as a STATIC one holding its endpoints (Envoy validates both the same way). */
function staticCluster(cluster: JsonObject, endpoints: ReadonlyMap<string, JsonObject>): JsonObject {
  if (cluster['type'] !== 'EDS') return cluster;
  const { eds_cluster_config: edsConfig, ...rest } = cluster;
  const serviceName = str(asObject(edsConfig)?.['service_name']) || str(cluster['name']);
  const assignment = endpoints.get(serviceName);
  if (!assignment) throw new Error(`EDS cluster ${str(cluster['name'])} has no ClusterLoadAssignment ${serviceName}`);
  return { ...rest, type: 'STATIC', load_assignment: assignment };
}

/** Replaces every `rds` reference below `json` with the RouteConfiguration it names. */
function inlineRoutes(json: Json, routes: ReadonlyMap<string, JsonObject>): Json {
  if (Array.isArray(json)) return json.map((item) => inlineRoutes(item, routes));
  const object = asObject(json);
  if (!object) return json;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(object)) {
    const rdsName = key === 'rds' ? str(asObject(value)?.['route_config_name']) : '';
    if (rdsName) {
      const routeConfig = routes.get(rdsName);
      if (!routeConfig) throw new Error(`RDS names route configuration ${rdsName}, which was not rendered`);
      out['route_config'] = routeConfig;
    } else {
      out[key] = inlineRoutes(value, routes);
    }
  }
  return out;
}

function byName(resources: readonly { readonly name: string; readonly json: JsonObject }[]): Map<string, JsonObject> {
  return new Map(resources.map((r) => [r.name, r.json]));
}

/** Istio's bootstrap cluster to the agent's SDS server (HTTP/2 over its Unix socket), for configs that take mTLS secrets from SDS. */
export function sdsCluster(address: JsonObject = { pipe: { path: SDS_SOCKET_PATH } }): JsonObject {
  return {
    name: SDS_CLUSTER,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_PROTOCOL_OPTIONS_TYPE, explicit_http_config: { http2_protocol_options: {} } },
    },
    load_assignment: { cluster_name: SDS_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

function usesSds(rendered: RenderedResources): boolean {
  return [...rendered[CLUSTER_TYPE], ...rendered[LISTENER_TYPE]].some((r) => JSON.stringify(r.json).includes(`"cluster_name":"${SDS_CLUSTER}"`));
}

/** A bootstrap (`envoy.config.bootstrap.v3.Bootstrap` JSON) holding `rendered` as static resources. */
export function staticBootstrap(nodeId: string, rendered: RenderedResources): JsonObject {
  const endpoints = byName(rendered[ENDPOINT_TYPE]);
  const routes = byName(rendered[ROUTE_TYPE]);
  return {
    node: { id: nodeId, cluster: 'meshpilot-static' },
    ...(LOOPBACK_DNS as JsonObject),
    // The runtime `meshpilot bootstrap` gives every sidecar (RE2 program size).
    ...(BOOTSTRAP_RUNTIME as JsonObject),
    static_resources: {
      clusters: [...rendered[CLUSTER_TYPE].map((c) => staticCluster(c.json, endpoints)), ...(usesSds(rendered) ? [sdsCluster()] : [])],
      listeners: rendered[LISTENER_TYPE].map((l) => inlineRoutes(l.json, routes)),
    },
  };
}
