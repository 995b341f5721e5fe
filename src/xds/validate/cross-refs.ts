// Envoy's rules that span resources (a route's cluster must exist, an EDS cluster needs its
// ClusterLoadAssignment, domains are unique per RouteConfiguration, ...), which no single
// message's validate.rules can express. Input is the proto3 JSON a proxy would receive.
import { isIP } from 'node:net';
import { canonicalIp } from '../../model/address.ts';
import { isPrime } from '../../model/prime.ts';
import { checkRe2Regex } from '../../model/re2.ts';
import { parseDurationJson, ProtoJsonError, type Json, type JsonObject } from '../proto-json.ts';
import { envoyRoot } from '../protos.ts';
import { HTTP_CONNECTION_MANAGER_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE } from '../type-urls.ts';
import type { RuleViolation } from './pgv.ts';

/** Everything one proxy is sent, as proto3 JSON with snake_case names. */
export interface XdsResourceSet {
  readonly clusters: readonly JsonObject[];
  readonly endpoints: readonly JsonObject[];
  readonly listeners: readonly JsonObject[];
  readonly routes: readonly JsonObject[];
}

const AGGREGATE_CLUSTER_TYPE = 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig';
const ROUTER_FILTER_NAME = 'envoy.filters.http.router';
const MAX_UINT32 = 4_294_967_295;
// Defaults Envoy applies when RingHashLbConfig leaves the sizes unset.
const RING_HASH_DEFAULT_MIN = 1024;
const RING_HASH_DEFAULT_MAX = 8_388_608;

interface Context {
  readonly clusterNames: ReadonlySet<string>;
  readonly routeNames: ReadonlySet<string>;
  readonly out: RuleViolation[];
}

function asObject(value: Json | undefined): JsonObject | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}

function objects(value: Json | undefined): JsonObject[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item): JsonObject[] => {
    const object = asObject(item);
    return object ? [object] : [];
  });
}

function asString(value: Json | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** uint32/uint64 and their wrappers arrive as JSON numbers or, for 64-bit, decimal strings. */
function asNumber(value: Json | undefined): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  return undefined;
}

/** Appends a field to a path; right after a resource label (`route "9080"`) a space reads better than a dot. */
function at(path: string, name: string): string {
  if (!path) return name;
  return path.endsWith('"') ? `${path} ${name}` : `${path}.${name}`;
}

/** An enum as its value name, whether the JSON spelled it by name, by number, or left it at zero. */
function enumName(enumPath: string, value: Json | undefined): string {
  const type = envoyRoot().lookupEnum(enumPath);
  if (typeof value === 'string') return value;
  return type.valuesById[typeof value === 'number' ? value : 0] ?? JSON.stringify(value ?? null);
}

function where(kind: string, name: string | undefined, path: string): string {
  return `${kind} ${JSON.stringify(name ?? '')}${path ? ' ' + path : ''}`;
}

function report(ctx: Context, path: string, rule: string, message: string): void {
  ctx.out.push({ path, rule, message });
}

function checkUniqueNames(ctx: Context, kind: string, items: readonly JsonObject[], key: string): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const name = asString(item[key]) ?? '';
    const first = seen.get(name);
    if (first === undefined) seen.set(name, i);
    else report(ctx, where(kind, name, key), 'unique.name', `${kind} ${JSON.stringify(name)} is sent twice (items ${first} and ${i}); Envoy rejects duplicate resource names`);
  });
}

function checkClusterRef(ctx: Context, path: string, name: string | undefined): void {
  if (name === undefined || name === '' || ctx.clusterNames.has(name)) return;
  report(ctx, path, 'ref.cluster', `cluster ${JSON.stringify(name)} does not exist; requests routed to it fail with 503 (NC)`);
}

