// Istio 0.x users keep their RouteRules: the canary (95% current_version, 5% canary_version)
// and a precedence-ordered tester rule become the same routes a VirtualService makes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import { loadDirectory } from '../src/sources/config-dir.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { startBackends, type Backend } from './support/backends.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { MeshDir, endpointSlice, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';
import { resource, violations, virtualHost } from './support/rendered.ts';

const FIXTURE = new URL('../fixtures/routerule-canary/', import.meta.url).pathname;
const PRODUCTPAGE = parseProxy('sidecar~10.244.0.20~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local');
const REVIEWS = 'reviews.default.svc.cluster.local';
const CURRENT = `outbound|9080|version-current-version|${REVIEWS}`;
const CANARY = `outbound|9080|version-canary-version|${REVIEWS}`;

function routeRule(name: string, spec: unknown, namespace = 'default'): K8sObject {
  return { apiVersion: 'config.istio.io/v1alpha2', kind: 'RouteRule', metadata: { name, namespace }, spec };
}

const canarySpec = {
  destination: { name: 'reviews' },
  precedence: 1,
  route: [
    { labels: { version: 'current_version' }, weight: 95 },
    { labels: { version: 'canary_version' }, weight: 5 },
  ],
};

describe('the RouteRule canary fixture, as productpage\'s Envoy sidecar receives it', () => {
  let push: PushContext;
  before(async () => {
    const converted = await loadDirectory(FIXTURE);
    assert.deepEqual(converted.rejected, []);
    push = buildPushContext(converted);
  });

  it('passes Envoy\'s validate.rules and cross-references', () => {
    assert.deepEqual(violations(renderForProxy(push, PRODUCTPAGE)), []);
  });

  it('matches the tester rule (precedence 2) before the canary split (precedence 1)', () => {
    const routes = virtualHost(resource(renderForProxy(push, PRODUCTPAGE), ROUTE_TYPE, '9080'), `${REVIEWS}:9080`)['routes'] as JsonObject[];
    assert.deepEqual(routes.map((r) => r['name']), ['default/reviews-testers', 'default/reviews-canary']);
    // A header matcher with safe_regex matches when the whole value matches the RE2 pattern.
    assert.deepEqual(routes[0]?.['match'], {
      prefix: '/',
      headers: [{ name: 'cookie', string_match: { safe_regex: { regex: '^(.*?;)?(user=tester)(;.*)?$' } } }],
    });
    const { retry_policy: retries, ...action } = routes[0]['route'] as JsonObject;
    assert.deepEqual(action, { cluster: CANARY, timeout: '0s', max_grpc_timeout: '0s' });
    // A rule without retries gets Istio's default sidecar retry policy.
    assert.equal((retries as JsonObject)['num_retries'], 2);
  });

  it('splits everyone else 95/5 with weighted_clusters (each weight a share of their sum)', () => {
    const routes = virtualHost(resource(renderForProxy(push, PRODUCTPAGE), ROUTE_TYPE, '9080'), `${REVIEWS}:9080`)['routes'] as JsonObject[];
    assert.deepEqual(routes[1]?.['match'], { prefix: '/' });
    const { retry_policy: _retries, ...action } = routes[1]['route'] as JsonObject;
    assert.deepEqual(action, {
      weighted_clusters: { clusters: [{ name: CURRENT, weight: 95 }, { name: CANARY, weight: 5 }] },
      timeout: '0s',
      max_grpc_timeout: '0s',
    });
  });

  it('synthesizes one subset per route label set: EDS clusters holding only the pods with those labels', () => {
    const rendered = renderForProxy(push, PRODUCTPAGE);
    for (const name of [CURRENT, CANARY]) {
      const cluster = resource(rendered, CLUSTER_TYPE, name);
      assert.equal(cluster['type'], 'EDS');
      assert.deepEqual(cluster['eds_cluster_config'], { eds_config: { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '0s' }, service_name: name });
    }
    const addresses = (name: string): string[] =>
      (resource(rendered, ENDPOINT_TYPE, name)['endpoints'] as JsonObject[]).flatMap((l) =>
        (l['lb_endpoints'] as JsonObject[]).map((e) => (((e['endpoint'] as JsonObject)['address'] as JsonObject)['socket_address'] as JsonObject)['address'] as string),
      );
    assert.deepEqual(addresses(CURRENT), ['10.244.1.10', '10.244.1.11']);
    assert.deepEqual(addresses(CANARY), ['10.244.1.12']);
  });

  it('shows the converted VirtualService as applied in the rule status', () => {
    const status = push.ruleStatus.get('VirtualService/default/routerule-reviews');
    assert.equal(status?.applied, true);
    assert.deepEqual(status.issues, []);
  });
});

