// Explain follows Envoy's matching rules over the config a proxy holds: virtual host domains,
// first-match routes with path, header and query matchers; and preview's field-level diff.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProxy } from '../src/model/proxy.ts';
import { buildPushContext } from '../src/model/push-context.ts';
import { loadDirectory } from '../src/sources/config-dir.ts';
import { explainRequest } from '../src/xds/explain/explain.ts';
import { routeAnswer } from '../src/xds/explain/answer.ts';
import { routeMismatch, selectVirtualHost } from '../src/xds/explain/route-match.ts';
import { renderForProxy } from '../src/xds/render.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { diffJson } from '../src/xds/resource-diff.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';

const facts = (path: string, headers: Record<string, string> = {}, method = 'GET') => ({ authority: 'x', path, method, headers });

describe("Envoy's virtual host selection", () => {
  const hosts = [
    { name: 'any', domains: ['*'] },
    { name: 'prefix', domains: ['api.*'] },
    { name: 'short-suffix', domains: ['*.com'] },
    { name: 'long-suffix', domains: ['*.example.com'] },
    { name: 'exact', domains: ['api.example.com'] },
  ];
  const pick = (authority: string) => selectVirtualHost(hosts, authority)?.virtualHost['name'];

  it('prefers an exact domain, then the longest suffix wildcard, then a prefix wildcard, then *', () => {
    assert.equal(pick('api.example.com'), 'exact');
    assert.equal(pick('API.Example.com'), 'exact', 'case-insensitive');
    assert.equal(pick('www.example.com'), 'long-suffix');
    assert.equal(pick('www.other.com'), 'short-suffix');
    assert.equal(pick('api.internal'), 'prefix');
    assert.equal(pick('ratings:9080'), 'any');
  });

  it("drops the authority's port when the route configuration ignores ports in host matching (a gateway's)", () => {
    assert.equal(selectVirtualHost(hosts, 'api.example.com:8080')?.virtualHost['name'], 'prefix', 'api.* takes the port along');
    assert.equal(selectVirtualHost(hosts, 'api.example.com:8080', true)?.virtualHost['name'], 'exact');
  });

  it('does not let a wildcard match the empty string', () => {
    assert.equal(selectVirtualHost([{ name: 's', domains: ['*.com'] }], '.com'), undefined);
  });
});

describe('what a proxy answers itself on a route that does not forward', () => {
  it("gives a redirect's status (301 by default) and the parts of the Location it sets", () => {
    assert.deepEqual(routeAnswer({ match: { prefix: '/' }, redirect: { host_redirect: 'example.org' } }, facts('/a')), { kind: 'redirect', status: 301, location: { host: 'example.org' } });
    assert.deepEqual(routeAnswer({ match: { prefix: '/' }, redirect: { scheme_redirect: 'https', port_redirect: 8443, path_redirect: '/b', response_code: 'FOUND' } }, facts('/a')), {
      kind: 'redirect',
      status: 302,
      location: { scheme: 'https', port: 8443, path: '/b' },
    });
  });

  it('puts prefix_rewrite in place of the prefix the route matched, and gives a direct response its status', () => {
    assert.deepEqual(routeAnswer({ match: { prefix: '/old' }, redirect: { prefix_rewrite: '/new', https_redirect: true } }, facts('/old/x?q=1')), { kind: 'redirect', status: 301, location: { scheme: 'https', path: '/new/x' } });
    assert.deepEqual(routeAnswer({ match: { prefix: '/' }, direct_response: { status: 500 } }, facts('/')), { kind: 'direct_response', status: 500, location: null });
    assert.equal(routeAnswer({ match: { prefix: '/' }, route: { cluster: 'c' } }, facts('/')), undefined);
  });
});

describe("Envoy's route matching", () => {
  it('matches a prefix against the whole :path, a path and a regex against it without the query', () => {
    assert.equal(routeMismatch({ prefix: '/api' }, facts('/api/v1?x=1')), undefined);
    assert.match(routeMismatch({ prefix: '/api' }, facts('/web')) ?? '', /does not start with prefix \/api/);
    assert.equal(routeMismatch({ path: '/login' }, facts('/login?next=/')), undefined);
    assert.ok(routeMismatch({ path: '/login' }, facts('/login/')));
    assert.equal(routeMismatch({ safe_regex: { regex: '/items/[0-9]+' } }, facts('/items/42?full=1')), undefined);
    assert.ok(routeMismatch({ safe_regex: { regex: '/items/[0-9]+' } }, facts('/items/42/x')), 'a regex must match the whole path');
    assert.equal(routeMismatch({ prefix: '/API', case_sensitive: false }, facts('/api/x')), undefined);
  });

  it("matches regexes as RE2 does: inline flags work, and a pattern that backtracks forever in JavaScript answers at once", () => {
    assert.equal(routeMismatch({ safe_regex: { regex: '(?i)/ITEMS/[0-9]+' } }, facts('/items/7')), undefined);
    assert.equal(routeMismatch({ prefix: '/', headers: [{ name: 'x-id', safe_regex_match: { regex: '\\Aab\\z' } }] }, facts('/', { 'x-id': 'ab' })), undefined);
    // (a+)+$ against 50,000 a's and a b: exponential for a backtracking engine, linear for RE2.
    assert.ok(routeMismatch({ safe_regex: { regex: '/(a+)+$' } }, facts(`/${'a'.repeat(50_000)}b`)));
    assert.equal(routeMismatch({ safe_regex: { regex: '/(a+)+$' } }, facts(`/${'a'.repeat(50_000)}`)), undefined);
  });

  it('requires every header matcher, honours invert_match and present_match, and sees :method', () => {
    const match: JsonObject = { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }, { name: ':method', exact_match: 'POST' }] };
    assert.equal(routeMismatch(match, facts('/', { 'end-user': 'jason' }, 'POST')), undefined);
    assert.match(routeMismatch(match, facts('/', { 'end-user': 'jason' }, 'GET')) ?? '', /:method is "GET"/);
    assert.match(routeMismatch(match, facts('/', {}, 'POST')) ?? '', /end-user is absent/);
    assert.equal(routeMismatch({ prefix: '/', headers: [{ name: 'x-canary', present_match: true, invert_match: true }] }, facts('/')), undefined);
    assert.equal(routeMismatch({ prefix: '/', headers: [{ name: 'x-test', exact_match: 'a', invert_match: true }] }, facts('/', { 'x-test': 'b' })), undefined);
    assert.equal(routeMismatch({ prefix: '/', headers: [{ name: 'x-v', safe_regex_match: { regex: 'v[12]' } }] }, facts('/', { 'x-v': 'v2' })), undefined);
  });

  it('checks query parameters', () => {
    const match = { prefix: '/', query_parameters: [{ name: 'debug', string_match: { exact: 'on' } }] };
    assert.equal(routeMismatch(match, facts('/?debug=on')), undefined);
    assert.match(routeMismatch(match, facts('/?debug=off')) ?? '', /debug is "off"/);
  });
});

