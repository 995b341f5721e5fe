// GAMMA: Gateway API HTTPRoutes and GRPCRoutes whose parent is a Service become the
// VirtualService routes of that Service's callers, in the Gateway API's order, with the status
// the spec asks for; bad input gets the spec's reason, never a crash or a silent drop.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HttpRoute, VirtualService } from '../src/model/rules.ts';
import { buildPushContext } from '../src/model/push-context.ts';
import type { RouteCondition } from '../src/model/route-status.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { analyzeObjects } from '../src/commands/analyze.ts';
import { convertObjects, type ConvertedObjects } from '../src/sources/kube-objects.ts';
import { UNRESOLVED_BACKEND_HOST } from '../src/sources/gateway-api-rules.ts';
import { routeRule } from '../src/xds/attribution.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { Rendered, renderGrpc, renderSidecar, violations } from './support/rendered.ts';

type Spec = Record<string, unknown>;

const service = (name: string, namespace = 'default', port = 80): Spec => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { clusterIP: '10.96.0.9', ports: [{ name: 'http', port }] },
});

const httpRoute = (name: string, spec: Spec, metadata: Spec = {}): Spec => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name, namespace: 'default', generation: 3, ...metadata },
  spec: { parentRefs: [{ group: '', kind: 'Service', name: 'echo' }], ...spec },
});

const backend = (name: string, extra: Spec = {}): Spec => ({ name, port: 80, ...extra });
const prefix = (value: string): Spec => ({ path: { type: 'PathPrefix', value } });

function convert(...objects: Spec[]): ConvertedObjects {
  return convertObjects(objects.map((object, i) => ({ object, source: { origin: 'file' as const, location: 'gamma.yaml' }, position: `document ${i + 1}` })));
}

const BACKENDS = ['echo', 'echo-v1', 'echo-v2', 'echo-v3'].map((name) => service(name));

function meshRule(converted: ConvertedObjects): VirtualService {
  const rule = converted.rules.find((r): r is VirtualService => r.meta.origin !== undefined);
  assert.ok(rule, `a converted rule (rejected: ${JSON.stringify(converted.rejected.map((r) => r.issues))})`);
  return rule;
}

function conditions(converted: ConvertedObjects, name: string): Record<string, Pick<RouteCondition, 'status' | 'reason'>> {
  const status = converted.routeStatuses?.find((s) => s.name === name);
  assert.ok(status, `status of ${name}`);
  const [parent] = status.parents;
  return Object.fromEntries((parent?.conditions ?? []).map((c) => [c.type, { status: c.status, reason: c.reason }]));
}