describe('RouteRule conversion', () => {
  const source = { origin: 'file' as const, location: 'rules.yaml' };
  const convert = (objects: K8sObject[]) => convertObjects(objects.map((object) => ({ object, source })));

  it('routes to a DestinationRule subset that already has the same labels instead of adding one', () => {
    const dr = rule('DestinationRule', 'reviews', 'default', { host: 'reviews', subsets: [{ name: 'stable', labels: { version: 'current_version' } }] });
    const { rules, rejected } = convert([dr, routeRule('canary', canarySpec)]);
    assert.deepEqual(rejected, []);
    const merged = rules.find((r) => r.meta.kind === 'DestinationRule');
    assert.deepEqual(merged?.spec, {
      host: 'reviews',
      subsets: [
        { name: 'stable', labels: { version: 'current_version' } },
        { name: 'version-canary-version', labels: { version: 'canary_version' } },
      ],
    });
    assert.equal(rules.filter((r) => r.meta.kind === 'DestinationRule').length, 1);
  });

  it('turns uri, method and other headers into the matching VirtualService match', () => {
    const { rules } = convert([
      routeRule('api', {
        destination: { name: 'reviews', namespace: 'shop' },
        match: { request: { headers: { uri: { prefix: '/api' }, method: { exact: 'GET' }, 'X-User': { exact: 'jason' } } } },
        route: [{ labels: { version: 'v2' } }],
      }),
    ]);
    const vs = rules.find((r) => r.meta.kind === 'VirtualService');
    assert.equal(vs?.meta.name, 'routerule-reviews-shop');
    assert.deepEqual(vs.spec, {
      hosts: ['reviews.shop.svc.cluster.local'],
      http: [
        {
          name: 'default/api',
          match: [{ uri: { prefix: '/api' }, headers: { ':method': { exact: 'GET' }, 'x-user': { exact: 'jason' } } }],
          route: [{ destination: { host: 'reviews.shop.svc.cluster.local', subset: 'version-v2' } }],
        },
      ],
    });
  });

  const mistakes: [string, unknown, string, RegExp][] = [
    ['weights that do not add up to 100', { ...canarySpec, route: [{ labels: { version: 'a' }, weight: 90 }, { labels: { version: 'b' }, weight: 5 }] }, 'spec.route', /sum to 95, expected 100/],
    ['a weight above 100', { ...canarySpec, route: [{ labels: { version: 'a' }, weight: 120 }] }, 'spec.route[0].weight', /0 to 100/],
    ['no destination', { route: canarySpec.route }, 'spec.destination', /is missing/],
    ['a destination without a name', { destination: { namespace: 'default' } }, 'spec.destination.name', /is required/],
    ['a precedence that is not a number', { ...canarySpec, precedence: 'high' }, 'spec.precedence', /whole number/],
    ['a regex RE2 cannot compile', { ...canarySpec, match: { request: { headers: { cookie: { regex: '(?=user)' } } } } }, 'spec.match.request.headers.cookie.regex', /RE2/],
    ['a header match with two operators', { ...canarySpec, match: { request: { headers: { cookie: { exact: 'a', prefix: 'b' } } } } }, 'spec.match.request.headers.cookie', /exactly one/],
    ['a source match, which routes cannot express per caller', { ...canarySpec, match: { source: { name: 'productpage' } } }, 'spec.match.source', /sourceLabels/],
    ['labels that are not strings', { ...canarySpec, route: [{ labels: { version: 2 }, weight: 100 }] }, 'spec.route[0].labels', /string/],
  ];
  for (const [what, spec, path, message] of mistakes) {
    it(`rejects ${what} with MP_RULE_INVALID at ${path}`, () => {
      const { rejected, rules } = convert([routeRule('broken', spec)]);
      assert.equal(rules.length, 0);
      const issue = rejected[0]?.issues.find((i) => i.path === path);
      assert.equal(issue?.code, 'MP_RULE_INVALID', JSON.stringify(rejected));
      assert.match(issue.message, message);
      assert.equal(rejected[0]?.object, 'RouteRule default/broken');
    });
  }

  it('warns that fields it does not convert have no effect, and still converts the routes', () => {
    const { rules } = convert([routeRule('timeouts', { ...canarySpec, httpReqTimeout: { simpleTimeout: { timeout: '1s' } } })]);
    const vs = rules.find((r) => r.meta.kind === 'VirtualService');
    assert.match(vs?.meta.warnings?.[0]?.message ?? '', /RouteRule default\/timeouts: RouteRule httpReqTimeout is not converted/);
  });
});

