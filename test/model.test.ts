// Pure model logic: node ids, protocol selection, Istio's short-name rule, debounce merging.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProxy } from '../src/model/proxy.ts';
import { resolveShortName, selectProtocol } from '../src/model/service.ts';
import { Debouncer } from '../src/push/debounce.ts';

describe('a proxy is read from its node id', () => {
  it('parses an Istio sidecar id into type, IP, pod and namespace', () => {
    const proxy = parseProxy('sidecar~10.244.1.7~reviews-v2-6f85cb9b7c-h6m4r.default~default.svc.cluster.local');
    assert.equal(proxy.type, 'sidecar');
    assert.deepEqual(proxy.ipAddresses, ['10.244.1.7']);
    assert.equal(proxy.podName, 'reviews-v2-6f85cb9b7c-h6m4r');
    assert.equal(proxy.namespace, 'default');
    assert.equal(proxy.generator, 'envoy');
  });

  it('still serves any other node id, taking namespace and generator from metadata', () => {
    const proxy = parseProxy('my-grpc-client', { NAMESPACE: 'shop', GENERATOR: 'grpc', LABELS: { app: 'cart', n: 3 } });
    assert.equal(proxy.type, 'unknown');
    assert.equal(proxy.namespace, 'shop');
    assert.equal(proxy.generator, 'grpc');
    assert.deepEqual(proxy.labels, { app: 'cart' });
  });
});

describe('a service port gets its protocol as Istio selects it', () => {
  const cases: [string, string | undefined, string | undefined, number, string][] = [
    ['http', undefined, 'TCP', 9080, 'HTTP'],
    ['http-web', undefined, 'TCP', 80, 'HTTP'],
    ['grpc', undefined, 'TCP', 7070, 'GRPC'],
    ['grpc-web', undefined, 'TCP', 8080, 'GRPC-Web'],
    ['HTTP2-api', undefined, 'TCP', 8080, 'HTTP2'],
    ['web', 'http', 'TCP', 80, 'HTTP'],
    ['http', 'tcp', 'TCP', 80, 'TCP'],
    ['h2', 'kubernetes.io/h2c', 'TCP', 80, 'HTTP2'],
    ['dns', undefined, 'UDP', 53, 'UDP'],
    ['', undefined, 'TCP', 3306, 'TCP'],
    ['metrics', undefined, 'TCP', 9090, 'Unsupported'],
  ];
  for (const [name, appProtocol, l4, port, expected] of cases) {
    it(`name "${name}", appProtocol ${appProtocol ?? '-'}, ${l4} ${port} is ${expected}`, () => {
      assert.equal(selectProtocol(name, appProtocol, l4, port), expected);
    });
  }
});

describe("Istio's short-name rule", () => {
  it('qualifies a bare name in the rule namespace and keeps anything with a dot', () => {
    assert.equal(resolveShortName('reviews', 'shop'), 'reviews.shop.svc.cluster.local');
    assert.equal(resolveShortName('reviews.default', 'shop'), 'reviews.default');
    assert.equal(resolveShortName('*', 'shop'), '*');
  });
});

describe('the debouncer', () => {
  it('merges a burst into one push after the quiet period', async () => {
    const fired: number[][] = [];
    const debouncer = new Debouncer<number>({ quietMs: 30, maxMs: 1000 }, (events) => fired.push(events));
    for (let i = 0; i < 5; i++) {
      debouncer.add(i);
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(fired, [[0, 1, 2, 3, 4]]);
  });

  it('fires by the max delay even while events keep coming', async () => {
    const fired: number[][] = [];
    const debouncer = new Debouncer<number>({ quietMs: 40, maxMs: 100 }, (events) => fired.push(events));
    const started = Date.now();
    for (let i = 0; Date.now() - started < 180; i++) {
      debouncer.add(i);
      await new Promise((r) => setTimeout(r, 10));
    }
    debouncer.cancel();
    assert.ok(fired.length >= 1, 'a push happened during a continuous stream of changes');
  });
});
