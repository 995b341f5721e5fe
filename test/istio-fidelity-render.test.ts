// fixtures/istio-fidelity rendered field by field as Istio's pilot/pkg/networking/core renders it:
// the defaults every cluster and route gets, the VirtualService and DestinationRule fields beyond
// the basics, TLS origination to external hosts, and what proxyless gRPC is told it does not get.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDestinationRule, isVirtualService, type Rule } from '../src/model/rules.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { grpcDegradations } from '../src/xds/generate/grpc-degradation.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { GRPC, Rendered, loadFixture, violations } from './support/rendered.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';
const PRODUCTPAGE = 'productpage.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';
const MAX = 4_294_967_295;
const UNLIMITED = { thresholds: [{ max_connections: MAX, max_pending_requests: MAX, max_requests: MAX, max_retries: MAX, track_remaining: true }] };
const PREVIOUS_HOSTS = {
  name: 'envoy.retry_host_predicates.previous_hosts',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' },
};
/** The productpage pod of the fixture: its sidecar has inbound clusters too. */
const PRODUCTPAGE_POD = parseProxy('sidecar~10.244.2.7~productpage-v1-d5789fdfb-7kq2n.default~default.svc.cluster.local');

const action = (route: JsonObject | undefined): JsonObject => (route?.['route'] ?? {}) as JsonObject;

async function sidecar(): Promise<Rendered> {
  const rendered = renderForProxy(await loadFixture('istio-fidelity'), PRODUCTPAGE_POD);
  assert.deepEqual(violations(rendered), []);
  return new Rendered(rendered);
}

function protocolOptions(cluster: JsonObject): JsonObject {
  return (cluster['typed_extension_protocol_options'] as JsonObject)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as JsonObject;
}

function tlsContext(cluster: JsonObject): JsonObject {
  return (cluster['transport_socket'] as JsonObject)['typed_config'] as JsonObject;
}

describe("Istio's defaults on every cluster and route", () => {
  it('gives every cluster without a connectionPool unlimited thresholds with remaining counts, inbound and passthrough too', async () => {
    const rendered = await sidecar();
    assert.deepEqual(rendered.cluster(`outbound|9080||${RATINGS}`)['circuit_breakers'], UNLIMITED);
    assert.deepEqual(rendered.cluster(`outbound|9080|v1|${REVIEWS}`)['circuit_breakers'], UNLIMITED);
    assert.deepEqual(rendered.cluster('PassthroughCluster')['circuit_breakers'], UNLIMITED);
    const inbound = rendered.resources['type.googleapis.com/envoy.config.cluster.v3.Cluster'].filter((c) => c.name.startsWith('inbound|'));
    assert.ok(inbound.length > 0);
    for (const c of inbound) assert.deepEqual(c.json['circuit_breakers'], UNLIMITED, c.name);
    assert.equal(rendered.cluster('BlackHoleCluster')['circuit_breakers'], undefined);
  });

  it('balances by least request unless the rule says otherwise, as Istio does since 1.14; inbound clusters keep round robin', async () => {
    const rendered = await sidecar();
    assert.equal(rendered.cluster(`outbound|9080||${RATINGS}`)['lb_policy'], 'LEAST_REQUEST');
    assert.equal(rendered.cluster(`outbound|9080|v2|${REVIEWS}`)['lb_policy'], 'ROUND_ROBIN');
    assert.equal(rendered.cluster('inbound|9080||')['lb_policy'], 'ROUND_ROBIN');
    const grpc = new Rendered(renderForProxy(await loadFixture('istio-fidelity'), GRPC, [`${RATINGS}:9080`]));
    assert.equal(grpc.cluster(`outbound|9080||${RATINGS}`)['lb_policy'], 'ROUND_ROBIN');
  });

  it('turns the panic threshold off with outlier detection and ignores the deprecated consecutiveErrors', async () => {
    const ratings = (await sidecar()).cluster(`outbound|9080||${RATINGS}`);
    assert.deepEqual(ratings['outlier_detection'], { enforcing_success_rate: 0 });
    assert.deepEqual(ratings['common_lb_config'], { healthy_panic_threshold: { value: 0 } });
    const reviews = (await sidecar()).cluster(`outbound|9080|v1|${REVIEWS}`);
    assert.deepEqual(reviews['outlier_detection'], { enforcing_success_rate: 0, consecutive_5xx: 5, enforcing_consecutive_5xx: 100, interval: '10s' });
  });

  it('retries twice on connection-level failures by default, away from hosts already tried, and no longer on 503', async () => {
    const [route] = (await sidecar()).routes('9080', `${RATINGS}:9080`);
    assert.deepEqual(action(route)['retry_policy'], {
      retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
      num_retries: 2,
      retry_host_predicate: [PREVIOUS_HOSTS],
      host_selection_retry_max_attempts: '5',
    });
    assert.equal(action(route)['timeout'], '0s');
    assert.equal(action(route)['max_grpc_timeout'], '0s');
  });

  it('names each route operation for tracing as Istio does, and allows 1 MiB fixed responses', async () => {
    const rendered = await sidecar();
    assert.deepEqual((rendered.routes('9080', `${RATINGS}:9080`)[0] ?? {})['decorator'], { operation: `${RATINGS}:9080/*` });
    const [maintenance, legacy] = rendered.routes('9080', `${PRODUCTPAGE}:9080`);
    assert.deepEqual(maintenance?.['decorator'], { operation: 'productpage:9080/maintenance*' });
    assert.deepEqual(legacy?.['decorator'], { operation: `${PRODUCTPAGE}:9080/v1/*` });
    const config = rendered.resources[ROUTE_TYPE].find((r) => r.name === '9080');
    assert.equal(config?.json['max_direct_response_body_size_bytes'], 1_048_576);
  });
});