describe('a proxyless gRPC client follows the RouteRule canary', () => {
  let dir: MeshDir;
  let backends: Backend[];
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;
  let client: GrpcXdsCaller;

  before(async () => {
    backends = await startBackends(['reviews-current', 'reviews-canary']);
    const [current, canary] = backends as [Backend, Backend];
    dir = await MeshDir.create();
    await dir.write('workloads.yaml', [
      service('reviews', 'default', [{ name: 'grpc', port: 9080, targetPort: current.port }], '10.96.0.40'),
      pod('reviews-current-0', 'default', current.host, { app: 'reviews', version: 'current_version' }),
      pod('reviews-canary-0', 'default', canary.host, { app: 'reviews', version: 'canary_version' }),
      endpointSlice('reviews', 'default', { name: 'grpc', port: current.port }, [
        { name: 'reviews-current-0', ip: current.host },
        { name: 'reviews-canary-0', ip: canary.host },
      ]),
    ]);
    await dir.write('route-rules.yaml', [
      routeRule('reviews-canary', canarySpec),
      routeRule('reviews-testers', {
        destination: { name: 'reviews' },
        precedence: 2,
        match: { request: { headers: { cookie: { regex: '^(.*?;)?(user=tester)(;.*)?$' } } } },
        route: [{ labels: { version: 'canary_version' } }],
      }),
    ]);
    meshpilot = await startMeshpilot(dir.path);
    client = new GrpcXdsCaller('xds:///reviews.default.svc.cluster.local:9080', {
      xdsPort: meshpilot.xdsPort,
      nodeId: 'sidecar~127.0.0.20~productpage-v1-0.default~default.svc.cluster.local',
      metadata: { GENERATOR: 'grpc' },
    });
  });

  after(async () => {
    client.close();
    await meshpilot.close();
    await Promise.all(backends.map((b) => b.close()));
    await dir.remove();
  });

  it('sends testers (cookie user=tester) to the canary every time', async () => {
    const counts = await client.tally(20, { cookie: 'session=1;user=tester' });
    assert.deepEqual([...counts], [['reviews-canary', 20]]);
  });

  it('sends about 5% of everyone else to the canary', async () => {
    const total = 600;
    const counts = await client.tally(total);
    const canary = counts.get('reviews-canary') ?? 0;
    assert.equal((counts.get('reviews-current') ?? 0) + canary, total);
    // Binomial(600, 0.05): mean 30, sd 5.3; 4 sd either side.
    assert.ok(canary >= 9 && canary <= 51, `canary got ${canary}/${total}, expected about 30`);
  });

  it('lists the RouteRules\' VirtualService in /debug/configz', async () => {
    const body = (await (await meshpilot.admin('/debug/configz')).json()) as { rules: { kind: string; name: string; applied: boolean }[] };
    assert.ok(body.rules.some((r) => r.kind === 'VirtualService' && r.name === 'routerule-reviews' && r.applied), JSON.stringify(body.rules));
  });
});

