import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { HTTP_CONNECTION_MANAGER_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE } from '../src/xds/type-urls.ts';
import { checkCrossReferences, type XdsResourceSet } from '../src/xds/validate/cross-refs.ts';
import type { RuleViolation } from '../src/xds/validate/pgv.ts';

const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';
const ADS = { ads: {}, resource_api_version: 'V3' };
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } };

function edsCluster(name: string, extra: JsonObject = {}): JsonObject {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: ADS, service_name: name }, connect_timeout: '10s', ...extra };
}

function assignment(clusterName: string): JsonObject {
  return {
    cluster_name: clusterName,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.5', port_value: 9080 } } } }] }],
  };
}

function hcm(extra: JsonObject = {}): JsonObject {
  return {
    '@type': HTTP_CONNECTION_MANAGER_TYPE,
    stat_prefix: 'outbound_0.0.0.0_9080',
    rds: { config_source: ADS, route_config_name: '9080' },
    http_filters: [ROUTER],
    ...extra,
  };
}

function listener(name: string, port: number, manager: JsonObject = hcm(), extra: JsonObject = {}): JsonObject {
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: manager }] }],
    ...extra,
  };
}

function virtualHost(name: string, domains: string[], routes: JsonObject[] = [{ match: { prefix: '/' }, route: { cluster: REVIEWS } }]): JsonObject {
  return { name, domains, routes };
}

/** The resources one sidecar gets for "reviews on port 9080": the baseline every story bends. */
function bookinfo(): { clusters: JsonObject[]; endpoints: JsonObject[]; listeners: JsonObject[]; routes: JsonObject[] } {
  return {
    clusters: [edsCluster(REVIEWS), edsCluster(RATINGS)],
    endpoints: [assignment(REVIEWS), assignment(RATINGS)],
    listeners: [listener('0.0.0.0_9080', 9080)],
    routes: [{ name: '9080', virtual_hosts: [virtualHost('reviews.default.svc.cluster.local:9080', ['reviews.default.svc.cluster.local', 'reviews'])] }],
  };
}

function pairs(violations: RuleViolation[]): [string, string][] {
  return violations.map((v) => [v.path, v.rule]);
}

function withRoutes(routes: JsonObject[]): XdsResourceSet {
  const set = bookinfo();
  set.routes = [{ name: '9080', virtual_hosts: [virtualHost('reviews', ['reviews'], routes)] }];
  return set;
}

