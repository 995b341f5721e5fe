// What a proxy holds, read from a /config_dump (Envoy's own, or meshpilot's
// /debug/config_dump of what it sent), and the differences between two such dumps. Pure.
import { asObjects, asObject, str } from '../../src/xds/attribution.ts';
import { decodeToProtoJson, encodeProtoJson, type Json, type JsonObject } from '../../src/xds/proto-json.ts';
import { messageType } from '../../src/xds/protos.ts';
import { CLUSTER_TYPE, LISTENER_TYPE, messageNameOf, ROUTE_TYPE } from '../../src/xds/type-urls.ts';

export interface HeldConfig {
  readonly clusters: ReadonlyMap<string, JsonObject>;
  readonly listeners: ReadonlyMap<string, JsonObject>;
  readonly routes: ReadonlyMap<string, JsonObject>;
  /** Per cluster: `address:port HEALTH`, sorted; DNS clusters left out (they hold what names resolve to). */
  readonly endpoints: ReadonlyMap<string, readonly string[]>;
}

function obj(value: Json | undefined): JsonObject {
  return asObject(value) ?? {};
}

function section(dump: JsonObject, kind: string): JsonObject {
  return asObjects(dump['configs']).find((c) => c['@type'] === `type.googleapis.com/envoy.admin.v3.${kind}`) ?? {};
}

/** Proto3 JSON omits fields at their default (e.g. `lb_policy: ROUND_ROBIN`): both sides go through one decode. */
function canonical(typeUrl: string, json: JsonObject): JsonObject {
  const type = messageType(messageNameOf(typeUrl));
  const { '@type': _type, ...fields } = json;
  return obj(decodeToProtoJson(type, encodeProtoJson(type, fields)));
}

function byName(typeUrl: string, resources: readonly JsonObject[]): Map<string, JsonObject> {
  return new Map(resources.map((r) => [str(r['name']), canonical(typeUrl, r)]));
}

/** Envoy shows an endpoint without a health status (UNKNOWN) as HEALTHY, which is how it treats it. */
function endpointLines(assignment: JsonObject): string[] {
  return asObjects(assignment['endpoints'])
    .flatMap((locality) => asObjects(locality['lb_endpoints']))
    .map((lb) => {
      const socket = obj(obj(obj(lb['endpoint'])['address'])['socket_address']);
      const health = typeof lb['health_status'] === 'string' && lb['health_status'] !== 'UNKNOWN' ? lb['health_status'] : 'HEALTHY';
      return `${str(socket['address'])}:${str(socket['port_value'])} ${health}`;
    })
    .sort();
}

const DNS_TYPES = new Set(['STRICT_DNS', 'LOGICAL_DNS']);

/** Reads a config_dump with EDS (`/config_dump?include_eds` or meshpilot's `/debug/config_dump`). */
export function heldConfig(dump: JsonObject): HeldConfig {
  const clusterJson = asObjects(section(dump, 'ClustersConfigDump')['dynamic_active_clusters']).map((c) => obj(c['cluster']));
  const clusters = byName(CLUSTER_TYPE, clusterJson);
  const listeners = byName(LISTENER_TYPE, asObjects(section(dump, 'ListenersConfigDump')['dynamic_listeners']).map((l) => obj(obj(l['active_state'])['listener'])));
  const routes = byName(ROUTE_TYPE, asObjects(section(dump, 'RoutesConfigDump')['dynamic_route_configs']).map((r) => obj(r['route_config'])));
  const assignments = new Map(
    asObjects(section(dump, 'EndpointsConfigDump')['dynamic_endpoint_configs']).map((e) => {
      const config = obj(e['endpoint_config']);
      return [str(config['cluster_name']), config] as const;
    }),
  );
  const endpoints = new Map<string, readonly string[]>();
  for (const cluster of clusterJson) {
    const name = str(cluster['name']);
    const type = typeof cluster['type'] === 'string' ? cluster['type'] : 'STATIC';
    if (DNS_TYPES.has(type)) continue;
    const serviceName = obj(cluster['eds_cluster_config'])['service_name'];
    // Envoy's dump lists the hosts of every cluster; meshpilot's holds load assignments of EDS clusters only.
    const assignment = assignments.get(typeof serviceName === 'string' ? serviceName : name) ?? assignments.get(name) ?? (type === 'EDS' ? {} : obj(cluster['load_assignment']));
    endpoints.set(name, endpointLines(assignment));
  }
  return { clusters, listeners, routes, endpoints };
}

function diffJson(a: Json | undefined, b: Json | undefined, path: string, out: string[]): void {
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && Array.isArray(a) === Array.isArray(b)) {
    const left = a as Record<string, Json>;
    const right = b as Record<string, Json>;
    for (const key of new Set([...Object.keys(left), ...Object.keys(right)])) diffJson(left[key], right[key], `${path}.${key}`, out);
    return;
  }
  const show = (value: Json | undefined): string => (value === undefined ? 'absent' : JSON.stringify(value));
  out.push(`${path}: ${show(a)} != ${show(b)}`);
}

function diffMaps<T extends Json | readonly string[]>(what: string, actual: ReadonlyMap<string, T>, expected: ReadonlyMap<string, T>, out: string[]): void {
  for (const name of new Set([...actual.keys(), ...expected.keys()])) {
    const a = actual.get(name);
    const e = expected.get(name);
    if (a === undefined) out.push(`${what} ${name}: sent, not held`);
    else if (e === undefined) out.push(`${what} ${name}: held, never sent`);
    else diffJson(a as Json, e as Json, `${what} ${name}`, out);
  }
}

/** Every difference between what a proxy holds and what it was sent, one line each. */
export function heldDifferences(held: HeldConfig, sent: HeldConfig): string[] {
  const out: string[] = [];
  diffMaps('cluster', held.clusters, sent.clusters, out);
  diffMaps('listener', held.listeners, sent.listeners, out);
  diffMaps('route configuration', held.routes, sent.routes, out);
  diffMaps('endpoints of', held.endpoints, sent.endpoints, out);
  return out;
}
