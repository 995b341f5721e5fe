// The push pipeline as a proxy sees it: a change reaches only the resources it touches, a burst
// becomes one push, Delta and SotW proxies end up holding the same config, and a proxy that
// stops reading neither grows meshpilot's buffers nor slows the others.
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { after, before, describe, it, mock } from 'node:test';
import { SyntheticMesh, hostOf, meshShape } from '../bench/synthetic-mesh.ts';
import type { ConvergenceSample } from '../src/push/convergence.ts';
import { Debouncer } from '../src/push/debounce.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { MeshDir, eventually } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';
import { DeltaFollower, SotwFollower } from './support/xds-follower.ts';

const SILENCE_MS = 300;
const node = (n: number, ns = 'ns-0'): string => `sidecar~10.250.0.${n}~client-${n}.${ns}~${ns}.svc.cluster.local`;
const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('debouncing', () => {
  it('merges every change inside the quiet period into one push, and fires by the max wait under a steady stream', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    try {
      const fired: number[][] = [];
      const debouncer = new Debouncer<number>({ quietMs: 100, maxMs: 1000 }, (events) => fired.push(events));
      for (let i = 0; i < 5; i++) {
        debouncer.add(i);
        mock.timers.tick(50);
      }
      assert.equal(fired.length, 0, 'still inside the quiet period');
      mock.timers.tick(100);
      assert.deepEqual(fired, [[0, 1, 2, 3, 4]]);
      // A change every 60 ms never leaves 100 ms of quiet: the max wait (1 s) fires anyway.
      for (let i = 0; i < 20; i++) {
        debouncer.add(i);
        mock.timers.tick(60);
      }
      assert.equal(fired.length, 2);
      assert.ok((fired[1]?.length ?? 0) >= 16 && (fired[1]?.length ?? 0) <= 18, `max wait fired after ${fired[1]?.length} changes`);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('scoped pushes', () => {
  let dir: MeshDir;
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;
  const mesh = new SyntheticMesh({ ...meshShape(40, 3), namespaces: 2, subsetEvery: 2, virtualServiceEvery: 4 });
  const followers: { close(): void }[] = [];

  before(async () => {
    dir = await MeshDir.create();
    await cp(new URL('../fixtures/bookinfo', import.meta.url).pathname, dir.path, { recursive: true });
    meshpilot = await startMeshpilot(dir.path);
    meshpilot.store.publish('synthetic', mesh.snapshot(), 'test mesh');
    meshpilot.pushController.flush();
  });

  after(async () => {
    for (const f of followers) f.close();
    await meshpilot.close();
    await dir.remove();
  });

  const follow = <T extends { close(): void }>(f: T): T => {
    followers.push(f);
    return f;
  };
  const synced = async (f: SotwFollower | DeltaFollower): Promise<void> => {
    await eventually(() => (f.held.get(ROUTE_TYPE)?.size ?? 0) > 0 && (f.held.get(ENDPOINT_TYPE)?.size ?? 0) > 40 ? true : undefined, 10_000, 'initial sync');
    await settle(SILENCE_MS);
  };

  it('sends a sidecar only the changed ClusterLoadAssignment when one endpoint moves', async () => {
    const sotw = follow(new SotwFollower(meshpilot.xdsPort, node(1)));
    await synced(sotw);
    const before = sotw.client.responses.length;
    const address = mesh.moveEndpoint(7);
    meshpilot.store.publish('synthetic', mesh.snapshot(), 'endpoint moved');
    await sotw.client.next(() => true, before);
    await settle(SILENCE_MS);
    const pushed = sotw.client.responses.slice(before);
    assert.deepEqual(pushed.map((r) => [r.type_url, r.resources.length]), [[ENDPOINT_TYPE, 1]]);
    assert.equal(pushed[0]?.resources[0]?.['cluster_name'], `outbound|8080||${hostOf(mesh.shape, 7)}`);
    assert.ok(JSON.stringify(pushed).includes(address));
  });

  it('sends only the touched route config when a VirtualService changes: no clusters, listeners or endpoints', async () => {
    const sotw = follow(new SotwFollower(meshpilot.xdsPort, node(2)));
    await synced(sotw);
    const before = sotw.client.responses.length;
    mesh.setCanary(4, 50, 'half-and-half');
    meshpilot.store.publish('synthetic', mesh.snapshot(), 'canary moved');
    await sotw.client.next(() => true, before);
    await settle(SILENCE_MS);
    const pushed = sotw.client.responses.slice(before);
    assert.deepEqual(pushed.map((r) => r.type_url), [ROUTE_TYPE]);
    assert.deepEqual(pushed[0]?.resources.map((r) => r['name']), ['8080']);
    assert.ok(JSON.stringify(pushed).includes('half-and-half'));
  });

  it('turns a burst of 20 endpoint changes into one push carrying all 20 assignments', async () => {
    const sotw = follow(new SotwFollower(meshpilot.xdsPort, node(3)));
    await synced(sotw);
    const sequence = meshpilot.pushController.current()?.sequence ?? 0;
    const before = sotw.client.responses.length;
    for (let i = 10; i < 30; i++) {
      mesh.moveEndpoint(i);
      meshpilot.store.publish('synthetic', mesh.snapshot(), `endpoint ${i} moved`);
    }
    await sotw.client.next(() => true, before);
    await settle(SILENCE_MS);
    assert.equal(meshpilot.pushController.current()?.sequence, sequence + 1);
    assert.equal(meshpilot.pushController.lastPush()?.reasons.length, 20);
    const pushed = sotw.client.responses.slice(before);
    // 20 service clusters, plus the v1 subset cluster of the 10 of them that have subsets.
    assert.deepEqual(pushed.map((r) => [r.type_url, r.resources.length]), [[ENDPOINT_TYPE, 30]]);
  });

  it("records who ACKed a change: the proxy's node id, the type, and the push that carried it", async () => {
    const sotw = follow(new SotwFollower(meshpilot.xdsPort, node(6)));
    await synced(sotw);
    const samples: ConvergenceSample[] = [];
    const stop = meshpilot.convergence.onSample((sample) => samples.push(sample));
    mesh.moveEndpoint(17);
    meshpilot.store.publish('synthetic', mesh.snapshot(), 'endpoint moved');
    const mine = await eventually(() => samples.find((s) => s.proxyId === node(6)), 10_000, "client 6's ACK of the moved endpoint");
    stop();
    assert.equal(mine.typeUrl, ENDPOINT_TYPE);
    assert.equal(mine.pushSequence, meshpilot.pushController.current()?.sequence);
    assert.ok(mine.ms > 0, `${mine.ms} ms from the change to the ACK`);
  });

  it('brings a Delta client to exactly what a SotW client holds, before and after changes', async () => {
    const sotw = follow(new SotwFollower(meshpilot.xdsPort, node(4, 'ns-1')));
    const delta = follow(new DeltaFollower(meshpilot.xdsPort, node(5, 'ns-1')));
    await Promise.all([synced(sotw), synced(delta)]);
    assert.deepEqual(delta.snapshot(), sotw.snapshot());
    mesh.moveEndpoint(3);
    mesh.setCanary(8, 70, 'seventy-thirty');
    const shrunk = { ...mesh.snapshot(), services: mesh.snapshot().services.filter((s) => s.hostname !== hostOf(mesh.shape, 39)) };
    meshpilot.store.publish('synthetic', shrunk, 'three changes');
    await eventually(() => (JSON.stringify(delta.snapshot()).includes('seventy-thirty') ? true : undefined), 5000, 'delta sees the canary');
    await settle(SILENCE_MS);
    const held = delta.snapshot();
    assert.deepEqual(held, sotw.snapshot());
    assert.equal(Object.keys(held[CLUSTER_TYPE] ?? {}).some((n) => n.includes(hostOf(mesh.shape, 39))), false);
    assert.ok(Object.keys(held[LISTENER_TYPE] ?? {}).length > 0);
  });
});

describe('back-pressure', () => {
  const HIGH_WATER = 64 * 1024;
  let dir: MeshDir;
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;
  const mesh = new SyntheticMesh({ ...meshShape(300, 4), subsetEvery: 1000, virtualServiceEvery: 1000 });

  before(async () => {
    dir = await MeshDir.create();
    meshpilot = await startMeshpilot(dir.path, { xdsHighWaterBytes: HIGH_WATER });
    meshpilot.store.publish('synthetic', mesh.snapshot(), 'test mesh');
    meshpilot.pushController.flush();
  });

  after(async () => {
    await meshpilot.close();
    await dir.remove();
  });

  it('holds a proxy that stops reading to a bounded buffer and one merged pending push, while a fast proxy gets every push', async () => {
    const names = mesh.snapshot().services.map((s) => `outbound|8080||${s.hostname}`);
    const slow = new RawAdsClient(meshpilot.xdsPort, node(10));
    const fast = new RawAdsClient(meshpilot.xdsPort, node(11));
    try {
      for (const c of [slow, fast]) {
        c.send({ typeUrl: ENDPOINT_TYPE, names });
        c.ack(await c.next(), names);
      }
      slow.pause();
      const slowConnection = meshpilot.adsServer.connections().find((c) => c.proxy?.id === node(10));
      assert.ok(slowConnection);
      let largest = 0;
      const pushes = 25;
      for (let round = 1; round <= pushes; round++) {
        // Every service moves an endpoint: each push is a ~100 KB EDS response per proxy.
        for (let i = 0; i < mesh.shape.services; i++) mesh.moveEndpoint(i);
        const from = fast.responses.length;
        meshpilot.store.publish('synthetic', mesh.snapshot(), `round ${round}`);
        meshpilot.pushController.flush();
        const response = await fast.next(() => true, from);
        fast.ack(response, names);
        largest = Math.max(largest, slowConnection.maxInFlightBytes > 0 ? Buffer.byteLength(JSON.stringify(response.resources)) / 2 : 0);
      }
      await settle(200);
      // The fast proxy got all 25 pushes; the slow one has at most one response beyond the high-water mark in
      // flight, and the rest of its backlog is one merged pending EDS update, not 25 queued messages.
      assert.equal(fast.responses.length, pushes + 1);
      assert.ok(slowConnection.blocked, 'the slow proxy is held back');
      assert.ok(slowConnection.responsesSent < pushes, `${slowConnection.responsesSent} responses were written to the slow proxy`);
      assert.deepEqual(slowConnection.pendingTypes(), [ENDPOINT_TYPE]);
      const perResponse = fast.responses.length > 1 ? meshpilot.adsServer.connections().find((c) => c.proxy?.id === node(11))?.bytesSent ?? 0 : 0;
      const bound = HIGH_WATER + perResponse / fast.responses.length + 1024;
      assert.ok(slowConnection.maxInFlightBytes <= bound, `${slowConnection.maxInFlightBytes} bytes in flight, bound ${Math.round(bound)}`);
      assert.ok(largest > 0);

      // Once it reads again it catches up to the latest endpoints in one merged response.
      slow.resume();
      const latest = mesh.snapshot().endpoints.find((e) => e.serviceHostname === hostOf(mesh.shape, 299))?.address ?? '';
      await eventually(() => (slow.responses.some((r) => JSON.stringify(r.resources).includes(`"${latest}"`)) ? true : undefined), 10_000, 'slow proxy catches up');
      // What the kernel and the client's HTTP/2 window absorbed, plus one merged catch-up: fewer than one per push.
      assert.equal(slow.responses.length, slowConnection.responsesSent);
      assert.ok(slow.responses.length < pushes + 1, `${slow.responses.length} responses for ${pushes} pushes`);
    } finally {
      slow.close();
      fast.close();
    }
  });
});
