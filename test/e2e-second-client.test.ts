// Any standards-following xDS client sees the same routing: gRPC C-core (Debian's python3-grpcio),
// an implementation independent of grpc-js-xds, pointed at the same Kubernetes-shaped directory.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startBackends, type Backend } from './support/backends.ts';
import { GrpcXdsCaller, xdsBootstrap } from './support/grpc-xds-client.ts';
import { MeshDir, rule } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';
import { PRODUCTPAGE, TARGET, reviewsRoutes, subsets, workloads } from './support/reviews-mesh.ts';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const CLIENT = new URL('./interop/xds_client.py', import.meta.url).pathname;

async function grpcCoreAvailable(): Promise<string | undefined> {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  try {
    await run(PYTHON, ['-c', 'import grpc']);
    return undefined;
  } catch {
    return `${PYTHON} cannot import grpc: apt-get install python3-grpcio (.ci/run does)`;
  }
}

const missing = await grpcCoreAvailable();
// CI installs the client, so there a missing client is a failure, not a skip.
if (missing && process.env['CI']) throw new Error(`second xDS client unavailable in CI: ${missing}`);

interface Tally {
  counts: Record<string, number>;
  errors: Record<string, number>;
}

async function coreTally(xdsPort: number, nodeId: string, count: number, headers: string[] = []): Promise<Tally> {
  const args = [CLIENT, '--target', TARGET, '--count', String(count), ...headers.flatMap((h) => ['--header', h])];
  const { stdout } = await run(PYTHON, args, {
    env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: xdsBootstrap({ xdsPort, nodeId, metadata: { NAMESPACE: 'default' } }) },
    timeout: 60_000,
  });
  const line = stdout.trim().split('\n').pop() ?? '{}';
  return JSON.parse(line) as Tally;
}

describe('gRPC C-core (python3-grpcio) through meshpilot', { skip: missing }, () => {
  let dir: MeshDir;
  let backends: Backend[];
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;

  before(async () => {
    backends = await startBackends(['reviews-v1', 'reviews-v2', 'reviews-v3']);
    dir = await MeshDir.create();
    await dir.write('workloads.yaml', workloads(backends));
    await dir.write('rules.yaml', [subsets, reviewsRoutes({ v1: 80, v3: 20 })]);
    meshpilot = await startMeshpilot(dir.path);
  });

  after(async () => {
    await meshpilot.close();
    await Promise.all(backends.map((b) => b.close()));
    await dir.remove();
  });

  it('routes jason to v2 exactly as grpc-js-xds does', async () => {
    const core = await coreTally(meshpilot.xdsPort, PRODUCTPAGE, 20, ['end-user:jason']);
    assert.deepEqual(core, { counts: { 'reviews-v2': 20 }, errors: {} });
    const js = new GrpcXdsCaller(TARGET, { xdsPort: meshpilot.xdsPort, nodeId: `${PRODUCTPAGE}-js` });
    try {
      assert.deepEqual(Object.fromEntries(await js.tally(20, { 'end-user': 'jason' })), core.counts);
    } finally {
      js.close();
    }
  });

  it('splits everyone else 80/20 between v1 and v3', async () => {
    const { counts, errors } = await coreTally(meshpilot.xdsPort, 'sidecar~127.0.0.21~reviews-client.default~default.svc.cluster.local', 400);
    assert.deepEqual(errors, {});
    assert.equal(counts['reviews-v2'], undefined);
    const v1 = counts['reviews-v1'] ?? 0;
    assert.equal(v1 + (counts['reviews-v3'] ?? 0), 400);
    assert.ok(v1 >= 288 && v1 <= 352, `v1 got ${v1}/400, expected about 320`);
  });
});

describe('gRPC C-core accepts what meshpilot sends for Istio traffic policies', { skip: missing }, () => {
  let dir: MeshDir;
  let backends: Backend[];
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;
  const nodeId = 'sidecar~127.0.0.23~policy-client.default~default.svc.cluster.local';

  before(async () => {
    backends = await startBackends(['reviews-v1', 'reviews-v2', 'reviews-v3']);
    dir = await MeshDir.create();
    await dir.write('workloads.yaml', workloads(backends));
    // No consistentHash here: python3-grpcio 1.51.1 (Debian) crashes on any RING_HASH cluster.
    const policy = {
      loadBalancer: { simple: 'LEAST_REQUEST' },
      connectionPool: { tcp: { maxConnections: 10 }, http: { http2MaxRequests: 100 } },
      outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s' },
    };
    const reviews = {
      hosts: ['reviews'],
      http: [
        { match: [{ headers: { 'x-fault': { exact: 'abort' } } }], fault: { abort: { grpcStatus: 'PERMISSION_DENIED', percentage: { value: 100 } } }, route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
        { match: [{ headers: { 'x-fault': {} }, withoutHeaders: { 'x-debug': {} } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }], timeout: '2s' },
        { route: [{ destination: { host: 'reviews' } }], retries: { attempts: 2, retryOn: '5xx,connect-failure,unavailable' } },
      ],
    };
    await dir.write('rules.yaml', [
      rule('DestinationRule', 'reviews', 'default', { ...(subsets['spec'] as object), trafficPolicy: policy }),
      rule('VirtualService', 'reviews', 'default', reviews),
    ]);
    meshpilot = await startMeshpilot(dir.path);
  });

  after(async () => {
    await meshpilot.close();
    await Promise.all(backends.map((b) => b.close()));
    await dir.remove();
  });

  it('applies the fault and the presence match, accepts retries, timeout, pool and ejection, degrades LEAST_REQUEST, and NACKs nothing', async () => {
    const aborted = await coreTally(meshpilot.xdsPort, nodeId, 5, ['x-fault:abort']);
    assert.deepEqual(Object.keys(aborted.errors).map((e) => e.split(':')[0]), ['PERMISSION_DENIED']);
    assert.deepEqual(aborted.counts, {});
    assert.deepEqual(await coreTally(meshpilot.xdsPort, nodeId, 5, ['x-fault:other']), { counts: { 'reviews-v2': 5 }, errors: {} });
    // LEAST_REQUEST arrives as round robin over the whole service.
    const spread = await coreTally(meshpilot.xdsPort, nodeId, 9);
    // Round robin spreads the calls over every backend; the order subchannels become ready in may vary.
    assert.deepEqual(spread.errors, {});
    assert.deepEqual(Object.keys(spread.counts).sort(), ['reviews-v1', 'reviews-v2', 'reviews-v3']);
    assert.equal(Object.values(spread.counts).reduce((a, b) => a + b, 0), 9);
    const syncz = (await (await meshpilot.admin('/debug/syncz')).json()) as { proxies: { proxy: string; types: Record<string, { nack: unknown }> }[] };
    for (const proxy of syncz.proxies) for (const [type, state] of Object.entries(proxy.types)) assert.equal(state.nack, null, `${proxy.proxy} ${type}`);
  });
});

