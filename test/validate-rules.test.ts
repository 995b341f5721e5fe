import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import protobuf from 'protobufjs';
import { encodeProtoJson, type JsonObject } from '../src/xds/proto-json.ts';
import { envoyRoot, messageType } from '../src/xds/protos.ts';
import {
  CLUSTER_TYPE, ENDPOINT_TYPE, HTTP_CONNECTION_MANAGER_TYPE, HTTP_PROTOCOL_OPTIONS_TYPE, LISTENER_TYPE, ROUTE_TYPE, ROUTER_TYPE,
} from '../src/xds/type-urls.ts';
import { checkResourceJson, checkValidateRules, unsupportedRulesIn, type RuleViolation } from '../src/xds/validate/pgv.ts';

const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
const ADS = { ads: {}, resource_api_version: 'V3' };

function cluster(extra: JsonObject = {}): JsonObject {
  return {
    name: REVIEWS,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS, service_name: REVIEWS },
    connect_timeout: '10s',
    lb_policy: 'ROUND_ROBIN',
    ...extra,
  };
}

function endpoints(lbEndpoint: JsonObject = {}): JsonObject {
  return {
    cluster_name: REVIEWS,
    endpoints: [{
      locality: { region: 'us-east1', zone: 'us-east1-b' },
      lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.5', port_value: 9080 } } }, ...lbEndpoint }],
    }],
  };
}

function routeConfig(routes: JsonObject[] = [{ match: { prefix: '/' }, route: { cluster: REVIEWS } }], domains = ['reviews.default.svc.cluster.local', 'reviews']): JsonObject {
  return { name: '9080', virtual_hosts: [{ name: 'reviews.default.svc.cluster.local:9080', domains, routes }] };
}

function httpConnectionManager(extra: JsonObject = {}): JsonObject {
  return {
    '@type': HTTP_CONNECTION_MANAGER_TYPE,
    stat_prefix: 'outbound_0.0.0.0_9080',
    rds: { config_source: ADS, route_config_name: '9080' },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
    ...extra,
  };
}

function listener(hcm: JsonObject = httpConnectionManager()): JsonObject {
  return {
    name: '0.0.0.0_9080',
    address: { socket_address: { address: '0.0.0.0', port_value: 9080 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }],
  };
}

function rulesAt(violations: RuleViolation[], path: string): string[] {
  return violations.filter((v) => v.path === path).map((v) => v.rule);
}

