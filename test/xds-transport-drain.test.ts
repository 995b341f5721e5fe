// Shutdown and scale-out on the xDS port: GOAWAY goes out before streams are ended, a connection
// is sent GOAWAY at its maximum age so a real Envoy moves to the other replica, new streams are
// admitted at a bounded rate, and a stream that never asks for anything is not a proxy.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeDiscoveryRequestJson } from '../src/xds/server/messages.ts';
import { CLUSTER_TYPE } from '../src/xds/type-urls.ts';
import { ADS_SOTW_PATH } from './support/ads-client.ts';
import { adsBootstrap, requireEnvoy, startEnvoy } from './support/envoy.ts';
import { MeshDir, eventually, service, toYaml } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { parsePrometheusText } from './support/prom-text.ts';
import { FLAG, FRAME, H2Call, H2_ERROR, RawH2Client, errorCodeOf, grpcMessage } from './support/raw-h2.ts';

const NODE = 'sidecar~10.0.0.9~x.default~default.svc.cluster.local';
const REVIEWS = service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.10');

async function meshWithReviews(): Promise<MeshDir> {
  const dir = await MeshDir.create();
  await dir.write('mesh.yaml', toYaml([REVIEWS]));
  return dir;
}

describe('shutdown', () => {
  it('sends GOAWAY before ending streams with OK, and serves no stream opened after it', async (t) => {
    const dir = await meshWithReviews();
    const meshpilot = await startMeshpilot(dir.path);
    const client = await RawH2Client.connect(meshpilot.xdsPort);
    t.after(async () => {
      client.close();
      await dir.remove();
    });
    client.openCall(1, ADS_SOTW_PATH);
    client.data(1, grpcMessage(encodeDiscoveryRequestJson({ node: { id: NODE }, type_url: CLUSTER_TYPE })));
    await client.waitFor((f) => f.type === FRAME.DATA && f.streamId === 1);
    const closing = meshpilot.close();
    const goaway = await client.waitFor((f) => f.type === FRAME.GOAWAY);
    assert.equal(errorCodeOf(goaway), H2_ERROR.NO_ERROR);
    const trailers = await client.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0);
    assert.ok(client.frames.indexOf(goaway) < client.frames.indexOf(trailers), `GOAWAY first: ${client.describe()}`);
    // A stream opened after GOAWAY is never answered with a response.
    client.openCall(3, ADS_SOTW_PATH);
    client.data(3, grpcMessage(encodeDiscoveryRequestJson({ node: { id: `${NODE}-late` }, type_url: CLUSTER_TYPE })));
    await closing;
    await eventually(() => (client.closed ? true : undefined));
    assert.ok(!client.frames.some((f) => f.streamId === 3 && (f.type === FRAME.HEADERS || f.type === FRAME.DATA)), `stream 3 not served: ${client.describe()}`);
  });
});

describe('scale-out', () => {
  it('moves a real Envoy between two replicas on one config dir as each connection reaches its maximum age', async (t) => {
    if (!(await requireEnvoy(t))) return;
    const dir = await meshWithReviews();
    const replicas = [await startMeshpilot(dir.path, { xdsMaxConnectionAgeMs: 1500 }), await startMeshpilot(dir.path, { xdsMaxConnectionAgeMs: 1500 })];
    const bootstrap = adsBootstrap({ nodeId: NODE, xdsHost: '127.0.0.1', xdsPort: replicas[0]?.xdsPort ?? 0 });
    // Both replicas behind the one xDS cluster, as behind a Kubernetes Service.
    const cluster = (bootstrap['static_resources'] as { clusters: Record<string, unknown>[] }).clusters[0] as Record<string, unknown>;
    cluster['load_assignment'] = {
      cluster_name: cluster['name'],
      endpoints: [{ lb_endpoints: replicas.map((r) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: r.xdsPort } } } })) }],
    };
    const envoy = await startEnvoy({ bootstrap });
    t.after(async () => {
      await envoy.stop();
      for (const r of replicas) await r.close();
      await dir.remove();
    });
    // Each replica, in turn, holds the Envoy with its clusters ACKed.
    const served = new Set<TestMeshpilot>();
    await eventually(() => {
      for (const r of replicas) if (r.adsServer.connections().some((c) => c.proxy?.id === NODE && c.watches.get(CLUSTER_TYPE)?.acked)) served.add(r);
      return served.size === 2 ? true : undefined;
    }, 30_000, 'the Envoy to be served by both replicas');
    assert.ok(replicas.some((r) => r.adsServer.transportStats().maxAgeGoaways > 0), 'a connection reached its maximum age');
    assert.deepEqual(await envoy.rejectedUpdates(), {});
  });

  it('admits new streams at the configured rate and answers the rest UNAVAILABLE', async (t) => {
    const dir = await meshWithReviews();
    const meshpilot = await startMeshpilot(dir.path, { xdsStreamsPerSecond: 0.5, xdsStreamBurst: 2 });
    const calls = [1, 2, 3].map(() => new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH));
    t.after(async () => {
      for (const c of calls) c.close();
      await meshpilot.close();
      await dir.remove();
    });
    const headers = await Promise.all(calls.map((c) => c.headers));
    const refused = headers.filter((h) => h['grpc-status'] === '14');
    assert.equal(refused.length, 1, 'the burst of two is served, the third waits for a token');
    assert.match(decodeURIComponent(String(refused[0]?.['grpc-message'])), /retry with backoff/);
    const metrics = parsePrometheusText(await (await meshpilot.admin('/metrics')).text());
    assert.equal(metrics.value('meshpilot_xds_refused_streams', { reason: 'rate' }), 1);
  });

  it('does not count a stream that sends nothing as a proxy, and closes it after the first-request timeout', async (t) => {
    const dir = await meshWithReviews();
    const meshpilot = await startMeshpilot(dir.path, { xdsFirstRequestTimeoutMs: 500 });
    const silent = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH);
    const talking = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH);
    t.after(async () => {
      silent.close();
      talking.close();
      await meshpilot.close();
      await dir.remove();
    });
    await Promise.all([silent.headers, talking.write(grpcMessage(encodeDiscoveryRequestJson({ node: { id: NODE }, type_url: CLUSTER_TYPE })))]);
    await eventually(() => (talking.received.length > 0 ? true : undefined));
    const metrics = parsePrometheusText(await (await meshpilot.admin('/metrics')).text());
    assert.equal(metrics.value('pilot_xds'), 1, 'only the stream that asked is a proxy');
    const syncz = (await (await meshpilot.admin('/debug/syncz')).json()) as { proxies: { proxy: string | null }[] };
    assert.deepEqual(syncz.proxies.map((p) => p.proxy), [NODE]);
    const status = await silent.status;
    assert.equal(status.code, 14);
    assert.match(status.message, /no DiscoveryRequest within 0.5 s/);
    assert.equal(await silent.closed, H2_ERROR.NO_ERROR);
  });
});
