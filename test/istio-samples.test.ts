// Istio's own samples (test/data/istio-samples, vendored from istio/istio) applied as a user of
// the samples applies them, each on top of the rules it needs: every rule is accepted (a Gateway
// and the VirtualServices bound to it as Istio accepts them), rendered, passes the checkers and real Envoy, and the fields
// that matter are what Istio renders. fixtures/istio-samples serves one combination of them whole.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analyzeObjects } from '../src/commands/analyze.ts';
import { buildPushContext } from '../src/model/push-context.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { readObjectsFromText } from '../src/sources/config-dir.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import type { SourcedObject } from '../src/sources/parsed-object.ts';
import { isFields, readMeta } from '../src/sources/object-fields.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy, type RenderedResources } from '../src/xds/render.ts';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { requireEnvoy, validateBootstrap } from './support/envoy.ts';
import { staticBootstrap } from './support/envoy-static.ts';
import { limiter } from './support/limit.ts';
import { FIXTURES, resource, violations, virtualHost } from './support/rendered.ts';

const SAMPLES = new URL('data/istio-samples/', import.meta.url).pathname;
const PRODUCTPAGE = 'sidecar~10.244.1.10~productpage-v1-7c9b8d7f5-x2l4k.default~default.svc.cluster.local';
/** Istio's ingress gateway, which the samples' Gateways select (`istio: ingressgateway`). */
const INGRESS = 'router~10.244.9.9~istio-ingressgateway-5d9c8b7f6-k2x4p.istio-system~istio-system.svc.cluster.local';
const INGRESS_LABELS = { LABELS: { istio: 'ingressgateway' } };
const validating = limiter(2);
/** One `envoy --mode validate` per distinct config: samples that change nothing a sidecar gets share it. */
const verdicts = new Map<string, Promise<{ ok: boolean; output: string }>>();

function validateOnce(bin: string, rendered: RenderedResources, nodeId = PRODUCTPAGE): Promise<{ ok: boolean; output: string }> {
  const bootstrap = staticBootstrap(nodeId, rendered);
  const key = JSON.stringify(bootstrap);
  let verdict = verdicts.get(key);
  if (!verdict) verdicts.set(key, (verdict = validating(() => validateBootstrap(bin, bootstrap))));
  return verdict;
}

function read(file: string, location: string): SourcedObject[] {
  const result = readObjectsFromText(readFileSync(file, 'utf8'), location);
  assert.ok(result.ok, `${location} does not parse`);
  return [...result.objects];
}

const PLATFORM = read(join(FIXTURES, 'istio-samples', 'platform.yaml'), 'platform.yaml');

/** What a sample is applied on top of, as Istio's tasks say (the subsets first; the v1 routes before a shift). */
function baseOf(sample: string): string[] {
  if (sample.startsWith('bookinfo/networking/virtual-service-')) return ['bookinfo/networking/destination-rule-all.yaml'];
  if (sample === 'tcp-echo/tcp-echo-20-v2.yaml') return ['tcp-echo/tcp-echo-all-v1.yaml'];
  if (sample === 'istio.io/mirroring.yaml') return ['istio.io/mirroring-v1.yaml'];
  return [];
}

/** `kubectl apply` of each file in turn: an object replaces the one of its kind, namespace and name. */
function applied(files: readonly string[]): SourcedObject[] {
  const objects = new Map<string, SourcedObject>();
  for (const object of [...PLATFORM, ...files.flatMap((file) => read(join(SAMPLES, file), file))]) {
    const fields = isFields(object.object) ? object.object : {};
    const meta = readMeta(fields);
    objects.set(`${String(fields['kind'])}/${meta.namespace}/${meta.name ?? ''}`, object);
  }
  return [...objects.values()];
}

