// Proxies that stop reading cost only themselves: streams that stop granting HTTP/2 window keep
// none of the healthy proxies from a config change, /debug/syncz never calls a proxy SYNCED while
// a newer config waits for it, and the bytes waiting on such proxies stay under a cap (the
// streams stalled longest are reset, and their proxies reconnect).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawAdsClient } from './support/ads-client.ts';
import { ADS_SOTW_PATH } from './support/ads-client.ts';
import { MeshDir, endpointSlice, eventually, service, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { FRAME, H2_ERROR, RawH2Client, errorCodeOf, grpcMessage } from './support/raw-h2.ts';
import { syncStatus } from '../src/xds/server/watch-state.ts';
import type { WatchState } from '../src/xds/server/watch-state.ts';
import { encodeDiscoveryRequestJson } from '../src/xds/server/messages.ts';
import { ENDPOINT_TYPE } from '../src/xds/type-urls.ts';

const KiB = 1024;
const SERVICES = 240;
const STALLED = 24;
const HEALTHY = 5;
const cluster = (i: number): string => `outbound|80||svc-${i}.shop.svc.cluster.local`;

/** 240 services of 24 endpoints each: a subscription to 120 of them is about 120 KiB of EDS, more than a stream window. */
function mesh(generation: number): K8sObject[] {
  const objects: K8sObject[] = [];
  for (let i = 0; i < SERVICES; i++) {
    objects.push(service(`svc-${i}`, 'shop', [{ name: 'http', port: 80, targetPort: 8080 }], `10.96.${Math.floor(i / 200)}.${(i % 200) + 1}`));
    const ips = Array.from({ length: 24 }, (_, k) => ({ name: `svc-${i}-${k}`, ip: `10.${100 + generation}.${i % 250}.${k + 1}` }));
    objects.push(endpointSlice(`svc-${i}`, 'shop', { name: 'http', port: 8080 }, ips));
  }
  return objects;
}

describe('proxies that stop reading', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  const stalled: RawH2Client[] = [];
  const healthy: RawAdsClient[] = [];

  before(async () => {
    dir = await MeshDir.create();
    await dir.write('mesh.yaml', mesh(0));
    // A small shared budget, so two dozen stalled streams are well over it.
    meshpilot = await startMeshpilot(dir.path, { xdsTotalHighWaterBytes: 512 * KiB, xdsStallMs: 300 });
  });
  after(async () => {
    for (const client of stalled) client.close();
    for (const client of healthy) client.close();
    await meshpilot.close();
    await dir.remove();
  });

  it('hold none of the healthy proxies back, and the bytes waiting on them stay under the cap', async () => {
    // Healthy proxies first: each in sync with its own 30 clusters.
    const healthyNames = (h: number): string[] => Array.from({ length: 30 }, (_, k) => cluster(h * 30 + k));
    for (let h = 0; h < HEALTHY; h++) {
      const client = new RawAdsClient(meshpilot.xdsPort, `sidecar~10.0.9.${h + 1}~healthy-${h}.shop~shop.svc.cluster.local`);
      const names = healthyNames(h);
      client.send({ typeUrl: ENDPOINT_TYPE, names });
      const first = await client.next((r) => r.type_url === ENDPOINT_TYPE);
      client.ack(first, names);
      healthy.push(client);
    }
    // Stalled proxies: each asks for its own 120 clusters and never grants the stream more window than HTTP/2's first 64 KiB.
    for (let s = 0; s < STALLED; s++) {
      const client = await RawH2Client.connect(meshpilot.xdsPort);
      client.openCall(1, ADS_SOTW_PATH);
      const names = Array.from({ length: 120 }, (_, k) => cluster((s * 7 + k) % SERVICES));
      const request = { node: { id: `sidecar~10.0.8.${s + 1}~stalled-${s}.shop~shop.svc.cluster.local` }, type_url: ENDPOINT_TYPE, resource_names: names };
      client.data(1, grpcMessage(encodeDiscoveryRequestJson(request)));
      stalled.push(client);
    }
    await eventually(() => (meshpilot.adsServer.budget.parked > 0 ? true : undefined), 10_000, 'stalled streams parked');

    // A change to every service: the healthy proxies get it although the stalled ones never read theirs.
    await dir.write('mesh.yaml', mesh(1));
    for (const [h, client] of healthy.entries()) {
      const update = await eventually(
        () => client.responses.find((r) => r.type_url === ENDPOINT_TYPE && JSON.stringify(r.resources).includes('10.101.')),
        20_000,
        `healthy proxy ${h} to get the change`,
      );
      client.ack(update, healthyNames(h));
    }

    // Bytes waiting on proxies that stopped reading stay under the cap: the longest stalled were reset.
    const budget = meshpilot.adsServer.budget;
    await eventually(() => (budget.parked <= budget.parkedLimit ? true : undefined), 10_000, 'parked bytes under their cap');
    assert.ok(meshpilot.adsServer.slowStreamsReset > 0, 'some stalled streams were reset');
    const resets = stalled.filter((c) => c.frames.some((f) => f.type === FRAME.RST_STREAM && f.streamId === 1 && errorCodeOf(f) === H2_ERROR.CANCEL));
    assert.ok(resets.length > 0 && resets.length < STALLED, `${resets.length} of ${STALLED} stalled streams reset, the rest parked`);
    const metrics = await (await meshpilot.admin('/metrics')).text();
    assert.match(metrics, /^meshpilot_xds_slow_streams_reset [1-9]/m);
    assert.match(metrics, /^meshpilot_xds_stalled_streams [1-9]/m);

    // /debug/syncz: each healthy proxy SYNCED at the new version; no stalled one ever SYNCED.
    type Syncz = { proxies: { proxy: string | null; types: { eds?: { status: string } } }[] };
    const syncz = async (): Promise<Syncz['proxies']> => ((await (await meshpilot.admin('/debug/syncz')).json()) as Syncz).proxies;
    await eventually(async () => {
      const rows = await syncz();
      return healthy.every((_, h) => rows.find((r) => r.proxy?.includes(`healthy-${h}.`))?.types.eds?.status === 'SYNCED') ? true : undefined;
    }, 10_000, 'every healthy proxy SYNCED');
    const stalledRows = (await syncz()).filter((r) => r.proxy?.includes('stalled-'));
    assert.ok(stalledRows.length > 0);
    for (const row of stalledRows) assert.notEqual(row.types.eds?.status, 'SYNCED', row.proxy ?? '');
  });
});

describe('sync status', () => {
  it('is STALE, never SYNCED, while a newer config waits to be sent to a proxy that ACKed the last one', () => {
    const sent = { version: 'v1', nonce: 'n1', at: new Date(), resources: [], pushSequence: 1, count: 1, removed: [] };
    const watch = { sent, acked: { version: 'v1', nonce: 'n1', at: new Date() } } as unknown as WatchState;
    assert.equal(syncStatus(watch), 'SYNCED');
    assert.equal(syncStatus({ ...watch, pending: 'all' } as unknown as WatchState), 'STALE');
    assert.equal(syncStatus({ ...watch, pending: 'all', nack: { version: 'v0', nonce: 'n1', at: new Date(), message: 'bad', code: 3 } } as unknown as WatchState), 'ERROR');
  });
});