function checkWeightedClusters(ctx: Context, weighted: JsonObject, path: string, clustersMustExist = true): void {
  const clusters = objects(weighted['clusters']);
  let sum = 0;
  clusters.forEach((cluster, i) => {
    if (clustersMustExist) checkClusterRef(ctx, `${path}.clusters[${i}].name`, asString(cluster['name']));
    checkHeaderOperations(ctx, cluster, `${path}.clusters[${i}]`);
    sum += asNumber(cluster['weight']) ?? 0;
  });
  const total = asNumber(weighted['total_weight']);
  if (total !== undefined && total !== sum) {
    report(ctx, `${path}.total_weight`, 'weighted_clusters.total_weight', `sum of weights in the weighted_cluster should add up to ${total}, got ${sum}`);
  }
  if (sum <= 0) report(ctx, `${path}.clusters`, 'weighted_clusters.sum', 'sum of weights in the weighted_cluster must be greater than 0');
  if (sum > MAX_UINT32) report(ctx, `${path}.clusters`, 'weighted_clusters.sum', `sum of weights ${sum} exceeds the uint32 maximum`);
}

function checkRouteAction(ctx: Context, action: JsonObject, path: string): void {
  // A route that answers a missing cluster with a status of its own (Gateway API's 500) names one on purpose.
  const answersMissing = action['cluster_not_found_response_code'] !== undefined;
  if (!answersMissing) checkClusterRef(ctx, `${path}.cluster`, asString(action['cluster']));
  const weighted = asObject(action['weighted_clusters']);
  if (weighted) checkWeightedClusters(ctx, weighted, `${path}.weighted_clusters`, !answersMissing);
  objects(action['request_mirror_policies']).forEach((mirror, i) => {
    checkClusterRef(ctx, `${path}.request_mirror_policies[${i}].cluster`, asString(mirror['cluster']));
  });
}

const HEADER_LISTS = ['request_headers_to_add', 'response_headers_to_add', 'request_headers_to_remove', 'response_headers_to_remove'];

/** Envoy's HeaderParser refuses to add, set or remove pseudo-headers and `host` (any case). */
function checkHeaderOperations(ctx: Context, owner: JsonObject, path: string): void {
  for (const list of HEADER_LISTS) {
    const items = Array.isArray(owner[list]) ? owner[list] : [];
    items.forEach((item, i) => {
      const name = typeof item === 'string' ? item : asString(asObject(asObject(item)?.['header'])?.['key']);
      if (name === undefined || (!name.startsWith(':') && name.toLowerCase() !== 'host')) return;
      const verb = list.endsWith('_remove') ? 'removed' : 'modified';
      report(ctx, at(path, `${list}[${i}]`), 'headers.modifiable', `${JSON.stringify(name)}: :-prefixed or host headers may not be ${verb}`);
    });
  }
}

/** Every RegexMatcher below `json` (string, header and query matchers, regex rewrites) compiles as RE2. */
function checkRegexes(ctx: Context, json: Json | undefined, path: string): void {
  if (Array.isArray(json)) {
    json.forEach((item, i) => {
      checkRegexes(ctx, item, `${path}[${i}]`);
    });
    return;
  }
  const object = asObject(json);
  if (!object) return;
  for (const [key, value] of Object.entries(object)) {
    const regex = key === 'safe_regex' || (key === 'pattern' && path.endsWith('regex_rewrite')) ? asString(asObject(value)?.['regex']) : undefined;
    const problem = regex === undefined ? undefined : checkRe2Regex(regex);
    if (problem) report(ctx, at(path, `${key}.regex`), 'regex.re2', `regex ${JSON.stringify(regex)} does not compile in RE2: ${problem}`);
    else checkRegexes(ctx, value, at(path, key));
  }
}

