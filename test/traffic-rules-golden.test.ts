// Golden tests: each traffic-management example in fixtures/ renders the Envoy fields that
// Envoy's docs give for that rule, for a sidecar and (degraded where needed) for proxyless gRPC.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { GRPC, Rendered, connectionManager, loadFixture, renderGrpc, renderSidecar } from './support/rendered.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';
const DETAILS = 'details.default.svc.cluster.local';
const PRODUCTPAGE = 'productpage.default.svc.cluster.local';
const FAULT = 'envoy.filters.http.fault';
const HTTP_FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

const action = (route: JsonObject | undefined): JsonObject => (route?.['route'] ?? {}) as JsonObject;
const perFilter = (route: JsonObject | undefined, filter: string): JsonObject | undefined =>
  (route?.['typed_per_filter_config'] as JsonObject | undefined)?.[filter] as JsonObject | undefined;

describe('faults: delay and abort for testers, as in Istio\'s fault-injection task', () => {
  it('delays jason\'s calls to ratings by 7 s, for 100% of them, through the fault filter\'s per-route config', async () => {
    const [jason] = (await renderSidecar('faults')).routes('9080', `${RATINGS}:9080`);
    assert.deepEqual((jason?.['match'] as JsonObject)['headers'], [{ name: 'end-user', string_match: { exact: 'jason' } }]);
    assert.deepEqual(perFilter(jason, FAULT), {
      '@type': HTTP_FAULT_TYPE,
      delay: { fixed_delay: '7s', percentage: { numerator: 1_000_000, denominator: 'MILLION' } },
    });
    assert.equal(action(jason)['cluster'], `outbound|9080|v1|${RATINGS}`);
  });

  it('answers testers with HTTP 500 and lets everyone else through without a fault', async () => {
    const [, tester, rest] = (await renderSidecar('faults')).routes('9080', `${RATINGS}:9080`);
    assert.deepEqual((perFilter(tester, FAULT) ?? {})['abort'], { http_status: 500, percentage: { numerator: 1_000_000, denominator: 'MILLION' } });
    assert.equal(rest?.['typed_per_filter_config'], undefined);
  });

  it('expresses 10% and 0.1% as fractions of a million, and a gRPC status as grpc_status', async () => {
    const [all] = (await renderSidecar('faults')).routes('9080', `${DETAILS}:9080`);
    const fault = perFilter(all, FAULT) ?? {};
    assert.deepEqual(fault['abort'], { grpc_status: 14, percentage: { numerator: 100_000, denominator: 'MILLION' } });
    assert.deepEqual(fault['delay'], { fixed_delay: '0.500s', percentage: { numerator: 1_000, denominator: 'MILLION' } });
  });

  it('puts the fault filter before the router in every HTTP listener, sidecar and gRPC alike', async () => {
    const sidecar = await renderSidecar('faults');
    const names = (connectionManager(sidecar.listener('0.0.0.0_9080'))['http_filters'] as JsonObject[]).map((f) => f['name']);
    assert.deepEqual(names, [FAULT, 'envoy.filters.http.cors', 'envoy.filters.http.router']);
    const grpc = await renderGrpc('faults', [`${RATINGS}:9080`]);
    const grpcNames = (connectionManager(grpc.listener(`${RATINGS}:9080`))['http_filters'] as JsonObject[]).map((f) => f['name']);
    assert.deepEqual(grpcNames, [FAULT, 'envoy.filters.http.router']);
  });
});