/** What analyze reports about each sample's own objects: nothing but these, and never an error. */
const EXPECTED_FINDINGS: Readonly<Record<string, readonly string[]>> = {
  // cert-manager's solver Service is not part of the samples: Istio applies the route, and requests get 503.
  'bookinfo/networking/certmanager-gateway.yaml': ['MP_REF_UNKNOWN VirtualService istio-system/cert-manager spec.http[0].route[0].destination.host'],
  'bookinfo/networking/fault-injection-details-v1.yaml': ['MP_RULE_WARNING VirtualService default/details spec.http[1]'],
  'istio.io/circuit-breaking.yaml': ['MP_RULE_WARNING DestinationRule default/httpbin spec.trafficPolicy.outlierDetection.consecutiveErrors'],
  'istio.io/mirroring.yaml': ['MP_RULE_WARNING VirtualService default/httpbin spec.http[0].mirrorPercent'],
};

/** Subsets the samples name for versions they do not deploy by default (ratings v2, details v2). */
const UNDEPLOYED_SUBSETS = /^MP_RULE_INEFFECTIVE DestinationRule default\/(details|ratings|httpbin) spec\.subsets\[\d\]\.labels$/;

const samples = (readdirSync(SAMPLES, { recursive: true }) as string[]).filter((f) => f.endsWith('.yaml')).sort();

interface Scenario {
  readonly sample: string;
  readonly rendered: RenderedResources;
  /** What the ingress gateway gets. */
  readonly gateway: RenderedResources;
  readonly findings: readonly string[];
}

function scenario(sample: string): Scenario {
  const objects = applied([...baseOf(sample), sample]);
  const converted = convertObjects(objects);
  const findings = analyzeObjects(converted).filter((f) => f.file === sample).map((f) => `${f.code} ${f.object} ${f.path}`);
  const push = buildPushContext(converted);
  return { sample, rendered: renderForProxy(push, parseProxy(PRODUCTPAGE)), gateway: renderForProxy(push, parseProxy(INGRESS, INGRESS_LABELS)), findings };
}

function routesOf(rendered: RenderedResources, port: string, host: string): JsonObject[] {
  return virtualHost(resource(rendered, ROUTE_TYPE, port), `${host}:${port}`)['routes'] as JsonObject[];
}

const faultOf = (route: JsonObject | undefined): JsonObject | undefined => (route?.['typed_per_filter_config'] as JsonObject | undefined)?.['envoy.filters.http.fault'] as JsonObject | undefined;
const weightsOf = (route: JsonObject | undefined): unknown => ((route?.['route'] as JsonObject | undefined)?.['weighted_clusters'] as JsonObject | undefined)?.['clusters'];
const clusterOf = (route: JsonObject | undefined): unknown => (route?.['route'] as JsonObject | undefined)?.['cluster'];
const reviews = (subset: string): string => `outbound|9080|${subset}|reviews.default.svc.cluster.local`;
const MILLION = (value: number): JsonObject => ({ numerator: value * 10000, denominator: 'MILLION' });

describe("Istio's samples, applied as their tasks apply them", { concurrency: true }, () => {
  it("holds the traffic YAML of bookinfo, httpbin, helloworld and tcp-echo, the egress example, and istio.io's task YAML", () => {
    assert.equal(samples.length, 28);
    for (const dir of ['bookinfo/networking/', 'httpbin/', 'helloworld/', 'tcp-echo/', 'istio.io/']) assert.ok(samples.some((s) => s.startsWith(dir)), dir);
    assert.ok(samples.includes('bookinfo/networking/egress-rule-google-apis.yaml'));
  });

  for (const sample of samples) {
    it(`${sample}${baseOf(sample).length > 0 ? ` (on ${baseOf(sample).join(', ')})` : ''}: accepted, rendered, checked, and taken by real Envoy`, async (t) => {
      const { rendered, gateway, findings } = scenario(sample);
      assert.deepEqual(findings.filter((f) => !UNDEPLOYED_SUBSETS.test(f)), EXPECTED_FINDINGS[sample] ?? []);
      assert.deepEqual(violations(rendered), []);
      // A route to a service the samples lack (cert-manager's solver) fails closed with 503, as its MP_REF_UNKNOWN says.
      const unknownCluster = (v: string): boolean => v.includes('ref.cluster') && v.includes('cert-manager-resolver');
      assert.deepEqual(violations(gateway).filter((v) => !unknownCluster(v)), []);
      const clusters = new Set(rendered[CLUSTER_TYPE].map((c) => c.name));
      const routed = JSON.stringify(rendered[ROUTE_TYPE].map((r) => r.json));
      for (const name of routed.match(/outbound\|\d+\|[^|"]*\|[^"]+/g) ?? []) assert.ok(clusters.has(name), `a route sends to ${name}, which is not sent`);
      const bin = await requireEnvoy(t);
      if (!bin) return;
      const verdict = await validateOnce(bin, rendered);
      assert.equal(verdict.ok, true, verdict.output);
      if (gateway[LISTENER_TYPE].length === 0) return;
      const gatewayVerdict = await validateOnce(bin, gateway, INGRESS);
      assert.equal(gatewayVerdict.ok, true, gatewayVerdict.output);
    });
  }
});