/** One RouteConfiguration, sent over RDS or inline in an HttpConnectionManager; `path` names where it sits. */
function checkRouteConfiguration(ctx: Context, config: JsonObject, path: string): void {
  const configName = asString(config['name']) ?? '';
  const vhostNames = new Map<string, number>();
  const domains = new Map<string, string>();
  checkHeaderOperations(ctx, config, path);
  checkRegexes(ctx, config['virtual_hosts'], at(path, 'virtual_hosts'));
  objects(config['virtual_hosts']).forEach((vhost, v) => {
    const vhostPath = at(path, `virtual_hosts[${v}]`);
    checkHeaderOperations(ctx, vhost, vhostPath);
    const vhostName = asString(vhost['name']) ?? '';
    const firstVhost = vhostNames.get(vhostName);
    if (firstVhost === undefined) vhostNames.set(vhostName, v);
    else report(ctx, `${vhostPath}.name`, 'unique.virtual_host', `virtual host name ${JSON.stringify(vhostName)} is also used by virtual_hosts[${firstVhost}]`);
    const vhostDomains = Array.isArray(vhost['domains']) ? vhost['domains'] : [];
    vhostDomains.forEach((domain, d) => {
      if (typeof domain !== 'string') return;
      // Envoy lower-cases domains before indexing them, so "Reviews" and "reviews" collide.
      const key = domain.toLowerCase();
      const first = domains.get(key);
      const domainPath = `${vhostPath}.domains[${d}]`;
      if (first === undefined) domains.set(key, domainPath);
      else if (key === '*') report(ctx, domainPath, 'unique.domain', `only a single wildcard domain is permitted in route ${JSON.stringify(configName)} (also at ${first})`);
      else report(ctx, domainPath, 'unique.domain', `only unique values for domains are permitted: duplicate entry of domain ${key} in route ${JSON.stringify(configName)} (also at ${first})`);
    });
    objects(vhost['routes']).forEach((route, r) => {
      checkHeaderOperations(ctx, route, `${vhostPath}.routes[${r}]`);
      const action = asObject(route['route']);
      if (action) checkRouteAction(ctx, action, `${vhostPath}.routes[${r}].route`);
    });
  });
}

function isRouterFilter(filter: JsonObject): boolean {
  const typed = asObject(filter['typed_config']);
  if (typed) return typed['@type'] === ROUTER_TYPE;
  return filter['name'] === ROUTER_FILTER_NAME;
}

/** Listeners only proxyless gRPC reads: client api_listeners and Istio-named server listeners (gRFC A36). */
const GRPC_SERVER_LISTENER_PREFIX = 'xds.istio.io/grpc/lds/inbound/';

function checkHttpConnectionManager(ctx: Context, hcm: JsonObject, path: string, grpc: boolean): void {
  const rds = asObject(hcm['rds']);
  const routeName = rds ? asString(rds['route_config_name']) : undefined;
  if (routeName !== undefined && !ctx.routeNames.has(routeName)) {
    report(ctx, `${path}.rds.route_config_name`, 'ref.route_config', `RDS route_config_name ${JSON.stringify(routeName)} has no RouteConfiguration; the listener waits for it forever`);
  }
  const inline = asObject(hcm['route_config']);
  if (inline) checkRouteConfiguration(ctx, inline, `${path}.route_config`);
  const filters = objects(hcm['http_filters']);
  // Envoy accepts several filters of one name (Istio sends an RBAC filter per action, all `envoy.filters.http.rbac`); gRPC does not.
  const seen = new Map<string, number>();
  filters.forEach((filter, i) => {
    const name = asString(filter['name']) ?? '';
    const first = seen.get(name);
    if (grpc && first !== undefined) {
      report(ctx, `${path}.http_filters[${i}].name`, 'http_filters.unique_name', `HTTP filter name ${JSON.stringify(name)} is also used by http_filters[${first}]; gRPC rejects the listener (duplicate HTTP filter name)`);
    }
    if (first === undefined) seen.set(name, i);
    if (isRouterFilter(filter) && i !== filters.length - 1) {
      report(ctx, `${path}.http_filters[${i}]`, 'http_filters.router_last', `terminal filter ${JSON.stringify(name)} must be the last filter in the http filter chain`);
    }
  });
  const last = filters.at(-1);
  if (!last || !isRouterFilter(last)) {
    const lastName = last ? asString(last['name']) ?? '' : undefined;
    const message = lastName === undefined
      ? `http_filters is empty; the router filter (${ROUTER_FILTER_NAME}) must end the chain`
      : `non-terminal filter ${JSON.stringify(lastName)} is the last filter; the router filter (${ROUTER_FILTER_NAME}) must end the chain`;
    report(ctx, `${path}.http_filters`, 'http_filters.router_last', message);
  }
}

