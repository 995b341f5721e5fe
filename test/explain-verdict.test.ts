// The conformance run's check of real requests against explain: which responses agree with
// what explain says the proxy does, and which are disagreements to look into.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Explanation } from '../src/xds/explain/explain.ts';
import { echoClientResponses } from './support/explain-check.ts';
import { judge } from './support/explain-verdict.ts';

const cluster = (name: string, addresses: readonly string[], percent = 100): Explanation['clusters'][number] => ({
  name,
  weight: null,
  percent,
  sent: true,
  type: 'EDS',
  lbPolicy: null,
  service: null,
  subset: null,
  rules: [],
  endpoints: addresses.map((address) => ({ address, port: 8080, locality: '', healthStatus: 'HEALTHY', weight: 1 })),
});

const explained = (fields: Partial<Explanation>): Explanation => ({
  outcome: 'routed',
  summary: '',
  request: { authority: 'echo', path: '/', method: 'GET', headers: {} },
  listener: null,
  gateway: null,
  routeConfig: null,
  virtualHost: null,
  route: null,
  skipped: [],
  clusters: [],
  policy: null,
  ...fields,
});

const endpointsOf = (c: Explanation['clusters'][number]): readonly string[] => c.endpoints.map((e) => e.address);

describe('a real request checked against explain', () => {
  const v1v2 = explained({ clusters: [cluster('outbound|80||echo-v1.ns.svc.cluster.local', ['198.51.100.10'], 90), cluster('outbound|80||echo-v2.ns.svc.cluster.local', ['198.51.100.11'], 10), cluster('outbound|80||echo-v3.ns.svc.cluster.local', ['198.51.100.12'], 0)] });

  it('agrees when the pod that answered backs a cluster explain sends the request to', () => {
    assert.deepEqual(judge(v1v2, { status: 200, pod: 'echo-v2-0' }, endpointsOf, '198.51.100.11'), { kind: 'agreed' });
  });

  it('disagrees when the pod backs none of them, or only a cluster given no share', () => {
    assert.equal(judge(v1v2, { status: 200, pod: 'echo-v3-0' }, endpointsOf, '198.51.100.12').kind, 'disagreed');
    assert.match(JSON.stringify(judge(v1v2, { status: 200, pod: 'other-0' }, endpointsOf, '198.51.100.99')), /backs none of outbound\|80\|\|echo-v1/);
  });

  it("compares a redirect's status and the parts of its Location the route sets", () => {
    const redirect = explained({ outcome: 'no_action', answer: { kind: 'redirect', status: 302, location: { host: 'example.org', port: 8083 } } });
    assert.deepEqual(judge(redirect, { status: 302, location: 'http://example.org:8083/port' }, endpointsOf, undefined), { kind: 'agreed' });
    assert.equal(judge(redirect, { status: 301, location: 'http://example.org:8083/port' }, endpointsOf, undefined).kind, 'disagreed');
    assert.match(JSON.stringify(judge(redirect, { status: 302, location: 'http://example.org/port' }, endpointsOf, undefined)), /port is 80, explain's redirect sets 8083/);
    assert.equal(judge(redirect, { status: 200, pod: 'echo-v1-0', followedRedirects: true }, endpointsOf, '198.51.100.10').kind, 'not checked');
  });

  it('takes a refused connection for no listener, a 404 for no route, a 503 for a cluster without endpoints', () => {
    assert.deepEqual(judge(explained({ outcome: 'no_listener' }), { error: 'connection refused' }, endpointsOf, undefined), { kind: 'agreed' });
    assert.equal(judge(explained({ outcome: 'no_listener' }), { status: 404 }, endpointsOf, undefined).kind, 'disagreed');
    assert.deepEqual(judge(explained({ outcome: 'no_route' }), { status: 404 }, endpointsOf, undefined), { kind: 'agreed' });
    assert.equal(judge(explained({ outcome: 'no_route' }), { status: 200, pod: 'echo-v1-0' }, endpointsOf, '198.51.100.10').kind, 'disagreed');
    assert.deepEqual(judge(explained({ clusters: [cluster('outbound|80||gone.ns.svc.cluster.local', [])] }), { status: 503 }, endpointsOf, undefined), { kind: 'agreed' });
    assert.equal(judge(v1v2, { status: 503 }, endpointsOf, undefined).kind, 'disagreed');
  });
});

describe("Istio's echo client output", () => {
  it('is read per request: status, the answering host from the body, response headers', () => {
    const out = echoClientResponses('[0] URL=http://echo/\n[0] StatusCode=302\n[0] ResponseHeader=Location:http://example.org/\n[1] StatusCode=200\n[1 body] Hostname=echo-v1-abc-0\n');
    assert.deepEqual(out.get(0)?.get('ResponseHeader'), ['Location:http://example.org/']);
    assert.deepEqual([out.get(0)?.get('StatusCode'), out.get(1)?.get('Hostname')], [['302'], ['echo-v1-abc-0']]);
  });
});
