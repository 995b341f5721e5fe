// Istio's routing rules on real HTTP through real Envoy sidecars: productpage's application calls
// reviews by its VIP, iptables hands the connection to its Envoy (uid 1337), and each row checks
// what the application got and which backend saw what. One mesh for the file; rows rewrite rules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordInterop } from './support/interop-results.ts';
import { endpointSlice, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { HTTP_PORT, NS, VIP, servedBy, statuses, testRows, useSidecarMesh, type SidecarMesh } from './support/sidecar-mesh.ts';

const reviewsSubsets = rule('DestinationRule', 'reviews', NS, { host: 'reviews', subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })) });
const to = (subset: string, weight?: number) => ({ destination: { host: 'reviews', subset }, ...(weight === undefined ? {} : { weight }) });

function reviewsRoutes(http: unknown[]): K8sObject[] {
  return [reviewsSubsets, rule('VirtualService', 'reviews', NS, { hosts: ['reviews'], http })];
}

/** `count` lies within `sigmas` standard deviations of a binomial(n, p): a real split, not a fluke. */
function assertShare(count: number, n: number, p: number, what: string, sigmas = 4.5): void {
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(count - n * p) <= sigmas * sd, `${what}: ${count} of ${n}, expected about ${Math.round(n * p)} (±${Math.round(sigmas * sd)})`);
}

