// End to end: Istio traffic policies observed on real RPCs from @grpc/grpc-js-xds clients to
// real gRPC backends — faults, retries, timeouts, consistent hashing, outlier detection, splits.
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { after, before, describe, it } from 'node:test';
import { startBackends, type Backend } from './support/backends.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { MeshDir, eventually, rule } from './support/mesh-dir.ts';
import { NS, PRODUCTPAGE, TARGET, subsets, workloads } from './support/reviews-mesh.ts';
import { startMeshpilot } from './support/meshpilot.ts';

const toV1 = [{ destination: { host: 'reviews', subset: 'v1' } }];

function reviewsRule(http: unknown[]) {
  return rule('VirtualService', 'reviews', NS, { hosts: ['reviews'], http });
}

function reviewsPolicy(trafficPolicy: unknown) {
  return rule('DestinationRule', 'reviews', NS, { host: 'reviews', trafficPolicy, subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })) });
}

describe('Istio traffic policies on real gRPC calls', () => {
  let dir: MeshDir;
  let backends: Backend[];
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;
  let client: GrpcXdsCaller;
  const backend = (i: number): Backend => backends[i] ?? assert.fail(`no backend ${i}`);

  before(async () => {
    backends = await startBackends(['reviews-v1', 'reviews-v2', 'reviews-v3']);
    dir = await MeshDir.create();
    await dir.write('workloads.yaml', workloads(backends));
    await dir.write('destination-rules.yaml', [subsets]);
    await dir.write('virtual-services.yaml', [reviewsRule([{ route: toV1 }])]);
    meshpilot = await startMeshpilot(dir.path);
    client = new GrpcXdsCaller(TARGET, { xdsPort: meshpilot.xdsPort, nodeId: PRODUCTPAGE, metadata: { GENERATOR: 'grpc' } });
    await eventually(async () => ((await client.whoami()).name === 'reviews-v1' ? true : undefined), 10_000, 'first routing');
  });

  after(async () => {
    client.close();
    await meshpilot.close();
    await Promise.all(backends.map((b) => b.close()));
    await dir.remove();
  });

  it('aborts the calls a fault targets with the gRPC status it names, and only those', async () => {
    await dir.write('virtual-services.yaml', [
      reviewsRule([
        { match: [{ headers: { 'x-fault': { exact: 'abort' } } }], fault: { abort: { grpcStatus: 'PERMISSION_DENIED', percentage: { value: 100 } } }, route: toV1 },
        { match: [{ headers: { 'x-fault': { exact: 'http' } } }], fault: { abort: { httpStatus: 503 } }, route: toV1 },
        { route: toV1 },
      ]),
    ]);
    await eventually(async () => ((await client.status({ 'x-fault': 'abort' })).code === grpc.status.PERMISSION_DENIED ? true : undefined), 10_000, 'abort fault');
    const before = backend(0).calls;
    for (let i = 0; i < 5; i++) assert.equal((await client.status({ 'x-fault': 'abort' })).code, grpc.status.PERMISSION_DENIED);
    // An aborted call never reaches the backend.
    assert.equal(backend(0).calls, before);
    // HTTP 503 reads as UNAVAILABLE to a gRPC client (and the default retries cannot get past a fault on every attempt).
    assert.equal((await client.status({ 'x-fault': 'http' })).code, grpc.status.UNAVAILABLE);
    assert.equal((await client.status()).code, grpc.status.OK);
  });

  it('delays the calls a fault targets: a short deadline expires, a long one succeeds late', async () => {
    await dir.write('virtual-services.yaml', [
      reviewsRule([
        { match: [{ headers: { 'x-fault': { exact: 'delay' } } }], fault: { delay: { fixedDelay: '0.8s', percentage: { value: 100 } } }, route: toV1 },
        { route: toV1 },
      ]),
    ]);
    await eventually(async () => ((await client.status({ 'x-fault': 'delay' }, 3000)).ms >= 750 ? true : undefined), 10_000, 'delay fault');
    assert.equal((await client.status({ 'x-fault': 'delay' }, 300)).code, grpc.status.DEADLINE_EXCEEDED);
    const slow = await client.status({ 'x-fault': 'delay' }, 3000);
    assert.equal(slow.code, grpc.status.OK);
    assert.ok(slow.ms >= 750, `took ${slow.ms} ms`);
    assert.ok((await client.status({}, 3000)).ms < 500, 'calls without the header are not delayed');
  });

  it('retries a backend that fails the first attempt, and does not when attempts is 0', async () => {
    backend(0).behaviour.failFirstAttempt = true;
    try {
      await dir.write('virtual-services.yaml', [reviewsRule([{ route: toV1, retries: { attempts: 0 } }])]);
      await eventually(async () => ((await client.status()).code === grpc.status.UNAVAILABLE ? true : undefined), 10_000, 'retries off');
      await dir.write('virtual-services.yaml', [reviewsRule([{ route: toV1, retries: { attempts: 3, retryOn: 'unavailable,cancelled' } }])]);
      await eventually(async () => ((await client.status()).code === grpc.status.OK ? true : undefined), 10_000, 'retries on');
      const before = backend(0).calls;
      for (let i = 0; i < 5; i++) assert.equal((await client.status()).code, grpc.status.OK);
      // Each call took two attempts: the failed first one and the retry.
      assert.equal(backend(0).calls - before, 10);
      // Envoy's "connect-failure" means UNAVAILABLE to gRPC, so Istio-style retryOn also retries.
      await dir.write('virtual-services.yaml', [reviewsRule([{ route: toV1, retries: { attempts: 2, retryOn: '5xx,connect-failure' } }])]);
      await eventually(async () => ((await client.status()).code === grpc.status.OK ? true : undefined), 10_000, 'istio-style retryOn');
    } finally {
      backend(0).behaviour.failFirstAttempt = false;
    }
  });

  it('ends calls that outlast the route timeout with DEADLINE_EXCEEDED', async () => {
    backend(0).behaviour.delayMs = 1000;
    try {
      await dir.write('virtual-services.yaml', [reviewsRule([{ route: toV1, timeout: '0.3s' }])]);
      const result = await eventually(async () => {
        const r = await client.status({}, 5000);
        return r.code === grpc.status.DEADLINE_EXCEEDED ? r : undefined;
      }, 10_000, 'route timeout');
      assert.ok(result.ms < 900, `the route's 0.3 s, not the client's 5 s deadline, ended the call (${result.ms} ms)`);
    } finally {
      backend(0).behaviour.delayMs = 0;
    }
  });

  it('keeps each user on one backend when the DestinationRule hashes by a header', async () => {
    await dir.write('destination-rules.yaml', [reviewsPolicy({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } })]);
    await dir.write('virtual-services.yaml', [reviewsRule([{ route: [{ destination: { host: 'reviews' } }] }])]);
    const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
    const sticky = async (): Promise<Map<string, string> | undefined> => {
      const chosen = new Map<string, string>();
      for (const user of users) {
        const counts = await client.tally(6, { 'x-user': user });
        if (counts.size !== 1) return undefined;
        chosen.set(user, [...counts.keys()][0] ?? '');
      }
      // Until the new route is served every call goes to v1, which would look sticky too.
      return new Set(chosen.values()).size >= 2 ? chosen : undefined;
    };
    // Two looks agree: each user keeps the backend it got (while connections warm up the ring may still move).
    const chosen = await eventually(async () => {
      const first = await sticky();
      const second = first && (await sticky());
      return first && second && JSON.stringify([...first]) === JSON.stringify([...second]) ? first : undefined;
    }, 20_000, 'every user pinned to one backend, users spread over several');
    assert.equal(chosen.size, users.length);
    // Round robin again: the same user now lands on every backend.
    await dir.write('destination-rules.yaml', [subsets]);
    await eventually(async () => ((await client.tally(9, { 'x-user': 'user-0' })).size === 3 ? true : undefined), 10_000, 'round robin again');
  });

  it('ejects a backend that keeps failing, so calls stop reaching it', async () => {
    // grpc-js 1.14 applies outlier detection when it first watches a cluster, not to a cluster it
    // already balances over: route to v1 alone first so the whole-service cluster is watched anew.
    await dir.write('virtual-services.yaml', [reviewsRule([{ route: toV1 }])]);
    await eventually(async () => ((await client.tally(6)).size === 1 ? true : undefined), 10_000, 'v1 only');
    backend(2).behaviour.failing = true;
    try {
      await dir.write('virtual-services.yaml', [reviewsRule([{ route: [{ destination: { host: 'reviews' } }] }])]);
      await dir.write('destination-rules.yaml', [
        reviewsPolicy({ outlierDetection: { consecutive5xxErrors: 3, interval: '0.5s', baseEjectionTime: '30s', maxEjectionPercent: 50 } }),
      ]);
      // The whole service is served first: v1 and v2 both answer (v3 fails, or is retried elsewhere).
      await eventually(async () => {
        const names = new Set((await Promise.all(Array.from({ length: 12 }, () => client.status()))).map((r) => r.name));
        return names.has('reviews-v1') && names.has('reviews-v2') ? true : undefined;
      }, 10_000, 'the whole service routed');
      const ejected = await eventually(async () => {
        const before = backend(2).calls;
        for (let i = 0; i < 15; i++) await client.status();
        return backend(2).calls === before ? true : undefined;
      }, 15_000, 'the failing backend ejected');
      assert.ok(ejected);
      const results = await Promise.all(Array.from({ length: 20 }, () => client.status()));
      assert.deepEqual(results.map((r) => r.code), Array<number>(20).fill(grpc.status.OK));
      assert.deepEqual(new Set(results.map((r) => r.name)), new Set(['reviews-v1', 'reviews-v2']));
    } finally {
      backend(2).behaviour.failing = false;
      await dir.write('destination-rules.yaml', [subsets]);
    }
  });

  it('splits traffic 50/50 between two subsets', async () => {
    await dir.write('virtual-services.yaml', [
      reviewsRule([{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 50 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 50 }] }]),
    ]);
    await eventually(async () => ((await client.tally(20)).size === 2 ? true : undefined), 10_000, 'split in effect');
    const counts = await client.tally(200);
    const v1 = counts.get('reviews-v1') ?? 0;
    assert.equal(v1 + (counts.get('reviews-v2') ?? 0), 200);
    // Binomial(200, 0.5): sd ≈ 7; 4 sd either side.
    assert.ok(v1 >= 72 && v1 <= 128, `v1 got ${v1}/200`);
  });

  it('serves LEAST_REQUEST to gRPC as round robin, and says so in /debug/configz', async () => {
    await dir.write('virtual-services.yaml', [reviewsRule([{ route: [{ destination: { host: 'reviews' } }] }])]);
    await dir.write('destination-rules.yaml', [reviewsPolicy({ loadBalancer: { simple: 'LEAST_REQUEST' } })]);
    const warnings = await eventually(async () => {
      const body = (await (await meshpilot.admin('/debug/configz')).json()) as {
        rules: { kind: string; name: string; applied: boolean; warnings: { code: string; path: string; message: string }[] }[];
      };
      const dr = body.rules.find((r) => r.kind === 'DestinationRule' && r.name === 'reviews');
      return dr?.warnings.some((w) => w.code === 'MP_GRPC_DEGRADED') ? dr.warnings : undefined;
    }, 10_000, 'a degradation warning');
    const note = warnings.find((w) => w.code === 'MP_GRPC_DEGRADED');
    assert.equal(note?.path, 'spec.trafficPolicy.loadBalancer.simple');
    assert.match(note.message, /LEAST_REQUEST is served to proxyless gRPC as ROUND_ROBIN/);
    // The client accepted it: calls still succeed and reach every backend in turn.
    await eventually(async () => ((await client.tally(6)).size === 3 ? true : undefined), 10_000, 'round robin over the whole service');
    const syncz = (await (await meshpilot.admin('/debug/syncz')).json()) as { proxies: { proxy: string; types: { cds: { status: string } } }[] };
    assert.equal(syncz.proxies.find((p) => p.proxy === PRODUCTPAGE)?.types.cds.status, 'SYNCED');
  });
});