describe('explain for an Envoy sidecar in BookInfo', async () => {
  const push = buildPushContext(await loadDirectory(new URL('../fixtures/bookinfo', import.meta.url).pathname));
  const proxy = parseProxy('sidecar~10.244.2.7~productpage-v1-d5789fdfb-7kq2n.default~default.svc.cluster.local');
  const rendered = renderForProxy(push, proxy);
  const config = { listeners: rendered[LISTENER_TYPE], routes: rendered[ROUTE_TYPE], clusters: rendered[CLUSTER_TYPE], endpoints: rendered[ENDPOINT_TYPE] };

  it('walks the port listener, route config "9080" and the reviews virtual host by its short name', () => {
    const answer = explainRequest(config, proxy, { authority: 'reviews:9080', path: '/reviews/0', method: 'GET', headers: { 'end-user': 'jason' } }, push);
    assert.equal(answer.outcome, 'routed');
    assert.deepEqual([answer.listener?.name, answer.listener?.kind, answer.routeConfig?.name], ['0.0.0.0_9080', 'http', '9080']);
    assert.deepEqual([answer.virtualHost?.name, answer.virtualHost?.domain, answer.virtualHost?.match], ['reviews.default.svc.cluster.local:9080', 'reviews:9080', 'exact']);
    assert.deepEqual(answer.clusters.map((c) => [c.name, c.endpoints.map((e) => e.address)]), [['outbound|9080|v2|reviews.default.svc.cluster.local', ['10.244.2.8']]]);
  });

  it('splits everyone else 50/50 between v1 and v3', () => {
    const answer = explainRequest(config, proxy, { authority: 'reviews.default.svc.cluster.local:9080', path: '/', method: 'GET', headers: {} }, push);
    assert.deepEqual(answer.clusters.map((c) => [c.subset, c.percent]), [['v1', 50], ['v3', 50]]);
    assert.equal(answer.route?.rule?.httpRoute, 1);
  });

  it('sends an unknown host to PassthroughCluster through the allow_any virtual host', () => {
    const answer = explainRequest(config, proxy, { authority: 'example.org:9080', path: '/', method: 'GET', headers: {} }, push);
    assert.equal(answer.virtualHost?.name, 'allow_any');
    assert.deepEqual(answer.clusters.map((c) => [c.name, c.type]), [['PassthroughCluster', 'ORIGINAL_DST']]);
  });

  it('reports a port with no listener as going to virtualOutbound, a TCP passthrough', () => {
    const answer = explainRequest(config, proxy, { authority: 'db:5432', path: '/', method: 'GET', headers: {} }, push);
    assert.equal(answer.outcome, 'tcp');
    assert.equal(answer.listener?.name, 'virtualOutbound');
    assert.deepEqual(answer.clusters.map((c) => c.name), ['PassthroughCluster']);
  });
});

describe("preview's field-level diff", () => {
  it('compares named lists by name, and reports a reorder of routes as a change of its own', () => {
    const before: JsonObject = { routes: [{ name: 'a', match: { prefix: '/a' } }, { name: 'b', match: { prefix: '/' } }] };
    const after: JsonObject = { routes: [{ name: 'b', match: { prefix: '/' } }, { name: 'a', match: { prefix: '/a' } }, { name: 'c', match: { path: '/c' } }] };
    assert.deepEqual(diffJson(before, after), [
      { path: 'routes(order)', before: ['a', 'b'], after: ['b', 'a', 'c'] },
      { path: 'routes[name=c]', after: { name: 'c', match: { path: '/c' } } },
    ]);
    assert.deepEqual(diffJson({ w: [{ weight: 80 }, { weight: 20 }] }, { w: [{ weight: 30 }, { weight: 20 }] }), [{ path: 'w[0].weight', before: 80, after: 30 }]);
  });
});
