// When the API server misbehaves — 410 Gone, dropped and stalled watches, an outage, slow
// first lists, duplicate updates — a proxy watching the whole time never loses an endpoint.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient, type Response } from './support/ads-client.ts';
import { FakeKubeApi, type FakeKubeApiOptions } from './support/fake-kube-api.ts';
import { startMeshpilotOnKube, type KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { endpointSlice, eventually, pod, service } from './support/mesh-dir.ts';

const SIDECAR = 'sidecar~10.244.0.50~productpage-v1-0.default~default.svc.cluster.local';
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';
const STEADY = '10.244.1.40';

function ratings(ips: readonly string[]) {
  return [
    service('ratings', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.40'),
    ...ips.map((ip, i) => pod(`ratings-v1-${i}`, 'default', ip, { app: 'ratings', version: 'v1' })),
    endpointSlice('ratings', 'default', { name: 'http', port: 9080 }, ips.map((ip, i) => ({ name: `ratings-v1-${i}`, ip }))),
  ];
}

/** An Envoy-like EDS subscriber that ACKs everything and records any response lacking the steady endpoint. */
class EndpointWatcher {
  readonly ads: RawAdsClient;
  readonly missing: Response[] = [];
  #seen = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(xdsPort: number) {
    this.ads = new RawAdsClient(xdsPort, SIDECAR);
    this.ads.send({ typeUrl: ENDPOINT_TYPE, names: [RATINGS] });
    this.#timer = setInterval(() => {
      this.#check();
    }, 5);
  }

  #check(): void {
    for (const response of this.ads.responses.slice(this.#seen)) {
      if (!JSON.stringify(response.resources).includes(`"${STEADY}"`)) this.missing.push(response);
      this.ads.ack(response, [RATINGS]);
    }
    this.#seen = this.ads.responses.length;
  }

  async sees(address: string, timeoutMs = 10_000): Promise<Response> {
    return this.ads.next((r) => JSON.stringify(r.resources).includes(`"${address}"`), 0, timeoutMs);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#check();
    this.ads.close();
  }
}

function watchRequests(api: FakeKubeApi, path: string): number {
  return api.requests.filter((r) => r.path === path && r.query['watch'] === 'true').length;
}

function lists(api: FakeKubeApi, path: string): number {
  return api.requests.filter((r) => r.path === path && r.query['watch'] === undefined && !r.query['continue']).length;
}

describe('a proxy watching ratings while the API server misbehaves', () => {
  let api: FakeKubeApi;
  let meshpilot: KubeMeshpilot;
  let watcher: EndpointWatcher;

  const start = async (options: FakeKubeApiOptions = {}): Promise<void> => {
    api = await FakeKubeApi.start({ bookmarkIntervalMs: 250, ...options });
    api.applyAll(ratings([STEADY]));
    meshpilot = await startMeshpilotOnKube(api);
    watcher = new EndpointWatcher(meshpilot.xdsPort);
    await watcher.sees(STEADY);
  };

  const scale = (ips: readonly string[]): void => {
    api.applyAll(ratings(ips));
  };

  afterEach(async () => {
    watcher.close();
    assert.deepEqual(watcher.missing.map((r) => r.version_info), [], 'no EDS response ever lacked the steady endpoint');
    await meshpilot.close();
    await api.close();
  });

  for (const expiry of ['error-event', 'http-410'] as const) {
    it(`relists after 410 Gone (${expiry}) and picks up what changed meanwhile, never dropping a served endpoint`, async () => {
      await start({ expiry });
      const slices = '/apis/discovery.k8s.io/v1/endpointslices';
      const listsBefore = lists(api, slices);
      // The watch breaks, the cluster changes, etcd compacts: the informer's resourceVersion is gone.
      api.setOffline(true);
      scale([STEADY, '10.244.1.41']);
      api.compact();
      api.setOffline(false);
      await watcher.sees('10.244.1.41');
      assert.ok(lists(api, slices) > listsBefore, 'the EndpointSlice informer listed again');
      // A 410 on an open watch, as the watch cache sends it.
      api.expireWatches();
      scale([STEADY, '10.244.1.42']);
      const latest = await watcher.sees('10.244.1.42');
      assert.ok(!JSON.stringify(latest.resources).includes('"10.244.1.41"'), 'the removed endpoint is gone');
    });
  }

  it('reconnects after a dropped watch and misses nothing that changed while it was down', async () => {
    await start({ splitEvents: true });
    const slices = '/apis/discovery.k8s.io/v1/endpointslices';
    const watchesBefore = watchRequests(api, slices);
    api.dropWatches();
    scale([STEADY, '10.244.1.43']);
    await watcher.sees('10.244.1.43');
    assert.ok(watchRequests(api, slices) > watchesBefore, 'the watch was re-established');
    await eventually(() => (api.openWatches('endpointslices') === 1 ? true : undefined), 5000, 'one open EndpointSlice watch again');
  });

  it('keeps quiet watches alive by their bookmarks, and restarts a stalled one', async () => {
    await start();
    const slices = '/apis/discovery.k8s.io/v1/endpointslices';
    const quietBefore = watchRequests(api, slices);
    await new Promise((resolve) => setTimeout(resolve, 2000)); // longer than the 1.5 s stall limit
    assert.equal(watchRequests(api, slices), quietBefore, 'bookmarks kept the quiet watch from looking stalled');
    api.stallWatches();
    scale([STEADY, '10.244.1.44']);
    await watcher.sees('10.244.1.44', 8000);
    assert.ok(watchRequests(api, slices) > quietBefore, 'the watchdog opened a new watch');
  });

  it('serves the last known model while the API server is unreachable, and catches up when it is back', async () => {
    await start();
    api.setOffline(true);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal((await meshpilot.admin('/ready')).status, 200, 'still ready: proxies keep being served');
    const registry = (await (await meshpilot.admin('/debug/registryz')).json()) as { services: { endpoints: { address: string }[] }[] };
    assert.deepEqual(registry.services[0]?.endpoints.map((e) => e.address), [STEADY]);
    const late = new RawAdsClient(meshpilot.xdsPort, 'sidecar~10.244.0.51~ratings-v1-9.default~default.svc.cluster.local');
    try {
      late.send({ typeUrl: ENDPOINT_TYPE, names: [RATINGS] });
      assert.ok(JSON.stringify((await late.next()).resources).includes(`"${STEADY}"`), 'a proxy connecting during the outage gets the endpoints');
    } finally {
      late.close();
    }
    scale([STEADY, '10.244.1.45']);
    api.setOffline(false);
    await watcher.sees('10.244.1.45');
  });
});

