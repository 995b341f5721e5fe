// End to end: real proxyless gRPC clients (@grpc/grpc-js-xds) call real gRPC backends through
// the routing meshpilot serves from a Kubernetes-shaped YAML directory.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawAdsClient } from './support/ads-client.ts';
import { startBackends, type Backend } from './support/backends.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { MeshDir, eventually } from './support/mesh-dir.ts';
import { PRODUCTPAGE, TARGET, reviewsRoutes, subsets, workloads } from './support/reviews-mesh.ts';
import { startMeshpilot } from './support/meshpilot.ts';
import { LISTENER_TYPE } from '../src/xds/type-urls.ts';

describe('proxyless gRPC clients routed by meshpilot', () => {
  let dir: MeshDir;
  let backends: Backend[];
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;
  let client: GrpcXdsCaller;

  before(async () => {
    backends = await startBackends(['reviews-v1', 'reviews-v2', 'reviews-v3']);
    dir = await MeshDir.create();
    await dir.write('workloads.yaml', workloads(backends));
    await dir.write('destination-rules.yaml', [subsets]);
    await dir.write('virtual-services.yaml', [reviewsRoutes({ v1: 80, v3: 20 })]);
    meshpilot = await startMeshpilot(dir.path);
    client = new GrpcXdsCaller(TARGET, { xdsPort: meshpilot.xdsPort, nodeId: PRODUCTPAGE, metadata: { GENERATOR: 'grpc' } });
  });

  after(async () => {
    client.close();
    await meshpilot.close();
    await Promise.all(backends.map((b) => b.close()));
    await dir.remove();
  });

  it('sends user jason to reviews v2 by the end-user header', async () => {
    const counts = await client.tally(20, { 'end-user': 'jason' });
    assert.deepEqual([...counts], [['reviews-v2', 20]]);
  });

  it('splits everyone else 80/20 between v1 and v3', async () => {
    const total = 400;
    const counts = await client.tally(total);
    const v1 = counts.get('reviews-v1') ?? 0;
    const v3 = counts.get('reviews-v3') ?? 0;
    assert.equal(counts.get('reviews-v2'), undefined, 'no one but jason reaches v2');
    assert.equal(v1 + v3, total);
    // Binomial(400, 0.8): sd = 8 calls; 4 sd either side.
    assert.ok(v1 >= 288 && v1 <= 352, `v1 got ${v1}/${total}, expected about 320`);
  });

  it('resolves a short name in the caller namespace, as Kubernetes DNS would', async () => {
    const short = new GrpcXdsCaller('xds:///reviews:9080', { xdsPort: meshpilot.xdsPort, nodeId: PRODUCTPAGE, metadata: { GENERATOR: 'grpc' } });
    try {
      assert.equal((await short.whoami({ 'end-user': 'jason' })).name, 'reviews-v2');
    } finally {
      short.close();
    }
  });

  it('serves a gRPC client that sends no GENERATOR metadata as proxyless gRPC (by its user agent)', async () => {
    const nodeId = 'sidecar~127.0.0.22~details-v1-0.default~default.svc.cluster.local';
    const plain = new GrpcXdsCaller(TARGET, { xdsPort: meshpilot.xdsPort, nodeId });
    try {
      assert.equal((await plain.whoami({ 'end-user': 'jason' })).name, 'reviews-v2');
      const body = (await (await meshpilot.admin('/debug/syncz')).json()) as { proxies: { proxy: string; generator: string }[] };
      assert.equal(body.proxies.find((p) => p.proxy === nodeId)?.generator, 'grpc');
    } finally {
      plain.close();
    }
  });

  it('shows the client SYNCED on every type in /debug/syncz and its listener in config_dump', async () => {
    const entry = await eventually(async () => {
      const body = (await (await meshpilot.admin('/debug/syncz')).json()) as { proxies: { proxy: string; types: Record<string, { status: string }> }[] };
      const mine = body.proxies.find((p) => p.proxy === PRODUCTPAGE);
      return mine && Object.values(mine.types).every((t) => t.status === 'SYNCED') ? mine : undefined;
    }, 5000, 'all types SYNCED');
    assert.deepEqual(Object.keys(entry.types), ['cds', 'eds', 'lds', 'rds']);
    const dump = (await (await meshpilot.admin(`/debug/config_dump?proxyID=${encodeURIComponent(PRODUCTPAGE)}`)).json()) as {
      configs: { '@type': string; dynamic_listeners?: { name: string }[] }[];
    };
    const listeners = dump.configs.find((c) => c['@type'].endsWith('ListenersConfigDump'));
    assert.ok(listeners?.dynamic_listeners?.some((l) => l.name === 'reviews.default.svc.cluster.local:9080'));
  });

  it('follows an edited VirtualService without a restart', async () => {
    await dir.write('virtual-services.yaml', [reviewsRoutes({ v1: 0, v3: 100 })]);
    await eventually(async () => {
      const counts = await client.tally(10);
      return counts.get('reviews-v3') === 10 ? true : undefined;
    }, 10_000, 'everyone routed to v3');
    const counts = await client.tally(30);
    assert.deepEqual([...counts], [['reviews-v3', 30]]);
  });

  it('keeps the last good routing when a file breaks, and reports the error in /debug/configz', async () => {
    const broken = reviewsRoutes({ v1: 0, v3: 0 });
    await dir.write('virtual-services.yaml', [broken]);
    await dir.write('typo.yaml', 'kind: Service\nmetadata: {name: oops\n');
    const configz = await eventually(async () => {
      const body = (await (await meshpilot.admin('/debug/configz')).json()) as {
        rejected: { object: string; source: { location: string }; keptLastGood: boolean; errors: { code: string; path: string; message: string }[] }[];
      };
      return body.rejected.length >= 2 ? body : undefined;
    }, 5000, 'two rejected objects');
    const vs = configz.rejected.find((r) => r.object === 'VirtualService default/reviews');
    assert.ok(vs, JSON.stringify(configz.rejected));
    assert.equal(vs.keptLastGood, true);
    assert.equal(vs.source.location, 'virtual-services.yaml');
    assert.ok(vs.errors.some((e) => e.code === 'MP_RULE_INVALID' && e.path.startsWith('spec.http[1].route') && /destination/.test(e.message)), JSON.stringify(vs.errors));
    const yamlError = configz.rejected.find((r) => r.source.location === 'typo.yaml');
    assert.ok(yamlError?.errors.some((e) => e.code === 'MP_YAML_PARSE'), JSON.stringify(yamlError));
    // Still the last good routing: everyone to v3.
    const counts = await client.tally(20);
    assert.deepEqual([...counts], [['reviews-v3', 20]]);
  });

  it('records a NACK as ERROR with its text in /debug/syncz and does not send the rejected config again', async () => {
    const nodeId = 'sidecar~127.0.0.30~ratings-v1-0.default~default.svc.cluster.local';
    const ads = new RawAdsClient(meshpilot.xdsPort, nodeId, { GENERATOR: 'grpc' });
    try {
      ads.send({ typeUrl: LISTENER_TYPE, names: ['reviews.default.svc.cluster.local:9080'] });
      const first = await ads.next((r) => r.type_url === LISTENER_TYPE);
      ads.send({ typeUrl: LISTENER_TYPE, names: ['reviews.default.svc.cluster.local:9080'], nonce: first.nonce, error: 'test: listener rejected' });
      const syncz = await eventually(async () => {
        const body = (await (await meshpilot.admin('/debug/syncz')).json()) as {
          proxies: { proxy: string; types: { lds: { status: string; nack: { message: string; version: string } | null } } }[];
        };
        const mine = body.proxies.find((p) => p.proxy === nodeId);
        return mine?.types.lds.status === 'ERROR' ? mine : undefined;
      }, 5000, 'lds ERROR');
      assert.equal(syncz.types.lds.nack?.message, 'test: listener rejected');
      assert.equal(syncz.types.lds.nack.version, first.version_info);
      // Envoy re-requests with the last good version after a NACK; nothing must come back.
      const count = ads.responses.length;
      ads.send({ typeUrl: LISTENER_TYPE, names: ['reviews.default.svc.cluster.local:9080'], nonce: first.nonce });
      assert.deepEqual(await ads.quiet(300, count), []);
    } finally {
      ads.close();
    }
  });
});