describe('Istio routing rules through real Envoy sidecars with iptables capture', () => {
  const meshFor = useSidecarMesh();

  testRows(meshFor, [
    {
      name: 'BookInfo: end-user jason reaches reviews v2, everyone else is split 50/50 between v1 and v3',
      interop: 'header-match',
      rules: reviewsRoutes([{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [to('v2')] }, { route: [to('v1', 50), to('v3', 50)] }]),
      check: async (mesh) => {
        assert.deepEqual(servedBy(await mesh.call({ headers: { 'end-user': 'jason' }, count: 20, concurrency: 4 })), { 'reviews-v2': 20 });
        const others = servedBy(await mesh.call({ headers: { 'end-user': 'alice' }, count: 300, concurrency: 8 }));
        assert.deepEqual(Object.keys(others).sort(), ['reviews-v1', 'reviews-v3']);
        assertShare(others['reviews-v1'] ?? 0, 300, 0.5, 'reviews v1');
      },
    },
    {
      name: 'a header presence match ({}) sends any value of the header to v3, and requests without it to v1',
      interop: 'header-present',
      rules: reviewsRoutes([{ match: [{ headers: { 'x-canary': {} } }], route: [to('v3')] }, { route: [to('v1')] }]),
      check: async (mesh) => {
        assert.deepEqual(servedBy(await mesh.call({ headers: { 'x-canary': 'anything' }, count: 10, concurrency: 2 })), { 'reviews-v3': 10 });
        assert.deepEqual(servedBy(await mesh.call({ headers: { 'x-canary': '' }, count: 5 })), { 'reviews-v3': 5 });
        assert.deepEqual(servedBy(await mesh.call({ count: 10, concurrency: 2 })), { 'reviews-v1': 10 });
      },
    },
    ...[{ stable: 80, canary: 20 }, { stable: 95, canary: 5 }].map(({ stable, canary }) => ({
      name: `a ${stable}/${canary} canary lands within tolerance`,
      ...(stable === 80 ? { interop: 'weighted-split' as const } : {}),
      rules: reviewsRoutes([{ route: [to('v1', stable), to('v3', canary)] }]),
      check: async (mesh: SidecarMesh) => {
        const split = servedBy(await mesh.call({ count: 400, concurrency: 8 }));
        assert.equal((split['reviews-v1'] ?? 0) + (split['reviews-v3'] ?? 0), 400, JSON.stringify(split));
        assert.ok((split['reviews-v3'] ?? 0) > 0, 'the canary gets some traffic');
        assertShare(split['reviews-v3'] ?? 0, 400, canary / 100, 'reviews v3');
      },
    })),
    {
      name: 'a delegate VirtualService: the root hands /reviews to it, its routes match inside the root\'s, the rest takes the root\'s default',
      rules: [
        reviewsSubsets,
        rule('VirtualService', 'reviews', NS, { hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/reviews' } }], delegate: { name: 'reviews-routes' } }, { route: [to('v3')] }] }),
        rule('VirtualService', 'reviews-routes', NS, { http: [{ match: [{ uri: { prefix: '/reviews/2' } }], route: [to('v2')] }, { route: [to('v1')] }] }),
      ],
      check: async (mesh) => {
        const servedFor = async (path: string) => (await mesh.callOnce({ path })).headers?.['x-served-by'];
        assert.deepEqual([await servedFor('/reviews/2'), await servedFor('/reviews/7'), await servedFor('/ratings/7')], ['reviews-v2', 'reviews-v1', 'reviews-v3']);
      },
    },
    {
      name: 'an older VirtualService exported only to its own namespace does not route callers in another',
      rules: [
        reviewsSubsets,
        withCreation(rule('VirtualService', 'reviews-private', 'elsewhere', {
          hosts: [`reviews.${NS}.svc.cluster.local`],
          exportTo: ['.'],
          http: [{ route: [{ destination: { host: `reviews.${NS}.svc.cluster.local`, subset: 'v2' } }] }],
        }), '2020-01-01T00:00:00Z'),
        withCreation(rule('VirtualService', 'reviews', NS, { hosts: ['reviews'], http: [{ route: [to('v1')] }] }), '2030-01-01T00:00:00Z'),
      ],
      check: async (mesh) => {
        assert.deepEqual(servedBy(await mesh.call({ count: 10, concurrency: 2 })), { 'reviews-v1': 10 });
      },
    },
    {
      name: 'legacy RouteRules: testers (cookie user=tester) always get the canary, others 95/5',
      rules: [
        routeRule('reviews-canary', 1, undefined, [{ labels: { version: 'v1' }, weight: 95 }, { labels: { version: 'v3' }, weight: 5 }]),
        routeRule('reviews-testers', 2, { request: { headers: { cookie: { regex: '^(.*?;)?(user=tester)(;.*)?$' } } } }, [{ labels: { version: 'v3' } }]),
      ],
      check: async (mesh) => {
        assert.deepEqual(servedBy(await mesh.call({ headers: { cookie: 'theme=dark;user=tester' }, count: 20, concurrency: 4 })), { 'reviews-v3': 20 });
        const split = servedBy(await mesh.call({ headers: { cookie: 'user=someone' }, count: 400, concurrency: 8 }));
        assert.equal((split['reviews-v1'] ?? 0) + (split['reviews-v3'] ?? 0), 400, JSON.stringify(split));
        assertShare(split['reviews-v3'] ?? 0, 400, 0.05, 'canary');
      },
    },
    {
      name: 'a fault delay holds the request for its fixed delay, only for the requests it matches',
      interop: 'fault-delay',
      interopNote: 'HTTP: the delay is observed on the request; an HTTP client has no gRPC deadline',
      rules: reviewsRoutes([
        { match: [{ headers: { 'x-test': { exact: 'slow' } } }], fault: { delay: { fixedDelay: '700ms', percentage: { value: 100 } } }, route: [to('v1')] },
        { route: [to('v1')] },
      ]),
      check: async (mesh) => {
        const before = (await mesh.productpageProxy.stats({ filter: 'fault.delays_injected$' })).get(`http.outbound_0.0.0.0_${HTTP_PORT}.fault.delays_injected`) ?? 0;
        const delayed = await mesh.callOnce({ headers: { 'x-test': 'slow' } });
        assert.equal(delayed.status, 200);
        assert.ok(delayed.ms >= 700, `took ${delayed.ms} ms`);
        await mesh.productpageProxy.waitForStat(`http.outbound_0.0.0.0_${HTTP_PORT}.fault.delays_injected`, before + 1);
        const plain = await mesh.callOnce();
        assert.equal(plain.status, 200);
        assert.ok(plain.ms < 700, `an unmatched request took ${plain.ms} ms`);
      },
    },
    {
      name: 'a fault abort answers its status for its percentage of requests, which never reach the backend',
      interop: 'fault-abort',
      interopNote: 'HTTP: the abort answers its HTTP status',
      rules: reviewsRoutes([{ fault: { abort: { httpStatus: 418, percentage: { value: 30 } } }, route: [to('v1')] }]),
      check: async (mesh) => {
        const seen = mesh.backend('reviews-v1').seen.length;
        const results = await mesh.call({ count: 300, concurrency: 8 });
        const counts = statuses(results);
        assert.equal((counts['418'] ?? 0) + (counts['200'] ?? 0), 300, JSON.stringify(counts));
        assertShare(counts['418'] ?? 0, 300, 0.3, 'aborted');
        assert.equal(mesh.backend('reviews-v1').seen.length - seen, counts['200']);
      },
    },
    {
      name: 'retries on 5xx,reset,connect-failure,retriable-4xx: a first attempt that fails is retried and succeeds',
      interop: 'retries',
      rules: reviewsRoutes([{ retries: { attempts: 3, retryOn: '5xx,reset,connect-failure,retriable-4xx' }, route: [to('v1')] }]),
      check: async (mesh) => {
        const failures: Record<string, Record<string, string>> = { '503': {}, '409': { 'x-fail-status': '409' }, reset: { 'x-fail-with': 'reset' } };
        for (const [failWith, how] of Object.entries(failures)) {
          const key = `retry-${failWith}`;
          const result = await mesh.callOnce({ headers: { 'x-fail-first': key, ...how } });
          assert.equal(result.status, 200, `${failWith}: ${JSON.stringify(result)}`);
          assert.equal((result.body as { attempt: number }).attempt, 2);
          assert.equal(mesh.backend('reviews-v1').seen.filter((s) => s.headers['x-fail-first'] === key).length, 2);
        }
      },
    },
    {
      name: 'attempts: 0 turns retries off: the failed first attempt is what the caller gets',
      rules: reviewsRoutes([{ retries: { attempts: 0 }, route: [to('v1')] }]),
      check: async (mesh) => {
        const result = await mesh.callOnce({ headers: { 'x-fail-first': 'no-retry' } });
        assert.equal(result.status, 503);
        assert.equal(mesh.backend('reviews-v1').seen.filter((s) => s.headers['x-fail-first'] === 'no-retry').length, 1);
      },
    },
    {
      name: 'a route timeout answers 504 when the backend is slower, and leaves fast requests alone',
      interop: 'route-timeout',
      rules: reviewsRoutes([{ timeout: '300ms', retries: { attempts: 0 }, route: [to('v1')] }]),
      check: async (mesh) => {
        const slow = await mesh.callOnce({ headers: { 'x-delay-ms': '2000' } });
        assert.equal(slow.status, 504);
        assert.equal(slow.body, 'upstream request timeout');
        assert.ok(slow.ms < 2000, `took ${slow.ms} ms`);
        assert.equal((await mesh.callOnce()).status, 200);
      },
    },
    {
      name: 'perTryTimeout ends a slow attempt and the retry answers',
      rules: reviewsRoutes([{ timeout: '5s', retries: { attempts: 2, perTryTimeout: '300ms', retryOn: '5xx' }, route: [to('v1')] }]),
      check: async (mesh) => {
        const result = await mesh.callOnce({ headers: { 'x-attempt-key': 'per-try', 'x-delay-first-ms': '3000' } });
        assert.equal(result.status, 200, JSON.stringify(result));
        assert.equal((result.body as { attempt: number }).attempt, 2);
        assert.ok(result.ms >= 300 && result.ms < 3000, `took ${result.ms} ms`);
      },
    },
    {
      name: 'a redirect answers 301 with the new location, and prefixRewrite swaps only the matched prefix; a rewrite changes the path the backend sees',
      rules: reviewsRoutes([
        { match: [{ uri: { prefix: '/old' } }], redirect: { uri: '/reviews/moved', authority: 'ratings:9080' } },
        { match: [{ uri: { prefix: '/archive/' } }], redirect: { prefixRewrite: '/reviews/', redirectCode: 308 } },
        { match: [{ uri: { prefix: '/legacy/' } }], rewrite: { uri: '/reviews/' }, route: [to('v1')] },
        { route: [to('v3')] },
      ]),
      check: async (mesh) => {
        const moved = await mesh.callOnce({ path: '/old/1' });
        assert.equal(moved.status, 301);
        assert.equal(moved.headers?.['location'], 'http://ratings:9080/reviews/moved');
        // prefixRewrite keeps the rest of the path and the query, swapping only the matched prefix.
        const archived = await mesh.callOnce({ path: '/archive/7?x=1' });
        assert.equal(archived.status, 308);
        assert.match(String(archived.headers?.['location']), /^http:\/\/[^/]+\/reviews\/7\?x=1$/);
        const rewritten = await mesh.callOnce({ path: '/legacy/7?x=1' });
        assert.equal(rewritten.headers?.['x-served-by'], 'reviews-v1');
        assert.equal((rewritten.body as { path: string }).path, '/reviews/7?x=1');
      },
    },
    {
      name: 'header operations: the backend sees the request headers set and not those removed; the caller sees the response headers likewise',
      rules: reviewsRoutes([{
        headers: { request: { set: { 'x-mesh': 'meshpilot' }, remove: ['x-secret'] }, response: { add: { 'x-route': 'reviews-v1' }, remove: ['x-internal'] } },
        route: [to('v1')],
      }]),
      check: async (mesh) => {
        const result = await mesh.callOnce({ headers: { 'x-secret': 'token', 'x-mesh': 'caller' } });
        const seen = (result.body as { headers: Record<string, string> }).headers;
        assert.equal(seen['x-mesh'], 'meshpilot');
        assert.equal(seen['x-secret'], undefined);
        const answered = result.headers ?? {};
        assert.equal(answered['x-route'], 'reviews-v1');
        assert.equal(answered['x-internal'], undefined);
        assert.equal(answered['x-served-by'], 'reviews-v1');
      },
    },
    {
      name: 'a CORS preflight from an allowed origin is answered by Envoy; another origin gets no allowance',
      rules: reviewsRoutes([{
        corsPolicy: { allowOrigins: [{ exact: 'https://shop.example' }], allowMethods: ['GET', 'POST'], allowHeaders: ['x-user'], maxAge: '1h' },
        route: [to('v1')],
      }]),
      check: async (mesh) => {
        const seen = mesh.backend('reviews-v1').seen.length;
        const preflight = { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' } };
        const allowed = await mesh.callOnce(preflight);
        assert.equal(allowed.status, 200);
        const allowance = allowed.headers ?? {};
        assert.equal(allowance['access-control-allow-origin'], 'https://shop.example');
        assert.equal(allowance['access-control-allow-methods'], 'GET,POST');
        assert.equal(allowance['access-control-max-age'], '3600');
        assert.equal(mesh.backend('reviews-v1').seen.length, seen, 'the preflight never reaches the backend');
        const other = await mesh.callOnce({ ...preflight, headers: { ...preflight.headers, origin: 'https://evil.example' } });
        assert.equal(other.headers?.['access-control-allow-origin'], undefined);
      },
    },
    {
      name: "mirroring: the caller gets v1's answer, and ratings sees a copy with Envoy's -shadow host",
      rules: reviewsRoutes([{ route: [to('v1')], mirror: { host: 'ratings' }, mirrorPercentage: { value: 100 } }]),
      check: async (mesh) => {
        const result = await mesh.callOnce({ path: '/reviews/mirrored' });
        assert.equal(result.headers?.['x-served-by'], 'reviews-v1');
        const copy = await waitForSeen(mesh, 'ratings', (s) => s.path === '/reviews/mirrored');
        assert.equal(copy.host, `reviews-shadow:${HTTP_PORT}`);
      },
    },
  ]);

  it('an edited rule changes what the next request does, with no Envoy restart', async (t) => {
    const mesh = await meshFor(t);
    if (!mesh) return;
    const pid = mesh.productpageProxy.process.pid;
    await mesh.applyRules(reviewsRoutes([{ route: [to('v1')] }]));
    assert.deepEqual(servedBy(await mesh.call({ count: 5 })), { 'reviews-v1': 5 });
    await mesh.applyRules(reviewsRoutes([{ route: [to('v3')] }]));
    assert.deepEqual(servedBy(await mesh.call({ count: 5 })), { 'reviews-v3': 5 });
    assert.equal(mesh.productpageProxy.process.pid, pid);
    assert.equal(mesh.productpageProxy.process.exitCode, null);
    recordInterop('split-change-live', 'envoy', 'pass', 'a route edited live: the next request follows it, with no restart');
  });

  it("a request to reviews-v2's pod arrives through its sidecar's virtualInbound and inbound cluster", async (t) => {
    const mesh = await meshFor(t);
    if (!mesh) return;
    await mesh.applyRules(reviewsRoutes([{ route: [to('v2')] }]));
    const inboundCluster = `cluster.inbound|${HTTP_PORT}||.upstream_rq_total`;
    const listener = 'listener.0.0.0.0_15006.downstream_cx_total';
    const read = async () => {
      const stats = await mesh.reviewsV2Proxy.stats({ filter: '(inbound\\|9080|0\\.0\\.0\\.0_15006\\.downstream_cx_total)' });
      return { rq: stats.get(inboundCluster) ?? 0, cx: stats.get(listener) ?? 0 };
    };
    const before = await read();
    const result = await mesh.callOnce({ path: '/reviews/inbound' });
    assert.equal(result.headers?.['x-served-by'], 'reviews-v2');
    // The application behind the sidecar sees the request from its own Envoy on loopback.
    assert.equal((result.body as { host: string }).host, `reviews:${HTTP_PORT}`);
    await mesh.reviewsV2Proxy.waitForStat(inboundCluster, before.rq + 1);
    assert.ok((await read()).cx > before.cx, 'virtualInbound accepted the connection');
  });

  it("reaches a service without rules at its VIP through productpage's sidecar and the service's outbound cluster", async (t) => {
    const mesh = await meshFor(t);
    if (!mesh) return;
    const cluster = `cluster.outbound|${HTTP_PORT}||ratings.default.svc.cluster.local.upstream_rq_total`;
    const before = (await mesh.productpageProxy.stats({ filter: 'ratings' })).get(cluster) ?? 0;
    const result = await mesh.callOnce({ address: VIP.ratings, host: `ratings:${HTTP_PORT}`, path: '/ratings/0' });
    assert.equal(result.headers?.['x-served-by'], 'ratings');
    await mesh.productpageProxy.waitForStat(cluster, before + 1);
  });

  it('GAMMA: an HTTPRoute whose parent is reviews routes its callers: jason to v2, /v3/... to v3 without the prefix, 80/20 for the rest, 500 for a missing backend', async (t) => {
    const mesh = await meshFor(t);
    if (!mesh) return;
    const http = { name: 'http', port: HTTP_PORT };
    // The Gateway API routes to Services: one per version, each selecting its pod.
    const versions = ['v1', 'v2', 'v3'].flatMap((v, i) => [
      service(`reviews-${v}`, NS, [{ ...http, targetPort: HTTP_PORT }], `203.0.113.${31 + i}`),
      endpointSlice(`reviews-${v}`, NS, http, [{ name: `reviews-${v}-0`, ip: mesh.pod(`reviews-${v}`).ip }]),
    ]);
    const backend = (version: string, weight?: number) => ({ name: `reviews-${version}`, port: HTTP_PORT, ...(weight === undefined ? {} : { weight }) });
    const route = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'reviews', namespace: NS },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: HTTP_PORT }],
        rules: [
          { matches: [{ headers: [{ name: 'end-user', value: 'jason' }] }], backendRefs: [backend('v2')] },
          { matches: [{ path: { type: 'PathPrefix', value: '/v3' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }], backendRefs: [backend('v3')] },
          { matches: [{ path: { type: 'Exact', value: '/gone' } }], backendRefs: [{ name: 'reviews-v9', port: HTTP_PORT }] },
          { backendRefs: [backend('v1', 80), backend('v3', 20)] },
        ],
      },
    };
    await mesh.applyRules([...versions, route]);
    assert.deepEqual(servedBy(await mesh.call({ headers: { 'end-user': 'jason' }, count: 20, concurrency: 4 })), { 'reviews-v2': 20 });
    assert.equal((await mesh.callOnce({ path: '/v3/reviews/7' })).headers?.['x-served-by'], 'reviews-v3');
    assert.equal((await waitForSeen(mesh, 'reviews-v3', (seen) => seen.path === '/reviews/7')).path, '/reviews/7');
    assert.deepEqual(statuses(await mesh.call({ path: '/gone', count: 3 })), { 500: 3 });
    const split = servedBy(await mesh.call({ path: '/v3x', count: 400, concurrency: 8 }));
    assert.equal((split['reviews-v1'] ?? 0) + (split['reviews-v3'] ?? 0), 400, `/v3x is not under /v3: ${JSON.stringify(split)}`);
    assertShare(split['reviews-v3'] ?? 0, 400, 0.2, 'reviews v3');
    await mesh.assertNothingRejected();
  });

  it('without a sidecar nothing answers a VIP: an uncaptured connection never leaves the bridge', async (t) => {
    const mesh = await meshFor(t);
    if (!mesh) return;
    const probe = `require('net').connect(${HTTP_PORT}, '${VIP.reviews}').on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); }); setTimeout(() => { console.log('timeout'); process.exit(0); }, 5000);`;
    const outcome = (await mesh.network.exec(mesh.pod('reviews-v1'), process.execPath, ['-e', probe])).trim();
    assert.ok(['EHOSTUNREACH', 'timeout'].includes(outcome), outcome);
  });
});

function withCreation(object: K8sObject, creationTimestamp: string): K8sObject {
  return { ...object, metadata: { ...(object['metadata'] as object), creationTimestamp } };
}

function routeRule(name: string, precedence: number, match: unknown, route: unknown[]): K8sObject {
  return {
    apiVersion: 'config.istio.io/v1alpha2',
    kind: 'RouteRule',
    metadata: { name, namespace: NS },
    spec: { destination: { name: 'reviews' }, precedence, ...(match ? { match } : {}), route },
  };
}

async function waitForSeen(mesh: SidecarMesh, backend: string, match: (s: { path: string; host: string }) => boolean) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = mesh.backend(backend).seen.find(match);
    if (found) return found;
    if (Date.now() > deadline) assert.fail(`${backend} never saw the request: ${JSON.stringify(mesh.backend(backend).seen.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