function checkTcpProxy(ctx: Context, proxy: JsonObject, path: string): void {
  checkClusterRef(ctx, `${path}.cluster`, asString(proxy['cluster']));
  const weighted = asObject(proxy['weighted_clusters']);
  objects(weighted?.['clusters']).forEach((cluster, i) => {
    checkClusterRef(ctx, `${path}.weighted_clusters.clusters[${i}].name`, asString(cluster['name']));
  });
}

/** Sorted keys and no proto3 defaults, so two filter_chain_match objects compare as Envoy compares the messages. */
function canonical(value: Json | undefined): string {
  if (isDefault(value)) return 'default';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const object = asObject(value);
  if (!object) return JSON.stringify(value ?? null);
  const parts = Object.keys(object).sort()
    .filter((key) => !isDefault(object[key]))
    .map((key) => `${JSON.stringify(key)}:${canonical(object[key])}`);
  return `{${parts.join(',')}}`;
}

function isDefault(value: Json | undefined): boolean {
  if (value === undefined || value === null || value === '' || value === 0 || value === false) return true;
  if (Array.isArray(value)) return value.length === 0;
  const object = asObject(value);
  return object !== undefined && Object.values(object).every(isDefault);
}

function checkFilterChain(ctx: Context, chain: JsonObject, path: string, grpc: boolean): void {
  const filters = objects(chain['filters']);
  if (filters.length === 0) report(ctx, `${path}.filters`, 'filter_chain.filters', 'a filter chain needs at least one network filter');
  filters.forEach((filter, i) => {
    const typed = asObject(filter['typed_config']);
    const typedPath = `${path}.filters[${i}].typed_config`;
    if (typed?.['@type'] === HTTP_CONNECTION_MANAGER_TYPE) checkHttpConnectionManager(ctx, typed, typedPath, grpc);
    if (typed?.['@type'] === TCP_PROXY_TYPE) checkTcpProxy(ctx, typed, typedPath);
  });
}

function listenerAddresses(listener: JsonObject): { key: string; path: string }[] {
  const candidates = [{ address: asObject(listener['address']), path: 'address' }];
  objects(listener['additional_addresses']).forEach((extra, i) => {
    candidates.push({ address: asObject(extra['address']), path: `additional_addresses[${i}].address` });
  });
  return candidates.flatMap(({ address, path }) => {
    const socket = asObject(address?.['socket_address']);
    const pipe = asObject(address?.['pipe']);
    if (pipe) return [{ key: `pipe ${asString(pipe['path']) ?? ''}`, path }];
    const port = asNumber(socket?.['port_value']);
    // Port 0 asks the kernel for a fresh ephemeral port, so it cannot collide.
    if (!socket || port === undefined || port === 0) return [];
    const protocol = enumName('envoy.config.core.v3.SocketAddress.Protocol', socket['protocol']);
    return [{ key: `${protocol} ${canonicalIp(asString(socket['address']) ?? '')}:${port}`, path }];
  });
}