describe('duplicate updates', () => {
  let api: FakeKubeApi;
  let meshpilot: KubeMeshpilot;
  let ads: RawAdsClient;

  before(async () => {
    api = await FakeKubeApi.start();
    api.applyAll(ratings([STEADY]));
    meshpilot = await startMeshpilotOnKube(api);
    ads = new RawAdsClient(meshpilot.xdsPort, SIDECAR);
  });

  after(async () => {
    ads.close();
    await meshpilot.close();
    await api.close();
  });

  it('re-sent objects and status-only changes cause no push and nothing sent to proxies', async () => {
    ads.send({ typeUrl: CLUSTER_TYPE });
    const cds = await ads.next((r) => r.type_url === CLUSTER_TYPE);
    ads.ack(cds);
    ads.send({ typeUrl: ENDPOINT_TYPE, names: [RATINGS] });
    const eds = await ads.next((r) => r.type_url === ENDPOINT_TYPE);
    ads.ack(eds, [RATINGS]);
    const pushBefore = meshpilot.pushController.lastPush()?.sequence;
    const sent = ads.responses.length;
    const rvBefore = Number(api.resourceVersion);
    api.touch('Service', 'default', 'ratings');
    api.touch('EndpointSlice', 'default', 'ratings-abcde');
    api.touch('Pod', 'default', 'ratings-v1-0');
    const running = api.get('Pod', 'default', 'ratings-v1-0');
    assert.ok(running);
    api.apply({ ...running, status: { ...(running['status'] as object), conditions: [{ type: 'Ready', status: 'True', lastProbeTime: new Date().toISOString() }] } });
    assert.equal(Number(api.resourceVersion), rvBefore + 4, 'four MODIFIED events were sent');
    assert.deepEqual(await ads.quiet(500, sent), [], 'no DiscoveryResponse');
    assert.equal(meshpilot.pushController.lastPush()?.sequence, pushBefore, 'no push');
  });
});

describe('readiness', () => {
  it('reports /ready and answers proxies only after every informer has finished its first list', async () => {
    const api = await FakeKubeApi.start();
    api.applyAll(ratings([STEADY]));
    const release = api.holdLists();
    const meshpilot = await startMeshpilotOnKube(api);
    const ads = new RawAdsClient(meshpilot.xdsPort, SIDECAR);
    try {
      ads.send({ typeUrl: ENDPOINT_TYPE, names: [RATINGS] });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const notReady = await meshpilot.admin('/ready');
      assert.equal(notReady.status, 503);
      assert.equal(ads.responses.length, 0, 'no half-known model is sent');
      assert.equal((await meshpilot.admin('/healthz')).status, 200, 'alive while waiting');
      release();
      const first = await ads.next();
      assert.ok(JSON.stringify(first.resources).includes(`"${STEADY}"`));
      assert.equal((await meshpilot.admin('/ready')).status, 200);
    } finally {
      release();
      ads.close();
      await meshpilot.close();
      await api.close();
    }
  });
});