describe('VirtualService fields rendered, not dropped', () => {
  it('answers /maintenance itself with a direct_response of the status and body', async () => {
    const [maintenance] = (await sidecar()).routes('9080', `${PRODUCTPAGE}:9080`);
    assert.deepEqual(maintenance?.['direct_response'], { status: 503, body: { inline_string: 'down for maintenance' } });
    assert.equal(maintenance['route'], undefined);
  });

  it('rewrites /v1/... to /api/... with regex_rewrite', async () => {
    const [, legacy] = (await sidecar()).routes('9080', `${PRODUCTPAGE}:9080`);
    assert.deepEqual(action(legacy)['regex_rewrite'], { pattern: { regex: '^/v1/(.*)$' }, substitution: '/api/\\1' });
    assert.equal(action(legacy)['prefix_rewrite'], undefined);
  });

  it('keeps weights relative, as Istio does: 1 and 3 are a quarter and three quarters', async () => {
    const [canary] = (await sidecar()).routes('9080', `${REVIEWS}:9080`);
    assert.deepEqual(action(canary)['weighted_clusters'], {
      clusters: [
        { name: `outbound|9080|v2|${REVIEWS}`, weight: 1 },
        // A destination's host header is its own host rewrite, as Istio renders it.
        { name: `outbound|9080|v3|${REVIEWS}`, weight: 3, host_rewrite_literal: 'reviews-canary.internal' },
      ],
    });
  });

  it('rewrites the host when a route sets :authority on the request, and never adds it as a header', async () => {
    const [, , catchAll] = (await sidecar()).routes('9080', `${PRODUCTPAGE}:9080`);
    assert.equal(action(catchAll)['host_rewrite_literal'], 'productpage.internal');
    assert.deepEqual(catchAll?.['request_headers_to_add'], [{ header: { key: 'x-served-through', value: 'mesh' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
  });

  it('mirrors to every destination of mirrors[], each with its percentage (100% when unset)', async () => {
    const [, route] = (await sidecar()).routes('9080', `${REVIEWS}:9080`);
    assert.deepEqual(action(route)['request_mirror_policies'], [
      { cluster: `outbound|9080|v2|${REVIEWS}`, runtime_fraction: { default_value: { numerator: 500_000, denominator: 'MILLION' } }, trace_sampled: false },
      { cluster: `outbound|9080|v3|${REVIEWS}`, runtime_fraction: { default_value: { numerator: 1_000_000, denominator: 'MILLION' } }, trace_sampled: false },
    ]);
  });

  it('backs off from 250 ms, prefers other localities and may retry the same host, as the retries ask', async () => {
    const [, route] = (await sidecar()).routes('9080', `${REVIEWS}:9080`);
    assert.deepEqual(action(route)['retry_policy'], {
      retry_on: '5xx,retriable-status-codes',
      num_retries: 4,
      host_selection_retry_max_attempts: '5',
      retriable_status_codes: [503],
      retry_priority: {
        name: 'envoy.retry_priorities.previous_priorities',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', update_frequency: 2 },
      },
      retry_back_off: { base_interval: '0.250s' },
    });
  });
});

describe('DestinationRule slow start', () => {
  it('ramps new LEAST_REQUEST hosts up over warmupDurationSecs', async () => {
    const v1 = (await sidecar()).cluster(`outbound|9080|v1|${REVIEWS}`);
    assert.equal(v1['lb_policy'], 'LEAST_REQUEST');
    assert.deepEqual(v1['least_request_lb_config'], { slow_start_config: { slow_start_window: '60s' } });
  });

  it('ramps ROUND_ROBIN hosts up with warmup: its aggression, and 10% minimum weight unless set', async () => {
    const v2 = (await sidecar()).cluster(`outbound|9080|v2|${REVIEWS}`);
    assert.deepEqual(v2['round_robin_lb_config'], {
      slow_start_config: { slow_start_window: '30s', aggression: { default_value: 2, runtime_key: '(' }, min_weight_percent: { value: 10 } },
    });
  });
});

describe('TLS origination to external hosts (tls.mode SIMPLE)', () => {
  it('sends no outbound_ SNI: auto_sni and auto_san_validation from the host, checked against the system trust store', async () => {
    const cnn = (await sidecar()).cluster('outbound|80||edition.cnn.com');
    assert.deepEqual(tlsContext(cnn), {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: { validation_context: { trusted_ca: { filename: '/etc/ssl/certs/ca-certificates.crt' } } },
    });
    assert.deepEqual(protocolOptions(cnn)['upstream_http_protocol_options'], { auto_sni: true, auto_san_validation: true });
  });

  it('uses the sni, caCertificates and subjectAltNames the rule gives, without auto SNI', async () => {
    const partner = (await sidecar()).cluster('outbound|80||api.partner.example.com');
    assert.deepEqual(tlsContext(partner), {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: {
        validation_context: {
          trusted_ca: { filename: '/etc/ssl/certs/ca-certificates.crt' },
          match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'api.partner.example.com' } }],
        },
      },
      sni: 'partner.example.com',
    });
    assert.equal(partner['typed_extension_protocol_options'], undefined);
  });
});

describe('TLS origination to a ServiceEntry that names its certificate', () => {
  it("checks the ServiceEntry's subjectAltNames when the rule names none, still with auto SNI", async () => {
    const legacy = (await sidecar()).cluster('outbound|80||legacy.partner.example.com');
    assert.deepEqual((tlsContext(legacy)['common_tls_context'] as JsonObject)['validation_context'], {
      trusted_ca: { filename: '/etc/ssl/certs/ca-certificates.crt' },
      match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'gateway.partner.example.com' } }],
    });
    assert.equal(tlsContext(legacy)['sni'], undefined);
    assert.deepEqual(protocolOptions(legacy)['upstream_http_protocol_options'], { auto_sni: true, auto_san_validation: true });
  });
});