describe('canaries: weighted splits', () => {
  it('splits reviews 50/50 between v1 and v3 with weighted_clusters', async () => {
    const [route] = (await renderSidecar('canary-50-50')).routes('9080', `${REVIEWS}:9080`);
    assert.deepEqual((action(route)['weighted_clusters'] as JsonObject)['clusters'], [
      { name: `outbound|9080|v1|${REVIEWS}`, weight: 50 },
      { name: `outbound|9080|v3|${REVIEWS}`, weight: 50 },
    ]);
  });

  it('sends 5% to the v3 canary and marks its responses, as the destination\'s headers ask', async () => {
    const [route] = (await renderSidecar('canary-95-5')).routes('9080', `${REVIEWS}:9080`);
    assert.deepEqual((action(route)['weighted_clusters'] as JsonObject)['clusters'], [
      { name: `outbound|9080|v1|${REVIEWS}`, weight: 95 },
      {
        name: `outbound|9080|v3|${REVIEWS}`,
        weight: 5,
        response_headers_to_add: [{ header: { key: 'x-canary', value: 'true' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      },
    ]);
  });

  it('gives a gRPC client the same split without the header operations it cannot perform', async () => {
    const grpc = await renderGrpc('canary-95-5', [`${REVIEWS}:9080`]);
    const [route] = grpc.routes(`${REVIEWS}:9080`, `${REVIEWS}:9080`);
    assert.deepEqual((action(route)['weighted_clusters'] as JsonObject)['clusters'], [
      { name: `outbound|9080|v1|${REVIEWS}`, weight: 95 },
      { name: `outbound|9080|v3|${REVIEWS}`, weight: 5 },
    ]);
  });
});

describe('retries and timeouts', () => {
  it('retries ratings 3 times on 5xx, reset, connect-failure and retriable-4xx, 2 s per try, within 10 s', async () => {
    const [route] = (await renderSidecar('retries')).routes('9080', `${RATINGS}:9080`);
    assert.equal(action(route)['timeout'], '10s');
    const policy = action(route)['retry_policy'] as JsonObject;
    assert.equal(policy['retry_on'], '5xx,reset,connect-failure,retriable-4xx');
    assert.equal(policy['num_retries'], 3);
    assert.equal(policy['per_try_timeout'], '2s');
    assert.equal((policy['retry_host_predicate'] as JsonObject[])[0]?.['name'], 'envoy.retry_host_predicates.previous_hosts');
    assert.equal(policy['host_selection_retry_max_attempts'], '5');
  });

  it('gives reviews a half-second timeout and no retry policy at all when attempts is 0', async () => {
    const [route] = (await renderSidecar('retries')).routes('9080', `${REVIEWS}:9080`);
    assert.equal(action(route)['timeout'], '0.500s');
    assert.equal(action(route)['retry_policy'], undefined);
  });

  it('moves a numeric retryOn code into retriable_status_codes', async () => {
    const [route] = (await renderSidecar('retries')).routes('9080', `${DETAILS}:9080`);
    const policy = action(route)['retry_policy'] as JsonObject;
    assert.equal(policy['retry_on'], 'unavailable,cancelled,retriable-status-codes');
    assert.deepEqual(policy['retriable_status_codes'], [503]);
  });

  it('gives routes without retries Istio\'s default policy and no timeout', async () => {
    const [route] = (await renderSidecar('canary-50-50')).routes('9080', `${RATINGS}:9080`);
    const policy = action(route)['retry_policy'] as JsonObject;
    assert.equal(action(route)['timeout'], '0s');
    assert.equal(policy['retry_on'], 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes');
    assert.equal(policy['num_retries'], 2);
    // Current Istio no longer retries 503 by default: retriable_status_codes only when retryOn names codes.
    assert.equal(policy['retriable_status_codes'], undefined);
    assert.equal(action(route)['max_grpc_timeout'], '0s');
  });

  it('tells a gRPC client the timeout as max_stream_duration and keeps only gRPC retry codes', async () => {
    const grpc = await renderGrpc('retries', [`${RATINGS}:9080`, `${REVIEWS}:9080`]);
    const [ratings] = grpc.routes(`${RATINGS}:9080`, `${RATINGS}:9080`);
    assert.deepEqual(action(ratings)['max_stream_duration'], { max_stream_duration: '10s' });
    assert.deepEqual(action(ratings)['retry_policy'], { retry_on: 'unavailable', num_retries: 3 });
    const [reviews] = grpc.routes(`${REVIEWS}:9080`, `${REVIEWS}:9080`);
    assert.deepEqual(action(reviews)['max_stream_duration'], { max_stream_duration: '0.500s' });
  });
});

describe('circuit breakers: connectionPool, outlierDetection and LEAST_REQUEST', () => {
  it('turns the connection pool into circuit-breaker thresholds and HTTP protocol options', async () => {
    const cluster = (await renderSidecar('circuit-breakers')).cluster(`outbound|9080|v1|${REVIEWS}`);
    assert.equal(cluster['lb_policy'], 'LEAST_REQUEST');
    assert.deepEqual(cluster['circuit_breakers'], {
      thresholds: [{ max_connections: 1, max_pending_requests: 1, max_requests: 100, max_retries: 3, track_remaining: true }],
    });
    assert.equal(cluster['connect_timeout'], '0.030s');
    assert.deepEqual(cluster['upstream_connection_options'], { tcp_keepalive: { keepalive_time: 7200, keepalive_interval: 75 } });
    const options = (cluster['typed_extension_protocol_options'] as JsonObject)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as JsonObject;
    assert.deepEqual(options['common_http_protocol_options'], { idle_timeout: '30s', max_requests_per_connection: 1 });
  });

  it('ejects a host after one 5xx for 3 minutes, enforcing 100%, with success-rate ejection off', async () => {
    const cluster = (await renderSidecar('circuit-breakers')).cluster(`outbound|9080||${REVIEWS}`);
    assert.deepEqual(cluster['outlier_detection'], {
      enforcing_success_rate: 0,
      consecutive_5xx: 1,
      enforcing_consecutive_5xx: 100,
      consecutive_gateway_failure: 2,
      enforcing_consecutive_gateway_failure: 100,
      interval: '1s',
      base_ejection_time: '180s',
      max_ejection_percent: 100,
    });
    assert.deepEqual(cluster['common_lb_config'], { healthy_panic_threshold: { value: 0 } });
  });

  it('lets subset v3 override the load balancer while keeping the rule\'s pool and ejection', async () => {
    const cluster = (await renderSidecar('circuit-breakers')).cluster(`outbound|9080|v3|${REVIEWS}`);
    assert.equal(cluster['lb_policy'], 'ROUND_ROBIN');
    assert.ok(cluster['outlier_detection'] && cluster['circuit_breakers']);
  });

  it('applies port-level settings for port 9080 of ratings', async () => {
    const cluster = (await renderSidecar('circuit-breakers')).cluster(`outbound|9080|v1|${RATINGS}`);
    assert.equal(cluster['connect_timeout'], '0.250s');
  });

  it('hashes details by the x-user header on a ring of at least 2048 entries', async () => {
    const rendered = await renderSidecar('circuit-breakers');
    const cluster = rendered.cluster(`outbound|9080|v1|${DETAILS}`);
    assert.equal(cluster['lb_policy'], 'RING_HASH');
    assert.deepEqual(cluster['ring_hash_lb_config'], { minimum_ring_size: '2048' });
    const [route] = rendered.routes('9080', `${DETAILS}:9080`);
    assert.deepEqual(action(route)['hash_policy'], [{ header: { header_name: 'x-user' } }]);
  });

  it('uses Maglev for productpage, hashing the source IP on its default route', async () => {
    const rendered = await renderSidecar('circuit-breakers');
    const cluster = rendered.cluster(`outbound|9080||${PRODUCTPAGE}`);
    assert.equal(cluster['lb_policy'], 'MAGLEV');
    assert.deepEqual(cluster['maglev_lb_config'], { table_size: '65537' });
    const [route] = rendered.routes('9080', `${PRODUCTPAGE}:9080`);
    assert.equal(route?.['name'], 'default');
    assert.deepEqual(action(route)['hash_policy'], [{ connection_properties: { source_ip: true } }]);
  });

  it('never sends a gRPC client LEAST_REQUEST or MAGLEV: round robin and ring hash instead', async () => {
    const grpc = await renderGrpc('circuit-breakers', [`${REVIEWS}:9080`, `${PRODUCTPAGE}:9080`, `${DETAILS}:9080`]);
    assert.equal(grpc.cluster(`outbound|9080||${REVIEWS}`)['lb_policy'], 'ROUND_ROBIN');
    assert.equal(grpc.cluster(`outbound|9080||${PRODUCTPAGE}`)['lb_policy'], 'RING_HASH');
    assert.equal(grpc.cluster(`outbound|9080|v1|${DETAILS}`)['lb_policy'], 'RING_HASH');
    const [details] = grpc.routes(`${DETAILS}:9080`, `${DETAILS}:9080`);
    assert.deepEqual(action(details)['hash_policy'], [{ header: { header_name: 'x-user' } }]);
    // Source IP hashing becomes the gRPC channel's id: one client stays on one backend.
    const [productpage] = grpc.routes(`${PRODUCTPAGE}:9080`, `${PRODUCTPAGE}:9080`);
    assert.deepEqual(action(productpage)['hash_policy'], [{ filter_state: { key: 'io.grpc.channel_id' } }]);
  });

  it('gives gRPC C-core before 1.52, known by its user agent, round robin where it would crash on a ring hash', async () => {
    const push = await loadFixture('circuit-breakers');
    const agent = (version: string) => ({ userAgentName: 'gRPC C-core linux Python', userAgentVersion: version });
    const old = parseProxy(GRPC.id, GRPC.metadata, agent('C-core 29.0.0 Python 1.51.3'));
    assert.deepEqual(old.grpcLimits, ['ring-hash-crashes']);
    const oldClusters = new Rendered(renderForProxy(push, old, [`${DETAILS}:9080`]));
    assert.equal(oldClusters.cluster(`outbound|9080|v1|${DETAILS}`)['lb_policy'], 'ROUND_ROBIN');
    assert.equal(oldClusters.cluster(`outbound|9080|v1|${DETAILS}`)['ring_hash_lb_config'], undefined);
    // A current C-core, and every other client, still gets the ring hash (after the old one, from the same push).
    for (const current of [agent('C-core 30.1.0 Python 1.53.0'), agent('C-core 58.0.0 Python 1.85.3'), { userAgentName: 'gRPC Go', userAgentVersion: '1.85.0' }, undefined]) {
      const proxy = parseProxy(GRPC.id, GRPC.metadata, current);
      assert.deepEqual(proxy.grpcLimits, []);
      assert.equal(new Rendered(renderForProxy(push, proxy, [`${DETAILS}:9080`])).cluster(`outbound|9080|v1|${DETAILS}`)['lb_policy'], 'RING_HASH');
    }
  });

  it('gives a gRPC client failure-percentage ejection and only the max_requests breaker', async () => {
    const grpc = await renderGrpc('circuit-breakers', [`${REVIEWS}:9080`]);
    const cluster = grpc.cluster(`outbound|9080||${REVIEWS}`);
    assert.deepEqual(cluster['circuit_breakers'], { thresholds: [{ max_requests: 100 }] });
    assert.deepEqual(cluster['outlier_detection'], {
      enforcing_success_rate: 0,
      failure_percentage_threshold: 85,
      enforcing_failure_percentage: 100,
      failure_percentage_request_volume: 1,
      failure_percentage_minimum_hosts: 1,
      interval: '1s',
      base_ejection_time: '180s',
      max_ejection_percent: 100,
    });
  });
});
