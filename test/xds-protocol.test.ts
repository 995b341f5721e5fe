// The SotW ADS protocol as Envoy's xds_protocol defines it, observed by a raw client that sends
// exactly the requests a test writes: versions, nonces, ACK/NACK, subscriptions, push order.
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient, type Response } from './support/ads-client.ts';
import { MeshDir, endpointSlice, pod, service } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';
import { XDS_TRANSPORTS } from '../src/xds/server/transport.ts';

const SIDECAR = 'sidecar~10.244.0.50~productpage-v1-0.default~default.svc.cluster.local';
const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
const SILENCE_MS = 250;

const names = (r: Response): string[] => r.resources.map((x) => (x['name'] ?? x['cluster_name']) as string).sort();

// Both gRPC servers of the xDS port speak the same protocol.
for (const xdsTransport of XDS_TRANSPORTS) describe(`SotW ADS protocol (${xdsTransport})`, () => {
  let dir: MeshDir;
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;
  const clients: RawAdsClient[] = [];
  const connect = (nodeId = SIDECAR): RawAdsClient => {
    const c = new RawAdsClient(meshpilot.xdsPort, nodeId);
    clients.push(c);
    return c;
  };

  before(async () => {
    dir = await MeshDir.create();
    await cp(new URL('../fixtures/bookinfo', import.meta.url).pathname, dir.path, { recursive: true });
    meshpilot = await startMeshpilot(dir.path, { xdsTransport });
  });

  after(async () => {
    for (const c of clients) c.close();
    await meshpilot.close();
    await dir.remove();
  });

  it('answers a wildcard CDS request with every cluster, a version and a nonce, and is silent after the ACK', async () => {
    const ads = connect();
    ads.send({ typeUrl: CLUSTER_TYPE });
    const cds = await ads.next();
    assert.equal(cds.type_url, CLUSTER_TYPE);
    assert.ok(names(cds).includes(REVIEWS) && names(cds).includes('BlackHoleCluster'));
    assert.match(cds.version_info, /^[0-9a-f]{16}$/);
    assert.notEqual(cds.nonce, '');
    ads.ack(cds);
    assert.deepEqual(await ads.quiet(SILENCE_MS, 1), []);
  });

  it('treats "*" and an empty first LDS request alike (wildcard) and sends the same version', async () => {
    const a = connect();
    const b = connect('sidecar~10.244.0.51~ratings-v1-0.default~default.svc.cluster.local');
    a.send({ typeUrl: LISTENER_TYPE });
    b.send({ typeUrl: LISTENER_TYPE, names: ['*'] });
    const [la, lb] = await Promise.all([a.next(), b.next()]);
    assert.deepEqual(names(la), names(lb));
    assert.ok(names(la).includes('0.0.0.0_9080') && names(la).includes('virtualOutbound'));
    assert.equal(la.version_info, lb.version_info);
  });

  it('sends nothing for an EDS name that does not exist, then sends it when the service appears', async () => {
    const ads = connect();
    const wanted = 'outbound|9080||reviews-next.default.svc.cluster.local';
    ads.send({ typeUrl: ENDPOINT_TYPE, names: [wanted] });
    assert.deepEqual(await ads.quiet(SILENCE_MS, 0), []);
    await dir.write('reviews-next.yaml', [
      service('reviews-next', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.9.9'),
      pod('reviews-next-0', 'default', '10.244.9.9', { app: 'reviews-next' }),
      endpointSlice('reviews-next', 'default', { name: 'http', port: 9080 }, [{ name: 'reviews-next-0', ip: '10.244.9.9' }]),
    ]);
    const eds = await ads.next((r) => r.type_url === ENDPOINT_TYPE);
    assert.deepEqual(names(eds), [wanted]);
    assert.equal(JSON.stringify(eds.resources[0]).includes('10.244.9.9'), true);
  });

  it('adds a subscribed name with a new response holding both, and ignores requests with a stale nonce', async () => {
    const ads = connect();
    ads.send({ typeUrl: ENDPOINT_TYPE, names: [REVIEWS] });
    const first = await ads.next();
    ads.ack(first, [REVIEWS]);
    const ratings = 'outbound|9080||ratings.default.svc.cluster.local';
    ads.send({ typeUrl: ENDPOINT_TYPE, names: [REVIEWS, ratings], version: first.version_info, nonce: first.nonce });
    const second = await ads.next((r) => r.nonce !== first.nonce);
    assert.deepEqual(names(second), [ratings, REVIEWS]);
    // A request answering the first (superseded) response changes nothing.
    const count = ads.responses.length;
    ads.send({ typeUrl: ENDPOINT_TYPE, names: [REVIEWS], version: first.version_info, nonce: first.nonce });
    assert.deepEqual(await ads.quiet(SILENCE_MS, count), []);
  });

  it('ignores a resource type it does not serve and keeps the stream working', async () => {
    const ads = connect();
    ads.send({ typeUrl: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret', names: ['default'] });
    ads.send({ typeUrl: CLUSTER_TYPE });
    const response = await ads.next();
    assert.equal(response.type_url, CLUSTER_TYPE);
  });

  it('pushes a change that touches every type in CDS, EDS, LDS, RDS order, and re-sends nothing unchanged', async () => {
    const ads = connect('sidecar~10.244.0.52~details-v1-0.default~default.svc.cluster.local');
    ads.send({ typeUrl: CLUSTER_TYPE });
    const cds = await ads.next((r) => r.type_url === CLUSTER_TYPE);
    ads.ack(cds);
    ads.send({ typeUrl: ENDPOINT_TYPE, names: ['outbound|9080||canary.default.svc.cluster.local'] });
    ads.send({ typeUrl: LISTENER_TYPE });
    const lds = await ads.next((r) => r.type_url === LISTENER_TYPE);
    ads.ack(lds);
    ads.send({ typeUrl: ROUTE_TYPE, names: ['9080'] });
    const rds = await ads.next((r) => r.type_url === ROUTE_TYPE);
    ads.ack(rds, ['9080']);
    assert.deepEqual(await ads.quiet(SILENCE_MS, ads.responses.length), []);

    // A new service on 9080 and 9091: new clusters, its endpoints, listener 0.0.0.0_9091, a vhost in "9080".
    const before = ads.responses.length;
    await dir.write('canary.yaml', [
      service('canary', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }, { name: 'http-admin', port: 9091, targetPort: 9091 }], '10.96.7.7'),
      pod('canary-0', 'default', '10.244.7.7', { app: 'canary' }),
      endpointSlice('canary', 'default', { name: 'http', port: 9080 }, [{ name: 'canary-0', ip: '10.244.7.7' }]),
    ]);
    await ads.next((r) => r.type_url === ROUTE_TYPE, before);
    const pushed = ads.responses.slice(before);
    assert.deepEqual(pushed.map((r) => r.type_url), [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]);
    for (const r of pushed) ads.ack(r, r.type_url === ROUTE_TYPE ? ['9080'] : r.type_url === ENDPOINT_TYPE ? ['outbound|9080||canary.default.svc.cluster.local'] : undefined);

    // Rewriting a file with the same objects changes no resource: nothing is sent.
    const settled = ads.responses.length;
    await dir.write('canary-copy-comment.yaml', '# an unrelated comment-only file\n');
    assert.deepEqual(await ads.quiet(SILENCE_MS * 2, settled), []);
  });

  it("re-sends a changed cluster's unchanged endpoints right after it, since Envoy warms the cluster until they arrive", async () => {
    const ratings = 'outbound|9080||ratings.default.svc.cluster.local';
    const ads = connect('sidecar~10.244.0.53~details-v1-0.default~default.svc.cluster.local');
    ads.send({ typeUrl: CLUSTER_TYPE });
    ads.ack(await ads.next((r) => r.type_url === CLUSTER_TYPE));
    ads.send({ typeUrl: ENDPOINT_TYPE, names: [ratings, REVIEWS] });
    const eds = await ads.next((r) => r.type_url === ENDPOINT_TYPE);
    ads.ack(eds, [ratings, REVIEWS]);
    assert.deepEqual(await ads.quiet(SILENCE_MS, ads.responses.length), []);

    const before = ads.responses.length;
    await dir.write('ratings-outliers.yaml', [
      { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'ratings-outliers', namespace: 'default' }, spec: { host: 'ratings', trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3 } } } },
    ]);
    const again = await ads.next((r) => r.type_url === ENDPOINT_TYPE, before);
    assert.deepEqual(ads.responses.slice(before).map((r) => r.type_url), [CLUSTER_TYPE, ENDPOINT_TYPE]);
    assert.deepEqual(names(again), [ratings]);
    assert.deepEqual(again.resources, eds.resources.filter((r) => r['cluster_name'] === ratings));
    ads.ack(again, [ratings, REVIEWS]);
    await dir.delete('ratings-outliers.yaml');
    await ads.next((r) => r.type_url === ENDPOINT_TYPE, before + 2);
  });

  it('gives a second meshpilot on the same files the same versions (content hashes)', async () => {
    const other = await startMeshpilot(dir.path, { xdsTransport });
    try {
      const a = connect();
      const b = new RawAdsClient(other.xdsPort, SIDECAR);
      try {
        for (const c of [a, b]) {
          c.send({ typeUrl: CLUSTER_TYPE });
          c.send({ typeUrl: LISTENER_TYPE });
        }
        const versions = async (c: RawAdsClient): Promise<string[]> => [
          (await c.next((r) => r.type_url === CLUSTER_TYPE)).version_info,
          (await c.next((r) => r.type_url === LISTENER_TYPE)).version_info,
        ];
        assert.deepEqual(await versions(a), await versions(b));
      } finally {
        b.close();
      }
    } finally {
      await other.close();
    }
  });
});