function checkListener(ctx: Context, listener: JsonObject, bound: Map<string, string>): void {
  const name = asString(listener['name']);
  const chains = objects(listener['filter_chains']);
  const defaultChain = asObject(listener['default_filter_chain']);
  const api = asObject(asObject(listener['api_listener'])?.['api_listener']);
  const grpcServer = name?.startsWith(GRPC_SERVER_LISTENER_PREFIX) ?? false;
  if (api?.['@type'] === HTTP_CONNECTION_MANAGER_TYPE) {
    checkHttpConnectionManager(ctx, api, where('listener', name, 'api_listener.api_listener'), true);
  }
  if (!api && chains.length === 0 && !defaultChain) {
    report(ctx, where('listener', name, 'filter_chains'), 'listener.filter_chains', 'no filter chains specified');
  }
  const matches = new Map<string, number>();
  chains.forEach((chain, i) => {
    checkFilterChain(ctx, chain, where('listener', name, `filter_chains[${i}]`), grpcServer);
    const key = canonical(chain['filter_chain_match']);
    const first = matches.get(key);
    if (first === undefined) matches.set(key, i);
    else report(ctx, where('listener', name, `filter_chains[${i}].filter_chain_match`), 'filter_chain.unique_match', `multiple filter chains with the same matching rules (also filter_chains[${first}])`);
  });
  if (defaultChain) checkFilterChain(ctx, defaultChain, where('listener', name, 'default_filter_chain'), grpcServer);
  // Envoy refuses a second listener on an address even when neither binds it (bind_to_port: false).
  for (const { key, path } of listenerAddresses(listener)) {
    const owner = bound.get(key);
    const here = where('listener', name, path);
    if (owner === undefined) bound.set(key, here);
    else report(ctx, here, 'listener.address', `${key} is already the address of ${owner}; Envoy refuses two listeners on one address`);
  }
}

function checkLoadBalancing(ctx: Context, cluster: JsonObject, name: string | undefined): void {
  if (cluster['load_balancing_policy'] !== undefined) return;
  const lbPolicy = enumName('envoy.config.cluster.v3.Cluster.LbPolicy', cluster['lb_policy']);
  const type = cluster['cluster_type'] !== undefined ? 'cluster_type' : enumName('envoy.config.cluster.v3.Cluster.DiscoveryType', cluster['type']);
  // ORIGINAL_DST and extension cluster types bring their own load balancer; the built-in ones do not.
  const providesLb = type === 'ORIGINAL_DST' || type === 'cluster_type';
  if (providesLb && lbPolicy !== 'CLUSTER_PROVIDED') {
    report(ctx, where('cluster', name, 'lb_policy'), 'cluster.lb_policy', `cluster type ${type} provides its own load balancer, so lb_policy must be CLUSTER_PROVIDED, not ${lbPolicy}`);
  } else if (!providesLb && lbPolicy === 'CLUSTER_PROVIDED') {
    report(ctx, where('cluster', name, 'lb_policy'), 'cluster.lb_policy', `lb_policy CLUSTER_PROVIDED needs a cluster type that provides a load balancer; ${type} does not`);
  }
  const ring = asObject(cluster['ring_hash_lb_config']);
  if (lbPolicy === 'RING_HASH' && ring) {
    const min = asNumber(ring['minimum_ring_size']) ?? RING_HASH_DEFAULT_MIN;
    const max = asNumber(ring['maximum_ring_size']) ?? RING_HASH_DEFAULT_MAX;
    if (min > max) report(ctx, where('cluster', name, 'ring_hash_lb_config'), 'cluster.ring_hash', `minimum_ring_size (${min}) > maximum_ring_size (${max})`);
  }
  const tableSize = asNumber(asObject(cluster['maglev_lb_config'])?.['table_size']);
  if (lbPolicy === 'MAGLEV' && tableSize !== undefined && !isPrime(tableSize)) {
    report(ctx, where('cluster', name, 'maglev_lb_config.table_size'), 'cluster.maglev', `the Maglev table size must be a prime number, got ${tableSize}`);
  }
}

/** Endpoints of EDS and STATIC clusters are IP addresses: Envoy resolves no names there ("malformed IP address"). */
function checkEndpointAddresses(ctx: Context, assignment: JsonObject, path: string): void {
  objects(assignment['endpoints']).forEach((locality, l) => {
    objects(locality['lb_endpoints']).forEach((lb, e) => {
      const socket = asObject(asObject(asObject(lb['endpoint'])?.['address'])?.['socket_address']);
      const address = asString(socket?.['address']);
      if (!socket || address === undefined || socket['resolver_name'] !== undefined || isIP(address) !== 0) return;
      report(ctx, at(path, `endpoints[${l}].lb_endpoints[${e}].endpoint.address.socket_address.address`), 'endpoint.ip', `malformed IP address: ${address}; only DNS clusters resolve names`);
    });
  });
}