describe('match precedence: the Gateway API order, across rules and routes', () => {
  const older = httpRoute('c', { rules: [{ matches: [prefix('/api')], backendRefs: [backend('echo-v3')] }] }, { creationTimestamp: '2025-12-31T00:00:00Z' });
  const a = httpRoute(
    'a',
    {
      rules: [
        { matches: [prefix('/api')], backendRefs: [backend('echo-v1')] },
        { matches: [{ path: { type: 'Exact', value: '/api/login' } }], backendRefs: [backend('echo-v1')] },
        { matches: [{ path: { type: 'RegularExpression', value: '/api/v[0-9]+' } }], backendRefs: [backend('echo-v1')] },
        { matches: [prefix('/api/v2/')], backendRefs: [backend('echo-v2')] },
        { matches: [{ ...prefix('/api'), method: 'POST' }], backendRefs: [backend('echo-v1')] },
        { matches: [{ ...prefix('/api'), headers: [{ name: 'x-a', value: '1' }] }], backendRefs: [backend('echo-v1')] },
      ],
    },
    { creationTimestamp: '2026-01-01T00:00:00Z' },
  );
  const b = httpRoute(
    'b',
    {
      rules: [
        { matches: [{ ...prefix('/api'), headers: [{ name: 'x-a', value: '1' }, { name: 'X-B', value: '2' }] }], backendRefs: [backend('echo-v2')] },
        { matches: [{ ...prefix('/api'), queryParams: [{ name: 'q', value: 'x' }] }], backendRefs: [backend('echo-v2')] },
      ],
    },
    { creationTimestamp: '2026-01-02T00:00:00Z' },
  );

  it('orders exact, longest prefix, method, header count, query count, then the oldest route, regex last', () => {
    const rule = meshRule(convert(...BACKENDS, b, a, older));
    assert.deepEqual(
      (rule.spec.http ?? []).map((r) => r.name),
      ['default.a.1', 'default.a.3', 'default.a.4', 'default.b.0', 'default.a.5', 'default.b.1', 'default.c.0', 'default.a.0', 'default.a.2'],
    );
    assert.deepEqual(rule.spec.hosts, ['echo.default.svc.cluster.local']);
    assert.deepEqual(rule.meta.origin?.http.map((o) => `${o.name}/${o.rule}`).slice(0, 3), ['a/1', 'a/3', 'a/4']);
  });

  it('matches a PathPrefix on whole path elements: /api/v2 itself and what is under /api/v2/, never /api/v2x', () => {
    const rule = meshRule(convert(...BACKENDS, a));
    const v2 = rule.spec.http?.find((r) => r.name === 'default.a.3');
    assert.deepEqual(v2?.match, [{ uri: { exact: '/api/v2' } }, { uri: { prefix: '/api/v2/' } }]);
  });

  it('lowercases header names and keeps the first of two equal names, as the spec says', () => {
    const route = httpRoute('h', { rules: [{ matches: [{ headers: [{ name: 'End-User', value: 'jason' }, { name: 'end-user', value: 'other' }] }], backendRefs: [backend('echo-v1')] }] });
    const [first] = meshRule(convert(...BACKENDS, route)).spec.http ?? [];
    assert.deepEqual(first?.match, [{ uri: { prefix: '/' }, headers: { 'end-user': { exact: 'jason' } } }]);
  });
});