void describe('Envoy validate.rules checks', () => {
  void test('a valid EDS cluster, its endpoints, a listener with RDS and its route break no rule', () => {
    assert.deepEqual(checkResourceJson(CLUSTER_TYPE, cluster()), []);
    assert.deepEqual(checkResourceJson(ENDPOINT_TYPE, endpoints()), []);
    assert.deepEqual(checkResourceJson(LISTENER_TYPE, listener()), []);
    assert.deepEqual(checkResourceJson(ROUTE_TYPE, routeConfig()), []);
  });

  void test('every rule the loaded Envoy protos use is one the checker understands', () => {
    assert.deepEqual(unsupportedRulesIn(envoyRoot()), []);
  });

  void test("a cluster without a name breaks Envoy's min_len rule", () => {
    const violations = checkResourceJson(CLUSTER_TYPE, cluster({ name: '' }));
    assert.deepEqual(violations.map((v) => [v.path, v.rule]), [['name', 'string.min_len']]);
  });

  void test('a connect_timeout of "0s" breaks duration gt 0; 1ms passes and unset is fine', () => {
    assert.deepEqual(rulesAt(checkResourceJson(CLUSTER_TYPE, cluster({ connect_timeout: '0s' })), 'connect_timeout'), ['duration.gt']);
    assert.deepEqual(checkResourceJson(CLUSTER_TYPE, cluster({ connect_timeout: '0.001s' })), []);
    const { connect_timeout: _unset, ...withoutTimeout } = cluster();
    assert.deepEqual(checkResourceJson(CLUSTER_TYPE, withoutTimeout), []);
  });

  void test('a DNS refresh rate of exactly 1ms breaks its gt {nanos: 1000000} rule, 1.1ms does not', () => {
    const violations = checkResourceJson(CLUSTER_TYPE, cluster({ dns_refresh_rate: '0.001s' }));
    assert.deepEqual(rulesAt(violations, 'dns_refresh_rate'), ['duration.gt']);
    assert.match(violations[0]?.message ?? '', /greater than 0\.001s/);
    assert.deepEqual(checkResourceJson(CLUSTER_TYPE, cluster({ dns_refresh_rate: '0.0011s' })), []);
  });

  void test('an lb_policy number outside the defined values breaks enum defined_only', () => {
    assert.deepEqual(rulesAt(checkResourceJson(CLUSTER_TYPE, cluster({ lb_policy: 42 })), 'lb_policy'), ['enum.defined_only']);
  });

  void test('an endpoint weight of 0 breaks the uint32 rule inside its UInt32Value wrapper; unset is fine', () => {
    const violations = checkResourceJson(ENDPOINT_TYPE, endpoints({ load_balancing_weight: 0 }));
    assert.deepEqual(rulesAt(violations, 'endpoints[0].lb_endpoints[0].load_balancing_weight'), ['uint32.gte']);
    assert.deepEqual(checkResourceJson(ENDPOINT_TYPE, endpoints({ load_balancing_weight: 3 })), []);
  });

  void test('an outlier detection ejecting 101% of hosts breaks uint32 lte 100', () => {
    const violations = checkResourceJson(CLUSTER_TYPE, cluster({ outlier_detection: { max_ejection_percent: 101 } }));
    assert.deepEqual(rulesAt(violations, 'outlier_detection.max_ejection_percent'), ['uint32.lte']);
  });

  void test('a direct response without a status is the proto3 zero, outside [200, 600)', () => {
    const path = 'virtual_hosts[0].routes[0].direct_response.status';
    const noStatus = checkResourceJson(ROUTE_TYPE, routeConfig([{ match: { prefix: '/' }, direct_response: {} }]));
    assert.deepEqual(rulesAt(noStatus, path), ['uint32.gte']);
    const tooHigh = checkResourceJson(ROUTE_TYPE, routeConfig([{ match: { prefix: '/' }, direct_response: { status: 700 } }]));
    assert.deepEqual(rulesAt(tooHigh, path), ['uint32.lt']);
    assert.deepEqual(checkResourceJson(ROUTE_TYPE, routeConfig([{ match: { prefix: '/' }, direct_response: { status: 404 } }])), []);
  });

  void test('a header matcher may hold a space (Envoy marks it strict: false) but a newline breaks HTTP_HEADER_NAME', () => {
    const withHeader = (name: string): JsonObject =>
      routeConfig([{ match: { prefix: '/', headers: [{ name, exact_match: 'jason' }] }, route: { cluster: REVIEWS } }]);
    assert.deepEqual(checkResourceJson(ROUTE_TYPE, withHeader('end user')), []);
    const violations = checkResourceJson(ROUTE_TYPE, withHeader('end-user\n'));
    assert.deepEqual(rulesAt(violations, 'virtual_hosts[0].routes[0].match.headers[0].name'), ['string.well_known_regex']);
  });

  void test("a space in the cluster's SNI override header breaks strict HTTP_HEADER_NAME inside its protocol options Any", () => {
    const withSniHeader = (header: string): JsonObject => cluster({
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
          '@type': HTTP_PROTOCOL_OPTIONS_TYPE,
          upstream_http_protocol_options: { auto_sni: true, override_auto_sni_header: header },
          explicit_http_config: { http2_protocol_options: {} },
        },
      },
    });
    const path = 'typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]'
      + '.upstream_http_protocol_options.override_auto_sni_header';
    assert.deepEqual(rulesAt(checkResourceJson(CLUSTER_TYPE, withSniHeader('x sni')), path), ['string.well_known_regex']);
    assert.deepEqual(checkResourceJson(CLUSTER_TYPE, withSniHeader('x-sni')), []);
    // The field says ignore_empty, so leaving it blank is fine even though "" is not a header name.
    assert.deepEqual(checkResourceJson(CLUSTER_TYPE, withSniHeader('')), []);
  });

  void test('a health check host with a control character breaks strict HTTP_HEADER_VALUE; a space does not', () => {
    const withHost = (host: string): JsonObject => cluster({
      health_checks: [{ timeout: '1s', interval: '5s', unhealthy_threshold: 3, healthy_threshold: 1, http_health_check: { path: '/healthz', host } }],
    });
    assert.deepEqual(checkResourceJson(CLUSTER_TYPE, withHost('reviews local')), []);
    assert.deepEqual(rulesAt(checkResourceJson(CLUSTER_TYPE, withHost('reviews\u0001')), 'health_checks[0].http_health_check.host'), ['string.well_known_regex']);
  });

  void test('a rule inside an Any (typed_config of a listener filter) is checked', () => {
    const hcm = httpConnectionManager({ stat_prefix: '', rds: null, route_config: routeConfig(undefined, []) });
    const violations = checkResourceJson(LISTENER_TYPE, listener(hcm));
    assert.deepEqual(violations.map((v) => [v.path, v.rule]), [
      ['filter_chains[0].filters[0].typed_config.stat_prefix', 'string.min_len'],
      ['filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].domains', 'repeated.min_items'],
    ]);
  });

  void test('a route that neither forwards, redirects nor responds breaks the required action oneof', () => {
    assert.deepEqual(rulesAt(checkResourceJson(ROUTE_TYPE, routeConfig([{ match: { prefix: '/' } }])), 'virtual_hosts[0].routes[0].action'), ['oneof.required']);
    const noCluster = checkResourceJson(ROUTE_TYPE, routeConfig([{ match: { prefix: '/' }, route: { timeout: '5s' } }]));
    assert.deepEqual(rulesAt(noCluster, 'virtual_hosts[0].routes[0].route.cluster_specifier'), ['oneof.required']);
  });

  void test('a route without a match breaks message.required', () => {
    const violations = checkResourceJson(ROUTE_TYPE, routeConfig([{ route: { cluster: REVIEWS } }]));
    assert.deepEqual(rulesAt(violations, 'virtual_hosts[0].routes[0].match'), ['message.required']);
  });

  void test('a router strict_check_headers entry Envoy does not know breaks the items rule', () => {
    const hcm = httpConnectionManager({
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE, strict_check_headers: ['x-envoy-max-retries', 'x-envoy-foo'] } }],
    });
    const violations = checkResourceJson(LISTENER_TYPE, listener(hcm));
    assert.deepEqual(violations.map((v) => [v.path, v.rule]), [
      ['filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.strict_check_headers[1]', 'repeated.items.string.in'],
    ]);
  });

  void test('an empty filter metadata key breaks the map keys rule', () => {
    const violations = checkResourceJson(CLUSTER_TYPE, cluster({ metadata: { filter_metadata: { '': { team: 'books' } } } }));
    assert.deepEqual(rulesAt(violations, 'metadata.filter_metadata[""]'), ['map.keys.string.min_len']);
  });

  void test('a healthy panic threshold of 150% breaks the double rule on Percent', () => {
    const violations = checkResourceJson(CLUSTER_TYPE, cluster({ common_lb_config: { healthy_panic_threshold: { value: 150 } } }));
    assert.deepEqual(rulesAt(violations, 'common_lb_config.healthy_panic_threshold.value'), ['double.lte']);
  });

  void test('wire bytes are checked just like messages', () => {
    const type = messageType('envoy.config.cluster.v3.Cluster');
    const bytes = encodeProtoJson(type, cluster({ name: '', connect_timeout: '0s' }));
    assert.deepEqual(checkValidateRules(type, bytes).map((v) => v.rule), ['string.min_len', 'duration.gt']);
  });

  void test('beyond validate.rules, as real Envoy refuses them: a duration past int64 nanoseconds and a uint32 that does not fit', () => {
    const huge = checkResourceJson(CLUSTER_TYPE, cluster({ connect_timeout: '10000000000s' }));
    assert.deepEqual(rulesAt(huge, 'connect_timeout'), ['envoy.duration']);
    assert.match(huge[0]?.message ?? '', /Duration out-of-range/);
    assert.deepEqual(checkResourceJson(CLUSTER_TYPE, cluster({ connect_timeout: '9223372036s' })), []);
    const keepalive = checkResourceJson(CLUSTER_TYPE, cluster({ upstream_connection_options: { tcp_keepalive: { keepalive_time: 4_294_967_296 } } }));
    assert.deepEqual(keepalive.map((v) => v.rule), ['proto3_json']);
    assert.match(keepalive[0]?.message ?? '', /out of range for uint32/);
  });

  void test('JSON that does not even convert is reported as a violation, not thrown', () => {
    const violations = checkResourceJson(CLUSTER_TYPE, cluster({ conect_timeout: '1s' }));
    assert.deepEqual(violations.map((v) => [v.path, v.rule]), [['conect_timeout', 'proto3_json']]);
    assert.equal(checkResourceJson('type.googleapis.com/envoy.config.nope.v3.Nope', {})[0]?.rule, 'type_url');
  });
});