void describe('cross-resource checks', () => {
  void test('a valid EDS cluster + its CLA + a listener with RDS + its route passes with no violations', () => {
    assert.deepEqual(checkCrossReferences(bookinfo()), []);
  });

  void test("a route to a cluster nobody sent is reported with the route's name and path", () => {
    const set = withRoutes([{ match: { prefix: '/' }, route: { cluster: 'outbound|9080||details.default.svc.cluster.local' } }]);
    const violations = checkCrossReferences(set);
    assert.deepEqual(pairs(violations), [['route "9080" virtual_hosts[0].routes[0].route.cluster', 'ref.cluster']]);
    assert.match(violations[0]?.message ?? '', /details\.default/);
  });

  void test('a route with a weighted cluster total of 0 is rejected', () => {
    const set = withRoutes([{
      match: { prefix: '/' },
      route: { weighted_clusters: { clusters: [{ name: REVIEWS, weight: 0 }, { name: RATINGS, weight: 0 }] } },
    }]);
    assert.deepEqual(pairs(checkCrossReferences(set)), [['route "9080" virtual_hosts[0].routes[0].route.weighted_clusters.clusters', 'weighted_clusters.sum']]);
  });

  void test('weights that miss total_weight, or name a missing cluster, are rejected', () => {
    const set = withRoutes([{
      match: { prefix: '/' },
      route: { weighted_clusters: { total_weight: 100, clusters: [{ name: REVIEWS, weight: 80 }, { name: 'reviews-v3', weight: 10 }] } },
    }]);
    const base = 'route "9080" virtual_hosts[0].routes[0].route.weighted_clusters';
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      [`${base}.clusters[1].name`, 'ref.cluster'],
      [`${base}.total_weight`, 'weighted_clusters.total_weight'],
    ]);
  });

  void test('a mirror policy pointing at a missing cluster is reported', () => {
    const set = withRoutes([{ match: { prefix: '/' }, route: { cluster: REVIEWS, request_mirror_policies: [{ cluster: 'shadow' }] } }]);
    assert.deepEqual(pairs(checkCrossReferences(set)), [['route "9080" virtual_hosts[0].routes[0].route.request_mirror_policies[0].cluster', 'ref.cluster']]);
  });

  void test('an EDS cluster whose ClusterLoadAssignment was not sent is reported', () => {
    const set = bookinfo();
    set.endpoints = [assignment(REVIEWS)];
    assert.deepEqual(pairs(checkCrossReferences(set)), [[`cluster "${RATINGS}" eds_cluster_config.service_name`, 'ref.cluster_load_assignment']]);
  });

  void test('the CLA is found by service_name when set, and by the cluster name otherwise', () => {
    const set = bookinfo();
    set.clusters = [edsCluster(REVIEWS, { eds_cluster_config: { eds_config: ADS, service_name: 'reviews-eds' } }), edsCluster(RATINGS, { eds_cluster_config: { eds_config: ADS } })];
    assert.deepEqual(pairs(checkCrossReferences(set)), [[`cluster "${REVIEWS}" eds_cluster_config.service_name`, 'ref.cluster_load_assignment']]);
    set.endpoints.push(assignment('reviews-eds'));
    assert.deepEqual(checkCrossReferences(set), []);
  });

  void test('a listener whose RDS name has no RouteConfiguration is rejected', () => {
    const set = bookinfo();
    set.routes = [];
    assert.deepEqual(pairs(checkCrossReferences(set)), [['listener "0.0.0.0_9080" filter_chains[0].filters[0].typed_config.rds.route_config_name', 'ref.route_config']]);
  });

  void test('a proxyless gRPC api_listener is held to the same RDS and router rules', () => {
    const set = bookinfo();
    set.listeners = [{
      name: 'reviews.default.svc.cluster.local:9080',
      api_listener: { api_listener: hcm({ rds: { config_source: ADS, route_config_name: 'reviews:9080' }, http_filters: [] }) },
    }];
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      ['listener "reviews.default.svc.cluster.local:9080" api_listener.api_listener.rds.route_config_name', 'ref.route_config'],
      ['listener "reviews.default.svc.cluster.local:9080" api_listener.api_listener.http_filters', 'http_filters.router_last'],
    ]);
  });

  void test('an inline route_config is checked like one sent over RDS', () => {
    const set = bookinfo();
    set.routes = [];
    const inline = { name: 'inline', virtual_hosts: [virtualHost('all', ['*'], [{ match: { prefix: '/' }, route: { cluster: 'nowhere' } }])] };
    set.listeners = [listener('0.0.0.0_9080', 9080, hcm({ rds: null, route_config: inline }))];
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      ['listener "0.0.0.0_9080" filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster', 'ref.cluster'],
    ]);
  });

  void test('two virtual hosts with the same domain are rejected, whatever its case', () => {
    const set = bookinfo();
    set.routes = [{ name: '9080', virtual_hosts: [virtualHost('reviews', ['reviews', 'reviews:9080']), virtualHost('reviews-canary', ['Reviews'])] }];
    const violations = checkCrossReferences(set);
    assert.deepEqual(pairs(violations), [['route "9080" virtual_hosts[1].domains[0]', 'unique.domain']]);
    assert.match(violations[0]?.message ?? '', /only unique values for domains are permitted/);
  });

  void test('a second "*" domain and a repeated virtual host name are rejected', () => {
    const set = bookinfo();
    set.routes = [{ name: '9080', virtual_hosts: [virtualHost('fallback', ['*']), virtualHost('fallback', ['*'])] }];
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      ['route "9080" virtual_hosts[1].name', 'unique.virtual_host'],
      ['route "9080" virtual_hosts[1].domains[0]', 'unique.domain'],
    ]);
  });

  void test('a name sent twice within one resource type is rejected', () => {
    const set = bookinfo();
    set.clusters.push(edsCluster(REVIEWS));
    set.endpoints.push(assignment(RATINGS));
    set.routes.push({ name: '9080', virtual_hosts: [] });
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      [`cluster "${REVIEWS}" name`, 'unique.name'],
      [`endpoints "${RATINGS}" cluster_name`, 'unique.name'],
      ['route "9080" name', 'unique.name'],
    ]);
  });

  void test('two listeners on 0.0.0.0:9080 collide, binding or not, and so do two spellings of one IPv6 address', () => {
    const set = bookinfo();
    set.listeners.push(listener('virtualInbound', 9080));
    assert.deepEqual(pairs(checkCrossReferences(set)), [['listener "virtualInbound" address', 'listener.address']]);
    // Envoy 1.40 refuses the duplicate address even when neither listener binds it.
    set.listeners = [listener('0.0.0.0_9080', 9080, hcm(), { bind_to_port: false }), listener('twin', 9080, hcm(), { bind_to_port: false })];
    assert.deepEqual(pairs(checkCrossReferences(set)), [['listener "twin" address', 'listener.address']]);
    const v6 = (name: string, address: string): JsonObject => listener(name, 5432, hcm(), { address: { socket_address: { address, port_value: 5432 } }, bind_to_port: false });
    set.listeners = [listener('0.0.0.0_9080', 9080), v6('2001:db8::1_5432', '2001:db8::1'), v6('2001:db8:0::1_5432', '2001:db8:0::1')];
    assert.deepEqual(pairs(checkCrossReferences(set)), [['listener "2001:db8:0::1_5432" address', 'listener.address']]);
  });

  void test('routes may not set or remove pseudo-headers or host, as Envoy refuses', () => {
    const set = withRoutes([{
      match: { prefix: '/' },
      route: { cluster: REVIEWS },
      request_headers_to_add: [{ header: { key: 'Host', value: 'x' } }, { header: { key: 'x-version', value: 'v2' } }],
      response_headers_to_remove: [':status'],
    }]);
    const base = 'route "9080" virtual_hosts[0].routes[0]';
    const violations = checkCrossReferences(set);
    assert.deepEqual(pairs(violations), [[`${base}.request_headers_to_add[0]`, 'headers.modifiable'], [`${base}.response_headers_to_remove[0]`, 'headers.modifiable']]);
    assert.match(violations[0]?.message ?? '', /:-prefixed or host headers may not be modified/);
  });

  void test('every regex compiles in RE2: matchers, header matchers and rewrites', () => {
    const set = withRoutes([
      { match: { safe_regex: { regex: '/a{1001}' } }, route: { cluster: REVIEWS } },
      { match: { prefix: '/', headers: [{ name: 'x', string_match: { safe_regex: { regex: '(?=lookahead)' } } }] }, route: { cluster: REVIEWS } },
      { match: { prefix: '/' }, route: { cluster: REVIEWS, regex_rewrite: { pattern: { regex: '[[:alpha:]]+\\pN' }, substitution: '/' } } },
    ]);
    const base = 'route "9080" virtual_hosts[0].routes';
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      [`${base}[0].match.safe_regex.regex`, 'regex.re2'],
      [`${base}[1].match.headers[0].string_match.safe_regex.regex`, 'regex.re2'],
    ]);
  });

  void test('endpoints of EDS and STATIC clusters are IP addresses', () => {
    const set = bookinfo();
    const unix = assignment(RATINGS);
    (((unix['endpoints'] as JsonObject[])[0]?.['lb_endpoints'] as JsonObject[])[0] as JsonObject)['endpoint'] = { address: { socket_address: { address: 'unix:///var/run/sock', port_value: 80 } } };
    set.endpoints = [assignment(REVIEWS), unix];
    set.clusters.push({ name: 'static', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'static', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'db.example.com', port_value: 5432 } } } }] }] } });
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      [`endpoints "${RATINGS}" endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address`, 'endpoint.ip'],
      ['cluster "static" load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address', 'endpoint.ip'],
    ]);
  });

  void test('a filter chain without filters, a listener without chains, and a repeated match are rejected', () => {
    const set = bookinfo();
    const chain = { filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm() }] };
    set.listeners = [
      { name: 'empty-chain', address: { socket_address: { address: '0.0.0.0', port_value: 15001 } }, filter_chains: [{ filters: [] }] },
      { name: 'no-chains', address: { socket_address: { address: '0.0.0.0', port_value: 15006 } } },
      // No filter_chain_match and an empty one match the same connections.
      listener('0.0.0.0_9080', 9080, hcm(), { filter_chains: [chain, { ...chain, filter_chain_match: {} }] }),
    ];
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      ['listener "empty-chain" filter_chains[0].filters', 'filter_chain.filters'],
      ['listener "no-chains" filter_chains', 'listener.filter_chains'],
      ['listener "0.0.0.0_9080" filter_chains[1].filter_chain_match', 'filter_chain.unique_match'],
    ]);
  });

  void test('the router filter must be present and last; several filters may share a name, as Envoy accepts', () => {
    const fault = { name: 'envoy.filters.http.fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' } };
    const base = 'listener "0.0.0.0_9080" filter_chains[0].filters[0].typed_config.http_filters';
    const run = (filters: JsonObject[]): [string, string][] => {
      const set = bookinfo();
      set.listeners = [listener('0.0.0.0_9080', 9080, hcm({ http_filters: filters }))];
      return pairs(checkCrossReferences(set));
    };
    assert.deepEqual(run([fault]), [[base, 'http_filters.router_last']]);
    assert.deepEqual(run([ROUTER, fault]), [[`${base}[0]`, 'http_filters.router_last'], [base, 'http_filters.router_last']]);
    assert.deepEqual(run([fault, fault, ROUTER]), []);
    assert.deepEqual(run([fault, ROUTER]), []);
  });

  void test('gRPC rejects a listener whose HTTP filters share a name (a server listener or an api_listener)', () => {
    const rbac = (name: string): JsonObject => ({ name, typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC' } });
    const set = bookinfo();
    const filters = [rbac('envoy.filters.http.rbac'), rbac('envoy.filters.http.rbac'), ROUTER];
    set.listeners = [listener('xds.istio.io/grpc/lds/inbound/0.0.0.0:9080', 9080, hcm({ http_filters: filters }))];
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      ['listener "xds.istio.io/grpc/lds/inbound/0.0.0.0:9080" filter_chains[0].filters[0].typed_config.http_filters[1].name', 'http_filters.unique_name'],
    ]);
    set.listeners = [listener('xds.istio.io/grpc/lds/inbound/0.0.0.0:9080', 9080, hcm({ http_filters: [rbac('envoy.filters.http.rbac.DENY'), rbac('envoy.filters.http.rbac'), ROUTER] }))];
    assert.deepEqual(pairs(checkCrossReferences(set)), []);
  });

  void test('a tcp_proxy to a missing cluster is reported', () => {
    const set = bookinfo();
    set.listeners = [{
      name: '0.0.0.0_27017',
      address: { socket_address: { address: '0.0.0.0', port_value: 27017 } },
      filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'mongo', cluster: 'outbound|27017||mongo' } }] }],
    }];
    assert.deepEqual(pairs(checkCrossReferences(set)), [['listener "0.0.0.0_27017" filter_chains[0].filters[0].typed_config.cluster', 'ref.cluster']]);
  });

  void test('clusters with a zero connect timeout or an incoherent load balancer are rejected', () => {
    const set = bookinfo();
    set.clusters = [
      edsCluster(REVIEWS, { connect_timeout: '0s' }),
      edsCluster(RATINGS, { lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: '4096', maximum_ring_size: '2048' } }),
      { name: 'passthrough', type: 'ORIGINAL_DST', connect_timeout: '1s', lb_policy: 'ROUND_ROBIN' },
      { name: 'maglev', type: 'STRICT_DNS', connect_timeout: '1s', lb_policy: 'MAGLEV', maglev_lb_config: { table_size: '65536' } },
      { name: 'static', connect_timeout: '1s', lb_policy: 'CLUSTER_PROVIDED' },
    ];
    assert.deepEqual(pairs(checkCrossReferences(set)), [
      [`cluster "${REVIEWS}" connect_timeout`, 'cluster.connect_timeout'],
      [`cluster "${RATINGS}" ring_hash_lb_config`, 'cluster.ring_hash'],
      ['cluster "passthrough" lb_policy', 'cluster.lb_policy'],
      ['cluster "maglev" maglev_lb_config.table_size', 'cluster.maglev'],
      ['cluster "static" lb_policy', 'cluster.lb_policy'],
    ]);
  });

  void test('an ORIGINAL_DST cluster with CLUSTER_PROVIDED and a prime Maglev table pass', () => {
    const set = bookinfo();
    set.clusters.push(
      { name: 'passthrough', type: 'ORIGINAL_DST', connect_timeout: '1s', lb_policy: 'CLUSTER_PROVIDED' },
      { name: 'maglev', type: 'STRICT_DNS', connect_timeout: '1s', lb_policy: 'MAGLEV', maglev_lb_config: { table_size: '65537' } },
    );
    assert.deepEqual(checkCrossReferences(set), []);
  });
});