function checkCluster(ctx: Context, cluster: JsonObject, assignments: ReadonlySet<string>): void {
  const name = asString(cluster['name']);
  const timeout = asString(cluster['connect_timeout']);
  if (timeout !== undefined) {
    try {
      const { seconds, nanos } = parseDurationJson(timeout);
      if (seconds < 0 || nanos < 0 || (seconds === 0 && nanos === 0)) {
        report(ctx, where('cluster', name, 'connect_timeout'), 'cluster.connect_timeout', `connect_timeout must be greater than 0s, got ${timeout}`);
      }
    } catch (error) {
      if (!(error instanceof ProtoJsonError)) throw error;
      report(ctx, where('cluster', name, 'connect_timeout'), 'cluster.connect_timeout', error.message);
    }
  }
  checkLoadBalancing(ctx, cluster, name);
  const loadAssignment = asObject(cluster['load_assignment']);
  if (loadAssignment && enumName('envoy.config.cluster.v3.Cluster.DiscoveryType', cluster['type']) === 'STATIC') checkEndpointAddresses(ctx, loadAssignment, where('cluster', name, 'load_assignment'));
  if (enumName('envoy.config.cluster.v3.Cluster.DiscoveryType', cluster['type']) === 'EDS' && cluster['cluster_type'] === undefined) {
    const serviceName = asString(asObject(cluster['eds_cluster_config'])?.['service_name']);
    const wanted = serviceName !== undefined && serviceName !== '' ? serviceName : name ?? '';
    if (!assignments.has(wanted)) {
      report(ctx, where('cluster', name, 'eds_cluster_config.service_name'), 'ref.cluster_load_assignment', `EDS cluster has no ClusterLoadAssignment named ${JSON.stringify(wanted)}; it stays warming with no endpoints`);
    }
  }
  const clusterType = asObject(cluster['cluster_type']);
  const aggregate = asObject(clusterType?.['typed_config']);
  if (aggregate?.['@type'] === AGGREGATE_CLUSTER_TYPE && Array.isArray(aggregate['clusters'])) {
    aggregate['clusters'].forEach((member, i) => {
      checkClusterRef(ctx, where('cluster', name, `cluster_type.typed_config.clusters[${i}]`), asString(member));
    });
  }
}

/** Every cross-resource rule Envoy enforces (or silently fails on) across one proxy's resources. */
export function checkCrossReferences(set: XdsResourceSet): RuleViolation[] {
  const ctx: Context = {
    clusterNames: new Set(set.clusters.flatMap((c) => asString(c['name']) ?? [])),
    routeNames: new Set(set.routes.flatMap((r) => asString(r['name']) ?? [])),
    out: [],
  };
  checkUniqueNames(ctx, 'cluster', set.clusters, 'name');
  checkUniqueNames(ctx, 'endpoints', set.endpoints, 'cluster_name');
  checkUniqueNames(ctx, 'listener', set.listeners, 'name');
  checkUniqueNames(ctx, 'route', set.routes, 'name');
  const assignments = new Set(set.endpoints.flatMap((e) => asString(e['cluster_name']) ?? []));
  for (const assignment of set.endpoints) checkEndpointAddresses(ctx, assignment, where('endpoints', asString(assignment['cluster_name']), ''));
  for (const cluster of set.clusters) checkCluster(ctx, cluster, assignments);
  const bound = new Map<string, string>();
  for (const listener of set.listeners) checkListener(ctx, listener, bound);
  for (const config of set.routes) checkRouteConfiguration(ctx, config, where('route', asString(config['name']), ''));
  return ctx.out;
}
