// The interop table: one meshpilot, one set of real backends, and real proxyless gRPC xDS
// clients we did not write (grpc-js-xds; gRPC C-core from PyPI's grpcio, current and 1.51.3;
// grpc-go), each calling through the same Istio rules. Every row is proven on real calls for every client at once, and
// each cell goes to test/interop/last-run/e2e-interop.json, and from there to the README's table.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBackend, startBackends, type Backend } from './support/backends.ts';
import { OLD_GRPCIO_DIR, buildGrpcGo, errorCode, grpcJsXdsVersion, grpcCore, grpcGo, grpcGoVersion, grpcJs, grpcioVersion, type ClientRun, type RunOptions, type XdsCaller } from './support/interop-clients.ts';
import { recordInterop, recordInteropVersion, type InteropRule } from './support/interop-results.ts';
import { MeshDir, endpointSlice, eventually, pod, rule, service } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { NS, TARGET, reviewsRoutes, subsets, workloads } from './support/reviews-mesh.ts';

const API_TARGET = 'xds:///api.backend.svc.cluster.local:9080';
// Waits are generous: every check opens fresh channels, four clients at once, on a shared machine.
const SETTLE_MS = 20_000;

const [core, oldCore, go] = await Promise.all([grpcioVersion(), grpcioVersion(OLD_GRPCIO_DIR), buildGrpcGo()]);
const missing = [core.missing, oldCore.version?.startsWith('1.51.') ? undefined : `no grpcio 1.51 in ${OLD_GRPCIO_DIR}`, go.missing].filter(Boolean).join('; ') || undefined;
// CI installs grpcio (current and 1.51) and Go, so there a missing client is a failure, not a skip.
if (missing && process.env['CI']) throw new Error(`interop clients unavailable in CI: ${missing}`);
const CLIENTS: XdsCaller[] = go.binary ? [grpcJs, grpcCore(), grpcCore(OLD_GRPCIO_DIR), grpcGo(go.binary)] : [];
recordInteropVersion('grpc-js', grpcJsXdsVersion());
recordInteropVersion('grpc-core', `grpcio ${core.version ?? '?'}`);
recordInteropVersion('grpc-core-1.51', `grpcio ${oldCore.version ?? '?'}`);
recordInteropVersion('grpc-go', grpcGoVersion());

/** What a check returns when a client showed a documented degradation (nothing when it behaved as Istio specifies). */
interface Degraded {
  readonly degraded: string;
}