void describe('rules come from the proto being checked, not from a table', () => {
  const root = new protobuf.Root();
  root.loadSync(['google/protobuf/timestamp.proto'], { keepCase: true });
  protobuf.parse(`
    syntax = "proto3";
    package meshpilot.test;
    message Probe {
      int32 outside = 1 [(validate.rules).int32 = {lt: 10, gt: 20}];
      repeated string tags = 2 [(validate.rules).repeated = {unique: true, max_items: 3}];
      bytes id = 3 [(validate.rules).bytes = {len: 4}];
      google.protobuf.Timestamp at = 4 [(validate.rules).timestamp = {lt_now: true}];
      int64 budget = 5 [(validate.rules).int64 = {gte: 5, ignore_empty: true}];
      string host = 6 [(validate.rules).string.hostname = true];
      Quiet quiet = 7;
      optional string nick = 8 [(validate.rules).string.min_len = 2];
    }
    message Quiet {
      option (validate.disabled) = true;
      string name = 1 [(validate.rules).string.min_len = 1];
    }
  `, root, { keepCase: true });
  root.resolveAll();
  const probe = root.lookupType('meshpilot.test.Probe');
  const check = (object: Record<string, unknown>): [string, string][] =>
    checkValidateRules(probe, probe.fromObject({ host: 'reviews.local', id: Buffer.from([1, 2, 3, 4]), ...object })).map((v) => [v.path, v.rule]);

  void test('a well-formed probe passes', () => {
    assert.deepEqual(check({ outside: 25, tags: ['a', 'b'], budget: 7, quiet: {}, nick: 'jo' }), []);
  });

  void test('gt above lt means "outside the range", as PGV defines it', () => {
    assert.deepEqual(check({ outside: 15 }), [['outside', 'int32.gt']]);
    assert.deepEqual(check({ outside: 9 }), []);
  });

  void test('repeated, bytes, timestamp, int64 and hostname rules each catch their own mistake', () => {
    const future = { seconds: Math.floor(Date.now() / 1000) + 3600, nanos: 0 };
    assert.deepEqual(check({ tags: ['a', 'a'], id: Buffer.from([1, 2, 3]), at: future, budget: '4', host: 'bad_host!' }), [
      ['tags', 'repeated.unique'], ['id', 'bytes.len'], ['at', 'timestamp.lt_now'], ['budget', 'int64.gte'], ['host', 'string.hostname'],
    ]);
    // ignore_empty: a budget left at zero is not held to gte 5.
    assert.deepEqual(check({ budget: 0 }), []);
  });

  void test('a disabled message is skipped and an unset proto3 optional field is not checked', () => {
    assert.deepEqual(check({ quiet: { name: '' } }), []);
    assert.deepEqual(check({ nick: 'j' }), [['nick', 'string.min_len']]);
  });
});
