// Delta (incremental) xDS as Envoy's xds_protocol defines it, as a table of request sequences
// and the responses the spec requires, observed by a raw client that sends exactly those requests.
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { SyntheticMesh, hostOf, meshShape } from '../bench/synthetic-mesh.ts';
import { syncStatus } from '../src/xds/server/connection.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { RawDeltaClient, type DeltaResponse } from './support/delta-client.ts';
import { MeshDir } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';
import { XDS_TRANSPORTS } from '../src/xds/server/transport.ts';

const SIDECAR = 'sidecar~10.244.0.60~productpage-v1-0.default~default.svc.cluster.local';
const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';
const MISSING = 'outbound|9080||nothing-here.default.svc.cluster.local';
const SILENCE_MS = 250;

const names = (r: DeltaResponse): string[] => r.resources.map((x) => x.name).sort();

// Both gRPC servers of the xDS port speak the same protocol.
for (const xdsTransport of XDS_TRANSPORTS) describe(`Delta xDS protocol (${xdsTransport})`, () => {
  let dir: MeshDir;
  let meshpilot: Awaited<ReturnType<typeof startMeshpilot>>;
  const clients: { close(): void }[] = [];
  const connect = (nodeId = SIDECAR, path?: string): RawDeltaClient => {
    const c = new RawDeltaClient(meshpilot.xdsPort, nodeId, {}, path);
    clients.push(c);
    return c;
  };
  // One synthetic service beside BookInfo, changed by publishing to the store directly.
  const extra = new SyntheticMesh({ ...meshShape(3, 2), subsetEvery: 1000, virtualServiceEvery: 1000 });
  const extraCluster = `outbound|8080||${hostOf(extra.shape, 1)}`;

  before(async () => {
    dir = await MeshDir.create();
    await cp(new URL('../fixtures/bookinfo', import.meta.url).pathname, dir.path, { recursive: true });
    meshpilot = await startMeshpilot(dir.path, { xdsTransport });
    meshpilot.store.publish('synthetic', extra.snapshot(), 'test mesh');
    meshpilot.pushController.flush();
  });

  after(async () => {
    for (const c of clients) c.close();
    await meshpilot.close();
    await dir.remove();
  });

  // Each row: what the client sends, and what the spec says comes back.
  const table: { name: string; run: () => Promise<void> }[] = [
    {
      name: 'a first CDS request with no names is a wildcard: every cluster, each with its version, then silence after the ACK',
      run: async () => {
        const delta = connect();
        delta.send({ typeUrl: CLUSTER_TYPE });
        const cds = await delta.next();
        assert.equal(cds.type_url, CLUSTER_TYPE);
        assert.ok(names(cds).includes(REVIEWS) && names(cds).includes('BlackHoleCluster'));
        for (const r of cds.resources) assert.match(r.version, /^[0-9a-f]{16}$/);
        assert.deepEqual(cds.removed_resources, []);
        assert.notEqual(cds.nonce, '');
        delta.ack(cds);
        assert.deepEqual(await delta.quiet(SILENCE_MS, 1), []);
      },
    },
    {
      name: "a changed cluster is followed by its endpoints again, unchanged, since Envoy warms it until they arrive",
      run: async () => {
        const delta = connect('sidecar~10.244.0.61~details-v1-0.default~default.svc.cluster.local');
        delta.send({ typeUrl: CLUSTER_TYPE });
        delta.ack(await delta.next((r) => r.type_url === CLUSTER_TYPE));
        delta.send({ typeUrl: ENDPOINT_TYPE, subscribe: [RATINGS, REVIEWS] });
        const eds = await delta.next((r) => r.type_url === ENDPOINT_TYPE);
        delta.ack(eds);
        const before = delta.responses.length;
        await dir.write('ratings-outliers.yaml', [
          { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'ratings-outliers', namespace: 'default' }, spec: { host: 'ratings', trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3 } } } },
        ]);
        const again = await delta.next((r) => r.type_url === ENDPOINT_TYPE, before);
        assert.deepEqual(delta.responses.slice(before).map((r) => r.type_url), [CLUSTER_TYPE, ENDPOINT_TYPE]);
        assert.deepEqual(names(again), [RATINGS]);
        assert.deepEqual(again.resources, eds.resources.filter((r) => r.name === RATINGS));
        await dir.delete('ratings-outliers.yaml');
        await delta.next((r) => r.type_url === ENDPOINT_TYPE, before + 2);
      },
    },
    {
      name: '"*" subscribes LDS explicitly and gets the same listeners as the SotW wildcard',
      run: async () => {
        const delta = connect();
        const sotw = new RawAdsClient(meshpilot.xdsPort, SIDECAR);
        clients.push(sotw);
        delta.send({ typeUrl: LISTENER_TYPE, subscribe: ['*'] });
        sotw.send({ typeUrl: LISTENER_TYPE });
        const [d, s] = await Promise.all([delta.next(), sotw.next()]);
        assert.deepEqual(names(d), s.resources.map((r) => r['name'] as string).sort());
      },
    },
    {
      name: 'a subscribed name that does not exist comes back in removed_resources; an existing one as a resource',
      run: async () => {
        const delta = connect();
        delta.send({ typeUrl: ENDPOINT_TYPE, subscribe: [REVIEWS, MISSING] });
        const eds = await delta.next();
        assert.deepEqual(names(eds), [REVIEWS]);
        assert.deepEqual(eds.removed_resources, [MISSING]);
      },
    },
    {
      name: 'on reconnect, initial_resource_versions spares what the client has: only stale and vanished resources are answered',
      run: async () => {
        const first = connect();
        first.send({ typeUrl: CLUSTER_TYPE });
        const cds = await first.next();
        first.close();
        const versions = Object.fromEntries(cds.resources.map((r) => [r.name, r.version]));
        versions[REVIEWS] = 'an-old-version';
        versions[MISSING] = 'gone-since';
        const again = connect();
        again.send({ typeUrl: CLUSTER_TYPE, initialVersions: versions });
        const reply = await again.next();
        assert.deepEqual(names(reply), [REVIEWS]);
        assert.deepEqual(reply.removed_resources, [MISSING]);
      },
    },
    {
      name: 'a resource unsubscribed and subscribed again is re-sent although it did not change',
      run: async () => {
        const delta = connect();
        delta.send({ typeUrl: ENDPOINT_TYPE, subscribe: [REVIEWS, RATINGS] });
        const first = await delta.next();
        assert.deepEqual(names(first), [RATINGS, REVIEWS]);
        delta.send({ typeUrl: ENDPOINT_TYPE, nonce: first.nonce, unsubscribe: [RATINGS] });
        assert.deepEqual(await delta.quiet(SILENCE_MS, 1), []);
        delta.send({ typeUrl: ENDPOINT_TYPE, subscribe: [RATINGS] });
        const again = await delta.next(() => true, 1);
        assert.deepEqual(names(again), [RATINGS]);
        assert.equal(again.resources[0]?.version, first.resources.find((r) => r.name === RATINGS)?.version);
      },
    },
    {
      name: 'every response has a fresh nonce; an ACK with an old nonce is ignored but its subscription change still counts',
      run: async () => {
        const delta = connect();
        delta.send({ typeUrl: ENDPOINT_TYPE, subscribe: [REVIEWS] });
        const first = await delta.next();
        delta.send({ typeUrl: ENDPOINT_TYPE, nonce: first.nonce, subscribe: [RATINGS] });
        const second = await delta.next(() => true, 1);
        assert.notEqual(second.nonce, first.nonce);
        delta.send({ typeUrl: ENDPOINT_TYPE, nonce: first.nonce, subscribe: [extraCluster] });
        const third = await delta.next(() => true, 2);
        assert.deepEqual(names(third), [extraCluster]);
      },
    },
    {
      name: 'a NACK is recorded as ERROR for that proxy and the rejected resources are not re-sent',
      run: async () => {
        const id = 'sidecar~10.244.0.61~nacker-0.default~default.svc.cluster.local';
        const delta = connect(id);
        delta.send({ typeUrl: ROUTE_TYPE, subscribe: ['9080'] });
        const rds = await delta.next();
        delta.send({ typeUrl: ROUTE_TYPE, nonce: rds.nonce, error: 'route 9080: rejected for the test' });
        assert.deepEqual(await delta.quiet(SILENCE_MS, 1), []);
        const connection = meshpilot.adsServer.connections().find((c) => c.proxy?.id === id);
        assert.equal(syncStatus(connection?.watches.get(ROUTE_TYPE)), 'ERROR');
        assert.equal(connection?.watches.get(ROUTE_TYPE)?.nack?.message, 'route 9080: rejected for the test');
      },
    },
    {
      name: 'an endpoint change sends only the changed ClusterLoadAssignment; a removed service shows in removed_resources',
      run: async () => {
        const delta = connect();
        delta.send({ typeUrl: CLUSTER_TYPE });
        const cds = await delta.next();
        delta.ack(cds);
        const edsNames = names(cds).filter((n) => n.startsWith('outbound|'));
        delta.send({ typeUrl: ENDPOINT_TYPE, subscribe: edsNames });
        const eds = await delta.next((r) => r.type_url === ENDPOINT_TYPE);
        delta.ack(eds);
        assert.equal(eds.resources.length, edsNames.length);
        const before = delta.responses.length;
        const address = extra.moveEndpoint(1);
        meshpilot.store.publish('synthetic', extra.snapshot(), 'endpoint moved');
        const change = await delta.next(() => true, before);
        delta.ack(change);
        assert.equal(change.type_url, ENDPOINT_TYPE);
        assert.deepEqual(names(change), [extraCluster]);
        assert.ok(JSON.stringify(change.resources[0]?.resource).includes(address));
        assert.deepEqual(await delta.quiet(SILENCE_MS, before + 1), []);

        const shrunk = { ...extra.snapshot(), services: extra.snapshot().services.filter((s) => s.hostname !== hostOf(extra.shape, 2)) };
        meshpilot.store.publish('synthetic', shrunk, 'service removed');
        const removal = await delta.next((r) => r.type_url === CLUSTER_TYPE, before + 1);
        assert.deepEqual(removal.resources, []);
        assert.deepEqual(removal.removed_resources, [`outbound|8080||${hostOf(extra.shape, 2)}`]);
        meshpilot.store.publish('synthetic', extra.snapshot(), 'service back');
      },
    },
    {
      name: 'the per-type services answer outside ADS: SotW StreamClusters and DeltaEndpoints',
      run: async () => {
        const cds = new RawAdsClient(meshpilot.xdsPort, SIDECAR, {}, '/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters');
        clients.push(cds);
        cds.send({ typeUrl: CLUSTER_TYPE });
        assert.ok((await cds.next()).resources.some((r) => r['name'] === REVIEWS));
        const eds = connect(SIDECAR, '/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints');
        eds.send({ typeUrl: ENDPOINT_TYPE, subscribe: [REVIEWS] });
        assert.deepEqual(names(await eds.next()), [REVIEWS]);
        // A type the stream does not carry is refused, and the stream keeps working.
        eds.send({ typeUrl: CLUSTER_TYPE, subscribe: ['*'] });
        assert.deepEqual(await eds.quiet(SILENCE_MS, 1), []);
      },
    },
  ];

  for (const row of table) it(row.name, row.run);
});