/** Each client's own node (pod IP 127.0.0.3x), so /debug/syncz tells them apart; `x-caller` lets backends count per client. */
function ownNode(caller: XdsCaller, namespace = NS): Omit<RunOptions, 'target' | 'count'> & { nodeId: string } {
  const ip = `127.0.0.${31 + CLIENTS.indexOf(caller)}`;
  return {
    xdsPort: 0,
    // A pod name has no dots: the first dot of `pod.namespace` ends it.
    nodeId: `sidecar~${ip}~${caller.client.replaceAll('.', '-')}-0.${namespace}~${namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: namespace },
    headers: { 'x-caller': caller.client },
  };
}

describe('one routing table, four real gRPC xDS clients', { skip: missing }, () => {
  let dir: MeshDir;
  let backends: Backend[];
  let api: Backend;
  let meshpilot: TestMeshpilot;
  const backend = (i: number): Backend => backends[i] ?? assert.fail(`no backend ${i}`);

  /** One run of `caller` against the reviews service (or `target`), as its own proxy. */
  function call(caller: XdsCaller, options: Partial<RunOptions> & { count: number }): Promise<ClientRun> {
    const own = ownNode(caller, options.metadata?.['NAMESPACE']);
    return caller.run({ target: TARGET, ...own, ...options, xdsPort: meshpilot.xdsPort, headers: { ...own.headers, ...options.headers } });
  }

  /**
   * Proves `rule` on every client at once: after each step's change to the mesh, every client
   * still standing runs the step's check. Records each client's cell, then fails if any did.
   */
  async function prove(rule: InteropRule, steps: { change?: () => Promise<void>; check: (caller: XdsCaller) => Promise<Degraded | undefined> | Promise<void> }[]): Promise<void> {
    const failures = new Map<XdsCaller, unknown>();
    const degraded = new Map<XdsCaller, string>();
    for (const step of steps) {
      await step.change?.();
      await Promise.all(
        CLIENTS.filter((c) => !failures.has(c)).map(async (caller) => {
          try {
            const outcome = await step.check(caller);
            if (outcome) degraded.set(caller, outcome.degraded);
          } catch (error) {
            failures.set(caller, error);
          }
        }),
      );
    }
    for (const caller of CLIENTS) {
      const failure = failures.get(caller);
      const note = degraded.get(caller);
      if (failure) recordInterop(rule, caller.client, 'fail', failure instanceof Error ? (failure.message.split('\n')[0] ?? 'failed') : 'failed');
      else if (note) recordInterop(rule, caller.client, 'degraded', note);
      else recordInterop(rule, caller.client, 'pass');
    }
    if (failures.size > 0) {
      const messages = [...failures].map(([c, e]) => `${c.client}: ${e instanceof Error ? e.message : 'failed'}`);
      throw new AggregateError([...failures.values()], `${rule} failed for ${messages.join(' | ')}`);
    }
  }

  const writeRoutes = (http: unknown[]) => dir.write('virtual-services.yaml', [rule('VirtualService', 'reviews', NS, { hosts: ['reviews'], http })]);
  const writePolicy = (trafficPolicy?: unknown) =>
    dir.write('destination-rules.yaml', [rule('DestinationRule', 'reviews', NS, { ...(subsets['spec'] as object), ...(trafficPolicy ? { trafficPolicy } : {}) })]);
  const toV1 = [{ destination: { host: 'reviews', subset: 'v1' } }];
  const toAll = [{ destination: { host: 'reviews' } }];

  /** The MP_GRPC_DEGRADED warning /debug/configz shows for the reviews DestinationRule, at `path`. */
  async function degradation(path: string): Promise<string> {
    return eventually(async () => {
      const body = (await (await meshpilot.admin('/debug/configz')).json()) as { rules: { kind: string; name: string; warnings: { code: string; path: string; message: string }[] }[] };
      const dr = body.rules.find((r) => r.kind === 'DestinationRule' && r.name === 'reviews');
      return dr?.warnings.find((w) => w.code === 'MP_GRPC_DEGRADED' && w.path === path)?.message;
    }, SETTLE_MS, `a degradation warning at ${path}`);
  }

  before(async () => {
    backends = await startBackends(['reviews-v1', 'reviews-v2', 'reviews-v3']);
    api = await startBackend('api-0', '127.0.0.5', backend(0).port);
    dir = await MeshDir.create();
    await dir.write('workloads.yaml', workloads(backends));
    await dir.write('backend.yaml', [
      service('api', 'backend', [{ name: 'grpc', port: 9080, targetPort: api.port }], '10.96.2.1'),
      pod('api-0', 'backend', api.host, { app: 'api' }),
      endpointSlice('api', 'backend', { name: 'grpc', port: api.port }, [{ name: 'api-0', ip: api.host }]),
    ]);
    await dir.write('sidecar.yaml', [rule('Sidecar', 'default', 'frontend', { egress: [{ hosts: ['./*'] }] })]);
    await writePolicy();
    const initial = reviewsRoutes({ v1: 80, v3: 20 });
    const spec = initial['spec'] as { http: unknown[] };
    // x-debug, whatever its value, also goes to v2: a presence match.
    spec.http.splice(1, 0, { match: [{ headers: { 'x-debug': {} } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] });
    await dir.write('virtual-services.yaml', [initial]);
    meshpilot = await startMeshpilot(dir.path);
  });

  after(async () => {
    await meshpilot.close();
    await Promise.all([...backends, api].map((b) => b.close()));
    await dir.remove();
  });

  it('sends user jason to v2 by the end-user header', () =>
    prove('header-match', [
      {
        check: async (c) => {
          assert.deepEqual((await call(c, { count: 20, headers: { 'end-user': 'jason' } })).counts, { 'reviews-v2': 20 });
        },
      },
    ]));

  it('sends any call carrying x-debug to v2, whatever its value', () =>
    prove('header-present', [
      {
        check: async (c) => {
          assert.deepEqual((await call(c, { count: 10, headers: { 'x-debug': 'anything' } })).counts, { 'reviews-v2': 10 });
        },
      },
    ]));

  /** v1's share of 400 calls to everyone else, checked against `v1Percent` within 4 standard deviations. */
  async function assertSplit(c: XdsCaller, v1Percent: number): Promise<void> {
    const { counts, errors } = await call(c, { count: 400 });
    assert.deepEqual(errors, {});
    assert.equal(counts['reviews-v2'], undefined, 'no one but jason reaches v2');
    const v1 = counts['reviews-v1'] ?? 0;
    assert.equal(v1 + (counts['reviews-v3'] ?? 0), 400);
    const expected = 4 * v1Percent;
    const sd = Math.sqrt(400 * (v1Percent / 100) * (1 - v1Percent / 100));
    assert.ok(Math.abs(v1 - expected) <= 4 * sd, `v1 got ${v1}/400, expected about ${expected}`);
  }

  it('splits everyone else 80/20 between v1 and v3', () => prove('weighted-split', [{ check: (c) => assertSplit(c, 80) }]));

  it('applies an edited split live, without a restart', () =>
    prove('split-change-live', [
      {
        change: () => dir.write('virtual-services.yaml', [reviewsRoutes({ v1: 20, v3: 80 })]),
        check: async (c) => {
          // The new weights are served once a run of 40 calls sends most of them to v3.
          await eventually(async () => (((await call(c, { count: 40 })).counts['reviews-v3'] ?? 0) > 24 ? true : undefined), SETTLE_MS, 'the new split');
          await assertSplit(c, 20);
        },
      },
    ]));

  it('aborts the calls a fault targets with the gRPC status it names, before they reach a backend', () =>
    prove('fault-abort', [
      {
        change: () =>
          writeRoutes([
            { match: [{ headers: { 'x-fault': { exact: 'abort' } } }], fault: { abort: { grpcStatus: 'PERMISSION_DENIED', percentage: { value: 100 } } }, route: toV1 },
            { route: toV1 },
          ]),
        check: async (c) => {
          const abort = { count: 5, headers: { 'x-fault': 'abort' } };
          const aborted = (r: ClientRun): boolean => r.calls.length === 5 && r.calls.every((x) => errorCode(x) === 'PERMISSION_DENIED');
          await eventually(async () => aborted(await call(c, abort)) || undefined, SETTLE_MS, 'the abort fault');
          const reached = backend(0).callsFrom(c.client);
          assert.ok(aborted(await call(c, abort)));
          assert.equal(backend(0).callsFrom(c.client), reached, 'an aborted call never reaches the backend');
          assert.deepEqual((await call(c, { count: 3 })).counts, { 'reviews-v1': 3 });
        },
      },
    ]));

  it('delays the calls a fault targets: a short deadline expires, a long one succeeds late', () =>
    prove('fault-delay', [
      {
        change: () =>
          writeRoutes([{ match: [{ headers: { 'x-fault': { exact: 'delay' } } }], fault: { delay: { fixedDelay: '0.8s', percentage: { value: 100 } } }, route: toV1 }, { route: toV1 }]),
        check: async (c) => {
          const delay = { headers: { 'x-fault': 'delay' }, count: 1 };
          await eventually(async () => ((await call(c, { ...delay, timeoutMs: 3000 })).calls[0]?.ms ?? 0) >= 750 || undefined, SETTLE_MS, 'the delay fault');
          assert.equal(errorCode((await call(c, { ...delay, timeoutMs: 300 })).calls[0] ?? { ms: 0 }), 'DEADLINE_EXCEEDED');
          const slow = (await call(c, { ...delay, timeoutMs: 3000 })).calls[0];
          assert.equal(slow?.backend, 'reviews-v1');
          assert.ok((slow.ms) >= 750, `took ${slow.ms} ms`);
          const fast = (await call(c, { count: 3, timeoutMs: 3000 })).calls;
          assert.ok(fast.every((x) => x.backend === 'reviews-v1' && x.ms < 500), `calls without the header are not delayed: ${JSON.stringify(fast)}`);
        },
      },
    ]));

  it('retries a backend that fails the first attempt, and does not when attempts is 0', async () => {
    backend(0).behaviour.failFirstAttempt = true;
    try {
      await prove('retries', [
        {
          change: () => writeRoutes([{ route: toV1, retries: { attempts: 0 } }]),
          check: async (c) => {
            await eventually(async () => (errorCode((await call(c, { count: 1 })).calls[0] ?? { ms: 0 }) === 'UNAVAILABLE' ? true : undefined), SETTLE_MS, 'no retries');
          },
        },
        {
          change: () => writeRoutes([{ route: toV1, retries: { attempts: 2, retryOn: '5xx,connect-failure' } }]),
          check: async (c) => {
            await eventually(async () => ((await call(c, { count: 1 })).counts['reviews-v1'] === 1 ? true : undefined), SETTLE_MS, 'retries');
            const before = backend(0).callsFrom(c.client);
            assert.deepEqual((await call(c, { count: 5 })).counts, { 'reviews-v1': 5 });
            // Each call took two attempts: the failed first one and the retry.
            assert.equal(backend(0).callsFrom(c.client) - before, 10);
          },
        },
      ]);
    } finally {
      backend(0).behaviour.failFirstAttempt = false;
    }
  });

  it('ends calls that outlast the route timeout with DEADLINE_EXCEEDED', async () => {
    backend(0).behaviour.delayMs = 1000;
    try {
      await prove('route-timeout', [
        {
          change: () => writeRoutes([{ route: toV1, timeout: '0.3s' }]),
          check: async (c) => {
            const ended = await eventually(async () => {
              const outcome = (await call(c, { count: 1, timeoutMs: 5000 })).calls[0];
              return outcome && errorCode(outcome) === 'DEADLINE_EXCEEDED' ? outcome : undefined;
            }, SETTLE_MS, 'the route timeout');
            assert.ok(ended.ms < 900, `the route's 0.3 s, not the client's 5 s deadline, ended the call (${ended.ms} ms)`);
          },
        },
      ]);
    } finally {
      backend(0).behaviour.delayMs = 0;
    }
  });

  it('keeps each user on one backend when the DestinationRule hashes by a header', () => {
    // Ten users, so round robin over three backends moves each user between them.
    const users = Array.from({ length: 10 }, (_, i) => `user-${i}`);
    /** The backend each user reached on every round after the first, when every user kept one and they spread over several. */
    const pinned = (run: ClientRun): Map<string, string> | undefined => {
      const chosen = new Map<string, Set<string>>();
      run.calls.slice(users.length).forEach((outcome, i) => {
        const user = users[i % users.length] ?? '';
        chosen.set(user, (chosen.get(user) ?? new Set()).add(outcome.backend ?? `error ${outcome.error ?? ''}`));
      });
      if ([...chosen.values()].some((s) => s.size !== 1)) return undefined;
      const each = new Map([...chosen].map(([user, s]) => [user, [...s][0] ?? '']));
      return new Set(each.values()).size >= 2 ? each : undefined;
    };
    return prove('consistent-hash', [
      {
        change: async () => {
          await writePolicy({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } });
          await writeRoutes([{ route: toAll }]);
        },
        check: async (c) => {
          // A ring hash channel stays IDLE until a call picks a backend, so do not wait for READY.
          const run = { count: users.length * 6, headerCycle: { key: 'x-user', values: users }, readyTimeoutMs: 0 };
          if (c.client === 'grpc-core-1.51') {
            // It would crash on a ring hash: meshpilot serves it round robin, so it keeps calling, unpinned.
            const running = call(c, { ...run, intervalMs: 20 });
            const own = ownNode(c).nodeId;
            await eventually(async () => {
              const body = (await (await meshpilot.admin('/debug/adsz')).json()) as { connections: { proxy: string | null; grpcLimits: string[] }[] };
              return body.connections.find((x) => x.proxy === own)?.grpcLimits.includes('ring-hash-crashes') || undefined;
            }, SETTLE_MS, `${own} in /debug/adsz with its limit`);
            const { errors, calls } = await running;
            assert.deepEqual(errors, {});
            const users0 = new Set(calls.filter((_, i) => i % users.length === 0).map((x) => x.backend));
            assert.ok(users0.size > 1, `user-0 moves between backends: ${[...users0].join(', ')}`);
            return { degraded: 'gRPC C-core before 1.52 crashes on a ring hash: meshpilot recognises it by its user agent and serves it ROUND_ROBIN' };
          }
          const first = await eventually(async () => pinned(await call(c, run)), SETTLE_MS, 'every user pinned to one backend, users spread over several');
          assert.deepEqual(pinned(await call(c, run)), first, 'a new channel pins each user to the same backend');
        },
      },
    ]);
  });

  it('ejects a backend that keeps failing, so calls stop reaching it', async () => {
    backend(2).behaviour.failing = true;
    try {
      await prove('outlier-ejection', [
        {
          change: async () => {
            await writeRoutes([{ route: toAll, retries: { attempts: 0 } }]);
            await writePolicy({ outlierDetection: { consecutive5xxErrors: 3, interval: '0.5s', baseEjectionTime: '30s', maxEjectionPercent: 50 } });
          },
          check: async (c) => {
            // 60 calls over about 1.5 s: v3 fails at first, then is ejected and the rest succeed.
            await eventually(async () => {
              const { calls } = await call(c, { count: 60, intervalMs: 25 });
              const failedEarly = calls.slice(0, 30).some((x) => x.error?.includes('reviews-v3 is failing'));
              const tail = calls.slice(-20);
              return failedEarly && tail.every((x) => x.backend === 'reviews-v1' || x.backend === 'reviews-v2') ? true : undefined;
            }, SETTLE_MS, 'the failing backend ejected within a run');
            return { degraded: await degradation('spec.trafficPolicy.outlierDetection') };
          },
        },
      ]);
    } finally {
      backend(2).behaviour.failing = false;
    }
  });

  it('serves LEAST_REQUEST to gRPC as round robin, and says so in /debug/configz', () =>
    prove('least-request', [
      {
        change: async () => {
          await writePolicy({ loadBalancer: { simple: 'LEAST_REQUEST' } });
          await writeRoutes([{ route: toAll }]);
        },
        check: async (c) => {
          const note = await degradation('spec.trafficPolicy.loadBalancer.simple');
          await eventually(async () => (Object.keys((await call(c, { count: 9 })).counts).length === 3 ? true : undefined), SETTLE_MS, 'round robin over every backend');
          return { degraded: note };
        },
      },
    ]));

  it('hides a namespace its Sidecar does not list, until the Sidecar lists it', () =>
    prove('sidecar-hides-namespace', [
      {
        check: async (c) => {
          const hidden = await call(c, { target: API_TARGET, count: 1, timeoutMs: 1500, readyTimeoutMs: 0, metadata: { NAMESPACE: 'frontend' } });
          assert.deepEqual(hidden.counts, {}, 'the hidden service is not reachable');
          assert.equal(api.callsFrom(c.client), 0);
        },
      },
      {
        change: () => dir.write('sidecar.yaml', [rule('Sidecar', 'default', 'frontend', { egress: [{ hosts: ['./*', 'backend/*'] }] })]),
        check: async (c) => {
          const reach = { target: API_TARGET, count: 1, timeoutMs: 1500, readyTimeoutMs: 0, metadata: { NAMESPACE: 'frontend' } };
          await eventually(async () => ((await call(c, reach)).counts['api-0'] === 1 ? true : undefined), 15_000, 'api once the Sidecar lists backend');
        },
      },
    ]));

  it('ACKs every resource of a rule set using all of the above', () =>
    prove('no-nack', [
      {
        change: async () => {
          await writePolicy({
            loadBalancer: { simple: 'LEAST_REQUEST' },
            connectionPool: { tcp: { maxConnections: 10 }, http: { http2MaxRequests: 100 } },
            outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s' },
          });
          await writeRoutes([
            { match: [{ headers: { 'x-fault': { exact: 'abort' } } }], fault: { abort: { grpcStatus: 'PERMISSION_DENIED', percentage: { value: 100 } } }, route: toV1 },
            { match: [{ headers: { 'x-fault': {} } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }], timeout: '2s' },
            { route: toAll, retries: { attempts: 2, retryOn: '5xx,connect-failure,unavailable' } },
          ]);
          // Served from then on: a call that lands on v2 by the old routes' split proves nothing.
          await eventually(() => {
            const status = meshpilot.pushController.current()?.ruleStatus;
            const routes = status?.get(`VirtualService/${NS}/reviews`)?.rule.spec as { http?: unknown[] } | undefined;
            const policy = status?.get(`DestinationRule/${NS}/reviews`)?.rule.spec as { trafficPolicy?: { loadBalancer?: { simple?: string } } } | undefined;
            return routes?.http?.length === 3 && policy?.trafficPolicy?.loadBalancer?.simple === 'LEAST_REQUEST' ? true : undefined;
          }, SETTLE_MS, 'the push holding the new routes and policy');
        },
        check: async (c) => {
          const own = ownNode(c).nodeId;
          await eventually(async () => ((await call(c, { count: 1, headers: { 'x-fault': 'other' } })).counts['reviews-v2'] === 1 ? true : undefined), SETTLE_MS, 'the new routes');
          // While the client is connected, /debug/syncz shows it SYNCED, with no NACK, on every type.
          const running = call(c, { count: 12, intervalMs: 300, timeoutMs: 5000, headers: { 'x-fault': 'other' } });
          await eventually(async () => {
            const body = (await (await meshpilot.admin('/debug/syncz')).json()) as { proxies: { proxy: string; types: Record<string, { status: string; nack: unknown }> }[] };
            const types = Object.values(body.proxies.find((p) => p.proxy === own)?.types ?? {});
            return types.length === 4 && types.every((t) => t.status === 'SYNCED' && t.nack === null) ? true : undefined;
          }, SETTLE_MS, `${own} SYNCED on CDS, EDS, LDS and RDS`);
          const { counts, errors } = await running;
          assert.deepEqual({ counts, errors }, { counts: { 'reviews-v2': 12 }, errors: {} });
        },
      },
    ]));
});