describe('filters, weights and timeouts', () => {
  const only = (rule: Spec): HttpRoute | undefined => meshRule(convert(...BACKENDS, httpRoute('f', { rules: [rule] }))).spec.http?.[0];

  it('turns header modifiers into request and response header operations', () => {
    const route = only({
      filters: [
        { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Env', value: 'canary' }], add: [{ name: 'x-a', value: '1' }], remove: ['x-debug'] } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'x-route', value: 'gamma' }] } },
      ],
      backendRefs: [backend('echo-v1')],
    });
    assert.deepEqual(route?.headers, { request: { set: { 'x-env': 'canary' }, add: { 'x-a': '1' }, remove: ['x-debug'] }, response: { add: { 'x-route': 'gamma' } } });
  });

  it('redirects with the API default 302 and answers the redirect itself, without backends', () => {
    const route = only({ filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.com', scheme: 'https' } }] });
    assert.deepEqual(route?.redirect, { redirectCode: 302, scheme: 'https', authority: 'example.com' });
    assert.equal(route.route, undefined);
  });

  it('redirects replacing the matched prefix on element boundaries, as Istio\'s prefix_rewrite: /old to /new, /old/x to /new/x', () => {
    const all = (rule: Spec): readonly HttpRoute[] => meshRule(convert(...BACKENDS, httpRoute('f', { rules: [rule] }))).spec.http ?? [];
    const redirect = (replacePrefixMatch: string): Spec => ({ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', path: { type: 'ReplacePrefixMatch', replacePrefixMatch } } });
    const moved = all({ matches: [prefix('/old')], filters: [redirect('/new')] });
    assert.deepEqual(moved.map((r) => [r.match, r.redirect]), [
      [[{ uri: { exact: '/old' } }], { redirectCode: 302, authority: 'example.org', prefixRewrite: '/new' }],
      [[{ uri: { prefix: '/old/' } }], { redirectCode: 302, authority: 'example.org', prefixRewrite: '/new/' }],
    ]);
    assert.deepEqual(all({ matches: [prefix('/old/')], filters: [redirect('/')] }).map((r) => r.redirect?.prefixRewrite), ['/', '/']);
    assert.deepEqual(all({ matches: [prefix('/')], filters: [redirect('/new/')] }).map((r) => [r.match, r.redirect?.prefixRewrite]), [[[{ uri: { prefix: '/' } }], '/new/']]);
    const full = all({ matches: [prefix('/full')], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplaceFullPath', replaceFullPath: '/elsewhere' } } }] });
    assert.deepEqual(full.map((r) => r.redirect), [{ redirectCode: 302, uri: '/elsewhere' }]);
  });

  it('rewrites a matched prefix on element boundaries, and a full path', () => {
    const prefixed = only({ matches: [prefix('/v3/')], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'internal', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }], backendRefs: [backend('echo-v3')] });
    assert.deepEqual(prefixed?.rewrite, { authority: 'internal', uriRegexRewrite: { match: '^/v3(/?)(.*)', rewrite: '/\\2' } });
    const renamed = only({ matches: [prefix('/old')], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new/' } } }], backendRefs: [backend('echo-v3')] });
    assert.deepEqual(renamed?.rewrite, { uriRegexRewrite: { match: '^/old(/?)(.*)', rewrite: '/new\\1\\2' } });
    const full = only({ filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/status' } } }], backendRefs: [backend('echo-v3')] });
    assert.deepEqual(full?.rewrite, { uriRegexRewrite: { match: '/.*', rewrite: '/status' } });
  });

  it('mirrors to a Service with its percentage', () => {
    const route = only({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('echo-v3'), fraction: { numerator: 1, denominator: 4 } } }], backendRefs: [backend('echo-v1')] });
    assert.deepEqual(route?.mirrors, [{ destination: { host: 'echo-v3.default.svc.cluster.local', port: { number: 80 } }, percentage: { value: 25 } }]);
  });

  it('splits by relative weight, drops 0-weight backends, and omits the weight of a lone backend', () => {
    const split = only({ backendRefs: [backend('echo-v1', { weight: 0 }), backend('echo-v2', { weight: 3 }), backend('echo-v3')] });
    assert.deepEqual(split?.route?.map((d) => [d.destination.host, d.weight]), [['echo-v2.default.svc.cluster.local', 3], ['echo-v3.default.svc.cluster.local', 1]]);
    const lone = only({ backendRefs: [backend('echo-v1', { weight: 0 }), backend('echo-v2', { weight: 7 })] });
    assert.deepEqual(lone?.route, [{ destination: { host: 'echo-v2.default.svc.cluster.local', port: { number: 80 } } }]);
  });

  it('answers 500 when every backend has weight 0, or there are none, as the spec says', () => {
    assert.deepEqual(only({ backendRefs: [backend('echo-v1', { weight: 0 })] })?.directResponse, { status: 500 });
    assert.deepEqual(only({})?.directResponse, { status: 500 });
  });

  it('takes the request timeout, and the backend request timeout over it (as Istio)', () => {
    assert.equal(only({ timeouts: { request: '1m30s' }, backendRefs: [backend('echo-v1')] })?.timeout, '90s');
    assert.equal(only({ timeouts: { request: '10s', backendRequest: '500ms' }, backendRefs: [backend('echo-v1')] })?.timeout, '0.5s');
  });

  it('retries connection failures and the listed codes, backendRequest then being the per-try timeout (as Istio)', () => {
    const route = only({ retry: { attempts: 3, codes: [503], backoff: '100ms' }, timeouts: { request: '10s', backendRequest: '2s' }, backendRefs: [backend('echo-v1')] });
    assert.equal(route?.timeout, '10s');
    assert.deepEqual(route.retries, { attempts: 3, retryOn: 'connect-failure,refused-stream,unavailable,cancelled,503', backoff: '0.1s', perTryTimeout: '2s' });
  });
});

describe('status: Accepted and ResolvedRefs with the reasons the spec defines', () => {
  const cases: { story: string; objects: Spec[]; accepted: string; resolved: string }[] = [
    { story: 'a valid route', objects: [httpRoute('r', { rules: [{ backendRefs: [backend('echo-v1')] }] })], accepted: 'True/Accepted', resolved: 'True/ResolvedRefs' },
    { story: 'a backend Service that does not exist', objects: [httpRoute('r', { rules: [{ backendRefs: [backend('nowhere')] }] })], accepted: 'True/Accepted', resolved: 'False/BackendNotFound' },
    { story: 'a backend port the Service lacks', objects: [httpRoute('r', { rules: [{ backendRefs: [backend('echo-v1', { port: 8080 })] }] })], accepted: 'True/Accepted', resolved: 'False/BackendNotFound' },
    // As Istio: a mesh route's backends and mirrors need no ReferenceGrant (a Gateway's routes do).
    { story: 'a backend in another namespace without a ReferenceGrant', objects: [service('db', 'data'), httpRoute('r', { rules: [{ backendRefs: [backend('db', { namespace: 'data' })] }] })], accepted: 'True/Accepted', resolved: 'True/ResolvedRefs' },
    {
      story: 'a mirror in another namespace without a ReferenceGrant',
      objects: [service('db', 'data'), httpRoute('r', { rules: [{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('db', { namespace: 'data' }) } }], backendRefs: [backend('echo-v1')] }] })],
      accepted: 'True/Accepted',
      resolved: 'True/ResolvedRefs',
    },
    {
      story: 'a backend in another namespace with a ReferenceGrant there',
      objects: [
        service('db', 'data'),
        { apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { name: 'from-default', namespace: 'data' }, spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'default' }], to: [{ group: '', kind: 'Service' }] } },
        httpRoute('r', { rules: [{ backendRefs: [backend('db', { namespace: 'data' })] }] }),
      ],
      accepted: 'True/Accepted',
      resolved: 'True/ResolvedRefs',
    },
    { story: 'a backend that is not a Service', objects: [httpRoute('r', { rules: [{ backendRefs: [backend('cm', { kind: 'ConfigMap' })] }] })], accepted: 'True/Accepted', resolved: 'False/InvalidKind' },
    { story: 'a filter meshpilot does not implement', objects: [httpRoute('r', { rules: [{ filters: [{ type: 'CORS', cors: {} }], backendRefs: [backend('echo-v1')] }] })], accepted: 'False/UnsupportedValue', resolved: 'True/ResolvedRefs' },
    { story: 'session persistence', objects: [httpRoute('r', { rules: [{ sessionPersistence: { type: 'Cookie' }, backendRefs: [backend('echo-v1')] }] })], accepted: 'False/UnsupportedValue', resolved: 'True/ResolvedRefs' },
    { story: 'a parent Service that does not exist', objects: [httpRoute('r', { parentRefs: [{ group: '', kind: 'Service', name: 'ghost' }], rules: [{ backendRefs: [backend('echo-v1')] }] })], accepted: 'False/NoMatchingParent', resolved: 'True/ResolvedRefs' },
    { story: 'a parent port the Service lacks', objects: [httpRoute('r', { parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 81 }], rules: [{ backendRefs: [backend('echo-v1')] }] })], accepted: 'False/NoMatchingParent', resolved: 'True/ResolvedRefs' },
  ];
  for (const { story, objects, accepted, resolved } of cases) {
    it(`${story}: Accepted ${accepted}, ResolvedRefs ${resolved}`, () => {
      const converted = convert(...BACKENDS, ...objects);
      const got = conditions(converted, 'r');
      assert.equal(`${got['Accepted']?.status}/${got['Accepted']?.reason}`, accepted);
      assert.equal(`${got['ResolvedRefs']?.status}/${got['ResolvedRefs']?.reason}`, resolved);
      // Not accepted: no routes at all; accepted: the routes, unresolved backends answering 500.
      assert.equal(converted.rules.some((r) => r.meta.origin !== undefined), accepted.startsWith('True'));
    });
  }

  it('names the controller, the parent and the generation, and tells analyze what is wrong with the field', () => {
    const converted = convert(...BACKENDS, httpRoute('r', { rules: [{ backendRefs: [backend('nowhere')] }] }));
    const [parent] = converted.routeStatuses?.[0]?.parents ?? [];
    assert.equal(parent?.controllerName, 'meshpilot.io/gateway-controller');
    assert.deepEqual(parent.parentRef, { group: '', kind: 'Service', name: 'echo' });
    assert.ok(parent.conditions.every((c) => c.observedGeneration === 3));
    const [finding] = analyzeObjects(converted).filter((f) => f.object === 'HTTPRoute default/r');
    assert.equal(finding?.path, 'spec.rules[0].backendRefs[0].name');
    assert.match(finding.message, /ResolvedRefs=False \(BackendNotFound\): Service default\/nowhere does not exist/);
  });

  it('sends a backend the route cannot use nowhere: its requests get 500', () => {
    const converted = convert(...BACKENDS, httpRoute('r', { rules: [{ backendRefs: [backend('cm', { kind: 'ConfigMap' })] }] }));
    assert.equal(meshRule(converted).spec.http?.[0]?.route?.[0]?.destination.host, UNRESOLVED_BACKEND_HOST);
  });

  const rejectedAt = (spec: Spec): string[] => convert(httpRoute('bad', spec)).rejected.flatMap((r) => r.issues.map((i) => `${i.code} ${i.path}`));
  it('rejects what the API server would refuse, naming the field', () => {
    assert.deepEqual(rejectedAt({ rules: [{ matches: [{ path: { type: 'Prefix', value: '/' } }], backendRefs: [backend('echo-v1')] }] }), ['MP_OBJECT_INVALID spec.rules[0].matches[0].path.type']);
    assert.deepEqual(rejectedAt({ rules: [{ backendRefs: [{ name: 'echo-v1' }] }] }), ['MP_OBJECT_INVALID spec.rules[0].backendRefs[0].port']);
    assert.deepEqual(rejectedAt({ rules: [{ backendRef: [backend('echo-v1')] }] }), ['MP_OBJECT_INVALID spec.rules[0].backendRef']);
    assert.deepEqual(rejectedAt({ rules: [{ timeouts: { request: '10 seconds' }, backendRefs: [backend('echo-v1')] }] }), ['MP_OBJECT_INVALID spec.rules[0].timeouts.request']);
    const replacePrefix = { type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } } };
    assert.deepEqual(rejectedAt({ rules: [{ matches: [{ path: { type: 'Exact', value: '/old' } }], filters: [replacePrefix] }] }), ['MP_OBJECT_INVALID spec.rules[0].filters[0]']);
    assert.deepEqual(rejectedAt({ rules: [{ matches: [prefix('/a'), prefix('/b')], filters: [replacePrefix] }] }), ['MP_OBJECT_INVALID spec.rules[0].filters[0]']);
  });
});