describe('proxyless gRPC: what it cannot do is left out and reported', () => {
  async function degradations(kind: 'VirtualService' | 'DestinationRule', name: string): Promise<string[]> {
    const push = await loadFixture('istio-fidelity');
    const rule = [...push.ruleStatus.values()].map((s) => s.rule).find((r: Rule) => r.meta.name === name && (kind === 'VirtualService' ? isVirtualService(r) : isDestinationRule(r)));
    assert.ok(rule, `${kind} ${name}`);
    return grpcDegradations(push, rule).map((issue) => `${issue.code} ${issue.path}`);
  }

  it('leaves the directResponse route out for gRPC, and reports it with the mirrors and retry conditions it ignores', async () => {
    const grpc = new Rendered(renderForProxy(await loadFixture('istio-fidelity'), GRPC, [`${PRODUCTPAGE}:9080`, `${REVIEWS}:9080`]));
    assert.deepEqual(grpc.routes(`${PRODUCTPAGE}:9080`, `${PRODUCTPAGE}:9080`).map((r) => r['name']), ['legacy-api', 'default/productpage/http[2]']);
    const [canary, reviews] = grpc.routes(`${REVIEWS}:9080`, `${REVIEWS}:9080`);
    // Relative weights are gRPC's too.
    assert.deepEqual((action(canary)['weighted_clusters'] as { clusters: JsonObject[] }).clusters.map((c) => c['weight']), [1, 3]);
    assert.equal(action(reviews)['request_mirror_policies'], undefined);
    // 5xx and 503 are no gRPC status: nothing left to retry on.
    assert.equal(action(reviews)['retry_policy'], undefined);
    assert.ok((await degradations('VirtualService', 'productpage')).includes('MP_GRPC_DEGRADED spec.http[0].directResponse'));
    const reviewsNotes = await degradations('VirtualService', 'reviews');
    for (const path of ['spec.http[1].mirrors', 'spec.http[1].retries.retryOn', 'spec.http[1].retries.retryRemoteLocalities']) assert.ok(reviewsNotes.includes(`MP_GRPC_DEGRADED ${path}`), path);
  });

  it('reports slow start as something gRPC clients do not do', async () => {
    assert.ok((await degradations('DestinationRule', 'reviews')).includes('MP_GRPC_DEGRADED spec.trafficPolicy.loadBalancer.warmup'));
  });
});