describe('what the samples render, field by field as Istio renders them', () => {
  it("bookinfo-gateway: the ingress gateway listens on 8080 and sends BookInfo's pages, for any host, to productpage", () => {
    const { gateway } = scenario('bookinfo/networking/bookinfo-gateway.yaml');
    assert.deepEqual(gateway[LISTENER_TYPE].map((l) => l.name), ['0.0.0.0_8080']);
    const routes = virtualHost(resource(gateway, ROUTE_TYPE, 'http.8080'), '*:8080')['routes'] as JsonObject[];
    assert.deepEqual(routes.map((r) => r['match']), [{ path: '/productpage' }, { prefix: '/static' }, { path: '/login' }, { path: '/logout' }, { prefix: '/api/v1/products' }]);
    assert.deepEqual(new Set(routes.map(clusterOf)), new Set(['outbound|9080||productpage.default.svc.cluster.local']));
  });

  it('tcp-echo: the ingress gateway proxies port 31400 to tcp-echo v1, then 80/20 to v1 and v2', () => {
    const upstream = (sample: string): unknown => {
      const listener = resource(scenario(sample).gateway, LISTENER_TYPE, '0.0.0.0_31400');
      const [filter] = ((listener['filter_chains'] as JsonObject[])[0]?.['filters'] ?? []) as JsonObject[];
      const config = filter?.['typed_config'] as JsonObject;
      return config['cluster'] ?? config['weighted_clusters'];
    };
    const echo = (subset: string): string => `outbound|9000|${subset}|tcp-echo.default.svc.cluster.local`;
    assert.equal(upstream('tcp-echo/tcp-echo-all-v1.yaml'), echo('v1'));
    assert.deepEqual(upstream('tcp-echo/tcp-echo-20-v2.yaml'), { clusters: [{ name: echo('v1'), weight: 80 }, { name: echo('v2'), weight: 20 }] });
  });

  it('reviews 80/20 and 50/50 become weighted clusters with the weights as written', () => {
    assert.deepEqual(weightsOf(routesOf(scenario('bookinfo/networking/virtual-service-reviews-80-20.yaml').rendered, '9080', 'reviews.default.svc.cluster.local')[0]), [
      { name: reviews('v1'), weight: 80 },
      { name: reviews('v2'), weight: 20 },
    ]);
    assert.deepEqual(weightsOf(routesOf(scenario('bookinfo/networking/virtual-service-reviews-50-v3.yaml').rendered, '9080', 'reviews.default.svc.cluster.local')[0]), [
      { name: reviews('v1'), weight: 50 },
      { name: reviews('v3'), weight: 50 },
    ]);
  });

  it("jason's header sends him to v2 and everyone else to v3", () => {
    const [jason, others] = routesOf(scenario('bookinfo/networking/virtual-service-reviews-jason-v2-v3.yaml').rendered, '9080', 'reviews.default.svc.cluster.local');
    assert.deepEqual(jason?.['match'], { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] });
    assert.equal(clusterOf(jason), reviews('v2'));
    assert.deepEqual(others?.['match'], { prefix: '/' });
    assert.equal(clusterOf(others), reviews('v3'));
  });

  it('the ratings delay and abort are the fault filter Istio configures, with Percent as a fraction of a million', () => {
    const [delayed, plain] = routesOf(scenario('bookinfo/networking/virtual-service-ratings-test-delay.yaml').rendered, '9080', 'ratings.default.svc.cluster.local');
    assert.deepEqual(faultOf(delayed)?.['delay'], { fixed_delay: '7s', percentage: MILLION(100) });
    assert.equal(faultOf(plain), undefined);
    const [aborted] = routesOf(scenario('bookinfo/networking/virtual-service-ratings-test-abort.yaml').rendered, '9080', 'ratings.default.svc.cluster.local');
    assert.deepEqual(faultOf(aborted)?.['abort'], { http_status: 500, percentage: MILLION(100) });
    const [details] = routesOf(scenario('bookinfo/networking/fault-injection-details-v1.yaml').rendered, '9080', 'details.default.svc.cluster.local');
    assert.deepEqual(faultOf(details)?.['abort'], { http_status: 555, percentage: MILLION(100) });
  });

  it('the Google APIs egress rule sends port 80 to the 443 cluster, which originates TLS with auto SNI and SAN checks on the system CAs', () => {
    const { rendered } = scenario('bookinfo/networking/egress-rule-google-apis.yaml');
    assert.equal(clusterOf(routesOf(rendered, '80', 'www.googleapis.com')[0]), 'outbound|443||www.googleapis.com');
    const cluster = resource(rendered, CLUSTER_TYPE, 'outbound|443||www.googleapis.com');
    const options = (cluster['typed_extension_protocol_options'] as JsonObject)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as JsonObject;
    assert.deepEqual(options['upstream_http_protocol_options'], { auto_sni: true, auto_san_validation: true });
    assert.equal(cluster['type'], 'STRICT_DNS');
    assert.match(JSON.stringify(cluster['transport_socket']), /"trusted_ca":\{"filename":"\/etc\/ssl\/certs\/ca-certificates\.crt"\}/);
  });

  it("istio.io's circuit breaker is Istio's thresholds, and the deprecated consecutiveErrors ejects nothing, as in Istio", () => {
    const cluster = resource(scenario('istio.io/circuit-breaking.yaml').rendered, CLUSTER_TYPE, 'outbound|8000||httpbin.default.svc.cluster.local');
    assert.deepEqual(cluster['circuit_breakers'], { thresholds: [{ max_connections: 1, max_pending_requests: 1, max_requests: 4294967295, max_retries: 4294967295, track_remaining: true }] });
    const options = (cluster['typed_extension_protocol_options'] as JsonObject)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as JsonObject;
    assert.deepEqual(options['common_http_protocol_options'], { max_requests_per_connection: 1 });
    const outlier = cluster['outlier_detection'] as JsonObject;
    assert.deepEqual([outlier['interval'], outlier['base_ejection_time'], outlier['max_ejection_percent'], outlier['consecutive_5xx']], ['1s', '180s', 100, undefined]);
  });

  it("istio.io's mirror sends every request to v1 and a copy to v2 (the integer mirrorPercent as Istio writes it, out of a hundred)", () => {
    const [route] = routesOf(scenario('istio.io/mirroring.yaml').rendered, '8000', 'httpbin.default.svc.cluster.local');
    const action = (route?.['route'] ?? {}) as JsonObject;
    assert.equal(action['cluster'], 'outbound|8000|v1|httpbin.default.svc.cluster.local');
    assert.deepEqual(action['request_mirror_policies'], [{ cluster: 'outbound|8000|v2|httpbin.default.svc.cluster.local', runtime_fraction: { default_value: { numerator: 100, denominator: 'HUNDRED' } }, trace_sampled: false }]);
  });

  it('a gateway-bound rule reaches no sidecar: the tcp-echo shift to v2 changes nothing productpage is sent', () => {
    const before = scenario('tcp-echo/tcp-echo-all-v1.yaml').rendered;
    const after = scenario('tcp-echo/tcp-echo-20-v2.yaml').rendered;
    assert.deepEqual(after[ROUTE_TYPE].map((r) => r.json), before[ROUTE_TYPE].map((r) => r.json));
    assert.ok(!JSON.stringify(after[ROUTE_TYPE].map((r) => r.json)).includes('tcp-echo.default.svc.cluster.local|'));
  });
});