describe('callers of the Service: what a sidecar and a proxyless gRPC client get', () => {
  const REVIEWS = 'reviews.default.svc.cluster.local';
  const RATINGS = 'ratings.default.svc.cluster.local';
  const action = (route: JsonObject | undefined): JsonObject => (route?.['route'] ?? {}) as JsonObject;

  it('a sidecar calling reviews gets the HTTPRoute in order, attributed to the HTTPRoute and its rule', async () => {
    const routes = (await renderSidecar('gamma')).routes('9080', `${REVIEWS}:9080`);
    assert.deepEqual(routes.map((r) => r['name']), ['default.reviews.1', 'default.reviews.1', 'default.reviews.0', 'default.reviews.2']);
    const [v3, v3Below, jason, rest] = routes;
    assert.deepEqual([(v3?.['match'] as JsonObject)['path'], (v3Below?.['match'] as JsonObject)['prefix']], ['/v3', '/v3/']);
    assert.deepEqual(action(v3)['regex_rewrite'], { pattern: { regex: '^/v3(/?)(.*)' }, substitution: '/\\2' });
    assert.equal(action(jason)['cluster'], `outbound|9080||reviews-v2.default.svc.cluster.local`);
    assert.deepEqual((action(rest)['weighted_clusters'] as JsonObject)['clusters'], [
      { name: 'outbound|9080||reviews-v1.default.svc.cluster.local', weight: 90 },
      { name: 'outbound|9080||reviews-v3.default.svc.cluster.local', weight: 10 },
    ]);
    assert.equal(action(rest)['timeout'], '5s');
    assert.equal(action(rest)['cluster_not_found_response_code'], 'INTERNAL_SERVER_ERROR');
    assert.deepEqual(rest?.['response_headers_to_add'], [{ header: { key: 'x-route', value: 'gamma' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }]);
    assert.deepEqual((rest['metadata'] as JsonObject)['filter_metadata'], { istio: { config: '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproute/reviews', http_route: 2 } });
  });

  it('a proxyless gRPC client calling ratings gets the GRPCRoute: x-canary to v2, the rest to v1', async () => {
    const routes = (await renderGrpc('gamma', [`${RATINGS}:9080`])).routes(`${RATINGS}:9080`, `${RATINGS}:9080`);
    assert.deepEqual(routes.map((r) => action(r)['cluster']), ['outbound|9080||ratings-v2.default.svc.cluster.local', 'outbound|9080||ratings-v1.default.svc.cluster.local']);
    assert.deepEqual(((routes[0]?.['match'] as JsonObject)['headers'] as JsonObject[])[0]?.['name'], 'x-canary');
  });

  it('with a VirtualService for the same host, callers in the route\'s namespace follow the HTTPRoute and others the older rule, as Istio; both are told', () => {
    const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'echo', namespace: 'default', creationTimestamp: '2025-01-01T00:00:00Z' }, spec: { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo-v3' } }] }] } };
    const route = httpRoute('r', { rules: [{ backendRefs: [backend('echo-v1')] }] }, { creationTimestamp: '2026-01-01T00:00:00Z' });
    const push = buildPushContext(convert(...BACKENDS, service('echo', 'other'), vs, route));
    const clusterFor = (proxyId: string): unknown => {
      const rendered = new Rendered(renderForProxy(push, parseProxy(proxyId)));
      return action(rendered.routes('80', 'echo.default.svc.cluster.local:80')[0])['cluster'];
    };
    assert.equal(clusterFor('sidecar~10.244.0.5~client-0.default~default.svc.cluster.local'), 'outbound|80||echo-v1.default.svc.cluster.local');
    assert.equal(clusterFor('sidecar~10.244.0.6~client-0.other~other.svc.cluster.local'), 'outbound|80||echo-v3.default.svc.cluster.local');
    const messages = [...push.ruleStatus.values()].flatMap((s) => s.issues.filter((i) => i.code === 'MP_RULE_CONFLICT').map((i) => `${s.rule.meta.name}: ${i.message}`));
    assert.equal(messages.length, 2, messages.join('\n'));
    assert.ok(messages.some((m) => m.startsWith('echo: ') && m.includes('routed by HTTPRoute default/r')));
  });

  it('a consumer route (from another namespace) changes only its own namespace\'s calls, a producer route everyone else\'s; neither needs a ReferenceGrant', () => {
    const withHeader = (value: string): Spec[] => [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-route', value }] } }];
    const consumer = httpRoute('consumer', { parentRefs: [{ group: '', kind: 'Service', name: 'echo', namespace: 'default' }], rules: [{ filters: withHeader('consumer'), backendRefs: [backend('echo-v1', { namespace: 'default' })] }] }, { namespace: 'shop' });
    const producer = httpRoute('producer', { rules: [{ filters: withHeader('producer'), backendRefs: [backend('echo-v2')] }] });
    const routedBy = (objects: Spec[], namespace: string): unknown => {
      const push = buildPushContext(convert(...BACKENDS, ...objects));
      const rendered = new Rendered(renderForProxy(push, parseProxy(`sidecar~10.244.0.5~client-0.${namespace}~${namespace}.svc.cluster.local`)));
      const [route] = rendered.routes('80', 'echo.default.svc.cluster.local:80');
      const header = (route?.['response_headers_to_add'] as JsonObject[] | undefined)?.[0]?.['header'] as JsonObject | undefined;
      return [action(route)['cluster'], header?.['value']];
    };
    assert.deepEqual(conditions(convert(...BACKENDS, consumer), 'consumer')['ResolvedRefs'], { status: 'True', reason: 'ResolvedRefs' });
    assert.deepEqual(routedBy([consumer], 'shop'), ['outbound|80||echo-v1.default.svc.cluster.local', 'consumer']);
    assert.deepEqual(routedBy([consumer], 'default'), ['outbound|80||echo.default.svc.cluster.local', undefined], 'the Service\'s own namespace is not the consumer');
    assert.deepEqual(routedBy([consumer, producer], 'shop'), ['outbound|80||echo-v1.default.svc.cluster.local', 'consumer'], 'the consumer route over the producer route');
    assert.deepEqual(routedBy([consumer, producer], 'default'), ['outbound|80||echo-v2.default.svc.cluster.local', 'producer']);
    assert.deepEqual(routedBy([consumer, producer], 'other'), ['outbound|80||echo-v2.default.svc.cluster.local', 'producer']);
  });

  it('a backend that does not exist answers 500: its cluster is named on purpose, and the checkers know it', () => {
    const push = buildPushContext(convert(...BACKENDS, httpRoute('r', { rules: [{ backendRefs: [backend('nowhere')] }] })));
    const rendered = renderForProxy(push, parseProxy('sidecar~10.244.0.5~client-0.default~default.svc.cluster.local'));
    const [route] = new Rendered(rendered).routes('80', 'echo.default.svc.cluster.local:80');
    assert.deepEqual([action(route)['cluster'], action(route)['cluster_not_found_response_code']], ['outbound|80||nowhere.default.svc.cluster.local', 'INTERNAL_SERVER_ERROR']);
    assert.deepEqual(violations(rendered), []);
    assert.deepEqual(routeRule(route ?? {}), { kind: 'HTTPRoute', namespace: 'default', name: 'r', httpRoute: 0 }, 'a NACK of this route names the HTTPRoute');
  });

  it("a route whose parent names one port leaves the Service's other ports their default route, as Istio's sidecar routes do", () => {
    const twoPorts: Spec = { ...service('echo'), spec: { clusterIP: '10.96.0.9', ports: [{ name: 'http', port: 80 }, { name: 'http-alt', port: 8080 }] } };
    const route = httpRoute('r', { parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }], rules: [{ backendRefs: [backend('echo-v1')] }] });
    const push = buildPushContext(convert(...BACKENDS.filter((s) => (s['metadata'] as Spec)['name'] !== 'echo'), twoPorts, route));
    const rendered = new Rendered(renderForProxy(push, parseProxy('sidecar~10.244.0.5~client-0.default~default.svc.cluster.local')));
    assert.equal(action(rendered.routes('80', 'echo.default.svc.cluster.local:80')[0])['cluster'], 'outbound|80||echo-v1.default.svc.cluster.local');
    const other = rendered.routes('8080', 'echo.default.svc.cluster.local:8080');
    assert.deepEqual(other.map((r) => [r['name'], action(r)['cluster']]), [['default', 'outbound|8080||echo.default.svc.cluster.local']]);
  });

  it('a redirect replacing the matched prefix reaches Envoy as prefix_rewrite, per half of the prefix match', () => {
    const filters = [{ type: 'RequestRedirect', requestRedirect: { statusCode: 301, path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } } }];
    const push = buildPushContext(convert(...BACKENDS, httpRoute('r', { rules: [{ matches: [prefix('/old')], filters }] })));
    const rendered = renderForProxy(push, parseProxy('sidecar~10.244.0.5~client-0.default~default.svc.cluster.local'));
    const routes = new Rendered(rendered).routes('80', 'echo.default.svc.cluster.local:80').filter((r) => r['redirect'] !== undefined);
    assert.deepEqual(routes.map((r) => [r['match'], r['redirect']]), [
      [{ path: '/old' }, { prefix_rewrite: '/new' }],
      [{ prefix: '/old/' }, { prefix_rewrite: '/new/' }],
    ]);
    assert.deepEqual(violations(rendered), []);
  });

  it('every resource of the gamma fixture passes validate.rules and the cross-reference checks', async () => {
    assert.deepEqual(violations((await renderSidecar('gamma')).resources), []);
  });
});