describe('names and metadata Istio tools read', () => {
  it('names inbound clusters by the workload port alone and the inbound passthrough InboundPassthroughCluster', async () => {
    const names = (await sidecar()).resources['type.googleapis.com/envoy.config.cluster.v3.Cluster'].map((c) => c.name);
    assert.ok(names.includes('inbound|9080||'), names.join(', '));
    assert.ok(names.includes('InboundPassthroughCluster'));
    assert.ok(!names.some((n) => n.startsWith('inbound|') && !n.endsWith('||')));
  });

  it('records the DestinationRule behind a cluster, and marks a service outside the mesh external', async () => {
    const rendered = await sidecar();
    const istio = (name: string): JsonObject => ((rendered.cluster(name)['metadata'] as JsonObject)['filter_metadata'] as JsonObject)['istio'] as JsonObject;
    assert.deepEqual(istio(`outbound|9080|v2|${REVIEWS}`), {
      services: [{ host: REVIEWS, name: 'reviews', namespace: 'default' }],
      subset: 'v2',
      config: '/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews',
    });
    assert.equal(istio('outbound|80||edition.cnn.com')['external'], true);
    assert.equal(istio('outbound|80||edition.cnn.com')['config'], '/apis/networking.istio.io/v1/namespaces/default/destination-rule/edition-cnn');
    assert.equal(istio(`outbound|9080||${RATINGS}`)['external'], undefined);
  });
});
