// One encoded body for every stream sent the same response, each stream's own nonce written
// after it in the same message, and two servers in one process that share nothing.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import pino from 'pino';
import { parseProxy } from '../src/model/proxy.ts';
import { buildPushContext } from '../src/model/push-context.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import type { GenerateFn } from '../src/xds/generate/index.ts';
import { messageToJson } from '../src/xds/proto-json.ts';
import { messageType } from '../src/xds/protos.ts';
import { EnvoyResource, versionOfSet } from '../src/xds/resource.ts';
import { XdsConnection } from '../src/xds/server/connection.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, encodeDeltaDiscoveryRequestJson, encodeDiscoveryRequestJson } from '../src/xds/server/messages.ts';
import { PushResponses } from '../src/xds/server/push-responses.ts';
import type { PlannedResponse } from '../src/xds/server/stream-protocol.ts';
import { HeldResources } from '../src/xds/server/held.ts';
import { SharedLists } from '../src/xds/server/shared-lists.ts';
import { SubscriptionPool } from '../src/xds/server/subscription.ts';
import { ResourceWire } from '../src/xds/server/wire.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { MeshDir, endpointSlice, eventually, pod, service, toYaml } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';

const cluster = (name: string): EnvoyResource => new EnvoyResource(CLUSTER_TYPE, name, { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } });
const node = (ip: number): string => `sidecar~10.0.0.${ip}~p${ip}.default~default.svc.cluster.local`;

/** Two streams of one server, answering one push whose generators give every proxy the same cluster list. */
function twoStreams(mode: 'sotw' | 'delta'): { streams: XdsConnection[]; writes: Buffer[][][] } {
  const clusters = [cluster('outbound|9080||reviews.default.svc.cluster.local'), cluster('BlackHoleCluster')];
  const generate: GenerateFn = (typeUrl) => (typeUrl === CLUSTER_TYPE ? clusters : []);
  const push = buildPushContext(convertObjects([]));
  const responses = new PushResponses(push, { generate, wire: new ResourceWire(), controlPlaneId: 'meshpilot-test' });
  const shared = { subscriptions: new SubscriptionPool(), lists: new SharedLists() };
  const writes: Buffer[][][] = [[], []];
  const streams = [0, 1].map(
    (i) =>
      new XdsConnection({
        id: `${i + 1}`,
        peer: 'test',
        mode,
        currentPush: () => push,
        responses: () => responses,
        shared,
        write: (message, written) => {
          writes[i]?.push([...message]);
          written();
        },
        log: pino({ level: 'silent' }),
      }),
  );
  streams.forEach((stream, i) => {
    const id = node(i + 1);
    if (mode === 'sotw') stream.handleRequest(decodeDiscoveryRequest(encodeDiscoveryRequestJson({ node: { id }, type_url: CLUSTER_TYPE })));
    else stream.handleDeltaRequest(decodeDeltaDiscoveryRequest(encodeDeltaDiscoveryRequestJson({ node: { id }, type_url: CLUSTER_TYPE })));
  });
  return { streams, writes };
}

describe('one body for many streams, a nonce for each', () => {
  for (const [mode, message] of [
    ['sotw', 'envoy.service.discovery.v3.DiscoveryResponse'],
    ['delta', 'envoy.service.discovery.v3.DeltaDiscoveryResponse'],
  ] as const) {
    it(`${mode}: two proxies alike are written the same body Buffer, each followed by its own nonce, which protobufjs reads`, () => {
      const { streams, writes } = twoStreams(mode);
      const [first, second] = writes.map((w) => w[0]);
      assert.ok(first && second, 'each stream wrote one response');
      assert.equal(first.length, 2, 'a body and a nonce');
      assert.equal(first[0], second[0], 'the very same Buffer object');
      const type = messageType(message);
      const decoded = writes.map((w) => messageToJson(type, type.decode(Buffer.concat(w[0] ?? []))) as { nonce: string; type_url: string; resources: unknown[] });
      const sent = streams.map((s) => s.watches.get(CLUSTER_TYPE)?.sent?.nonce);
      assert.deepEqual(
        decoded.map((d) => d.nonce),
        sent,
      );
      assert.notEqual(sent[0], sent[1]);
      assert.deepEqual(
        decoded.map((d) => [d.type_url, d.resources.length]),
        [
          [CLUSTER_TYPE, 2],
          [CLUSTER_TYPE, 2],
        ],
      );
      const body = messageToJson(type, type.decode(first[0] as Buffer)) as { nonce?: string };
      assert.equal(body.nonce ?? '', '', 'the shared body carries no nonce');
    });
  }
});

describe('the same changes sent to many streams', () => {
  for (const [mode, message] of [
    ['sotw', 'envoy.service.discovery.v3.DiscoveryResponse'],
    ['delta', 'envoy.service.discovery.v3.DeltaDiscoveryResponse'],
  ] as const) {
    it(`${mode}: a hundred changed load assignments are one body for every stream sent them, not a copy each`, () => {
      const responses = new PushResponses(buildPushContext(convertObjects([])), { generate: () => [], wire: new ResourceWire(), controlPlaneId: 'meshpilot-test' });
      const changed = Array.from({ length: 100 }, (_, i) => {
        const name = `outbound|9080||svc-${i}.default.svc.cluster.local`;
        return new EnvoyResource(ENDPOINT_TYPE, name, { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: `10.1.0.${i}`, port_value: 9080 } } } }] }] });
      });
      // Each stream plans its own response (its own list and nonce) with the same resources in it.
      const planned = (nonce: string, resources: readonly EnvoyResource[]): PlannedResponse => {
        const version = versionOfSet(resources);
        const sent = { version, nonce, at: new Date(), resources, pushSequence: 1, count: resources.length, removed: [] };
        return { typeUrl: ENDPOINT_TYPE, nonce, version, resources, removed: [], shared: undefined, sent };
      };
      const [first, second] = ['1-4', '2-4'].map((nonce) => responses.body(mode, planned(nonce, [...changed])));
      assert.ok(first && second);
      assert.equal(first, second, 'the very same Buffer');
      const fewer = responses.body(mode, planned('3-4', changed.slice(1)));
      assert.notEqual(fewer, first, 'other changes, another body');
      const type = messageType(message);
      const decoded = messageToJson(type, type.decode(first)) as { resources: unknown[]; nonce?: string };
      assert.equal(decoded.resources.length, 100);
      assert.equal(decoded.nonce ?? '', '');
      assert.deepEqual(responses.stats, { encoded: 2, reused: 1 });
    });
  }
});

describe('what streams hold after the same changes', () => {
  const assignment = (i: number, address: string): EnvoyResource => {
    const name = `outbound|9080||svc-${i}.default.svc.cluster.local`;
    return new EnvoyResource(ENDPOINT_TYPE, name, { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: 9080 } } } }] }] });
  };
  it('is one map from the second stream on, and each stream holds exactly what it was sent', () => {
    const lists = new SharedLists();
    const whole = Array.from({ length: 10 }, (_, i) => assignment(i, '10.1.0.1'));
    const streams = Array.from({ length: 4 }, () => {
      const held = new HeldResources(lists);
      held.replaceAll(whole);
      return held;
    });
    const changed = [assignment(2, '10.1.0.2'), assignment(12, '10.1.0.2')];
    const base = lists.mapOf(whole);
    assert.equal(lists.overlay(base, [...changed]), undefined, 'the first stream sent them keeps its own differences');
    const shared = lists.overlay(base, [...changed]);
    assert.ok(shared, 'a second proves them shared');
    assert.equal(lists.overlay(base, [...changed]), shared, 'a third gets the same map');
    const lookalike = [assignment(2, '10.1.0.2'), assignment(12, '10.1.0.2')];
    assert.equal(lists.overlay(base, lookalike), undefined, 'the same content in other objects is not taken for them');
    streams.slice(0, 3).forEach((held) => { held.add([...changed]); });
    streams[3]?.add([assignment(3, '10.1.0.3')]);
    const versions = (held: HeldResources): (string | undefined)[] => [2, 3, 12].map((i) => held.get(`outbound|9080||svc-${i}.default.svc.cluster.local`));
    for (const held of streams.slice(0, 3)) {
      assert.equal(held.size, 11);
      assert.deepEqual(versions(held), [changed[0]?.version, whole[3]?.version, changed[1]?.version]);
    }
    assert.deepEqual(versions(streams[3] as HeldResources), [whole[2]?.version, assignment(3, '10.1.0.3').version, undefined]);
    assert.equal(streams[3]?.size, 10);
  });
});

describe('names a client made up', () => {
  it('never make two different removals look alike: each stream is sent the names it is to drop', () => {
    const responses = new PushResponses(buildPushContext(convertObjects([])), { generate: () => [], wire: new ResourceWire(), controlPlaneId: 'meshpilot-test' });
    const removal = (nonce: string, removed: readonly string[]): PlannedResponse => {
      const sent = { version: '7', nonce, at: new Date(), resources: [], pushSequence: 7, count: 0, removed };
      return { typeUrl: ENDPOINT_TYPE, nonce, version: '7', resources: [], removed, shared: undefined, sent };
    };
    const one = responses.body('delta', removal('1-2', ['x\u0001y']));
    const two = responses.body('delta', removal('2-2', ['x', 'y']));
    assert.notEqual(one, two);
    const type = messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
    const removedOf = (body: Buffer): unknown => (messageToJson(type, type.decode(body)) as { removed_resources?: unknown }).removed_resources;
    assert.deepEqual(removedOf(one), ['x\u0001y']);
    assert.deepEqual(removedOf(two), ['x', 'y']);
  });
});

describe('the nonce after the body, read by real clients', () => {
  it('a grpc-js client with stubs from proto-loader reads each response nonce and its ACK makes the proxy SYNCED', async (t) => {
    const dir = await MeshDir.create();
    await dir.write('mesh.yaml', toYaml([service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.10')]));
    const meshpilot = await startMeshpilot(dir.path);
    const definition = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', { includeDirs: [fileURLToPath(new URL('../proto', import.meta.url))], keepCase: true, defaults: false });
    interface Ads {
      StreamAggregatedResources(): grpc.ClientDuplexStream<object, { nonce: string; version_info: string; type_url: string; resources: unknown[] }>;
    }
    const loaded = grpc.loadPackageDefinition(definition) as unknown as { envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client & Ads } } } } };
    const clients = [31, 32].map((ip) => {
      const client = new loaded.envoy.service.discovery.v3.AggregatedDiscoveryService(`127.0.0.1:${meshpilot.xdsPort}`, grpc.credentials.createInsecure());
      const stream = client.StreamAggregatedResources();
      stream.on('error', () => undefined);
      const first = new Promise<{ nonce: string; version_info: string; type_url: string; resources: unknown[] }>((resolve) => stream.once('data', resolve));
      stream.write({ node: { id: node(ip), user_agent_name: 'envoy' }, type_url: CLUSTER_TYPE });
      return { client, stream, first, id: node(ip) };
    });
    t.after(async () => {
      for (const c of clients) {
        c.stream.cancel();
        c.client.close();
      }
      await meshpilot.close();
      await dir.remove();
    });
    const responses = await Promise.all(clients.map((c) => c.first));
    assert.ok(responses.every((r) => r.type_url === CLUSTER_TYPE && r.resources.length > 0 && r.nonce !== ''));
    assert.notEqual(responses[0]?.nonce, responses[1]?.nonce);
    clients.forEach((c, i) => c.stream.write({ type_url: CLUSTER_TYPE, version_info: responses[i]?.version_info, response_nonce: responses[i]?.nonce }));
    for (const c of clients) await eventually(async () => ((await meshpilot.proxySync(c.id))?.cds.status === 'SYNCED' ? true : undefined));
  });
});

describe('two servers in one process', () => {
  it('share nothing: each counts its own nonces, encodes its own bodies and keeps its own subscriptions and what its proxies hold', async (t) => {
    const [dirA, dirB] = await Promise.all([MeshDir.create(), MeshDir.create()]);
    const port = [{ name: 'http', port: 9080, targetPort: 9080 }];
    await dirA.write('mesh.yaml', toYaml([service('reviews', 'default', port, '10.96.0.10'), pod('reviews-0', 'default', '10.244.0.10', { app: 'reviews' }), endpointSlice('reviews', 'default', { name: 'http', port: 9080 }, [{ name: 'reviews-0', ip: '10.244.0.10' }])]));
    await dirB.write('mesh.yaml', toYaml([service('ratings', 'default', port, '10.96.0.20')]));
    const servers: TestMeshpilot[] = await Promise.all([startMeshpilot(dirA.path), startMeshpilot(dirB.path)]);
    const [a, b] = servers as [TestMeshpilot, TestMeshpilot];
    // The same proxy, twice, with the same subscriptions: one to each server.
    const [onA, onB] = [a, b].map((server) => new RawAdsClient(server.xdsPort, node(41))) as [RawAdsClient, RawAdsClient];
    t.after(async () => {
      onA.close();
      onB.close();
      await Promise.all([a.close(), b.close()]);
      await Promise.all([dirA.remove(), dirB.remove()]);
    });
    const reviews = 'outbound|9080||reviews.default.svc.cluster.local';
    onA.send({ typeUrl: CLUSTER_TYPE });
    const cdsA = await onA.next((r) => r.type_url === CLUSTER_TYPE);
    // B is asked only once A has answered, so a process-wide counter would have moved.
    onB.send({ typeUrl: CLUSTER_TYPE });
    const cdsB = await onB.next((r) => r.type_url === CLUSTER_TYPE);
    assert.equal(cdsA.nonce, cdsB.nonce, "each server's first stream counts from the same start");
    const names = (r: { resources: Record<string, unknown>[] }): unknown[] => r.resources.map((x) => x['name']);
    assert.ok(names(cdsA).includes(reviews) && !names(cdsB).includes(reviews));
    for (const [client, response] of [[onA, cdsA], [onB, cdsB]] as const) {
      client.ack(response);
      client.send({ typeUrl: ENDPOINT_TYPE, names: [reviews] });
    }
    await onA.next((r) => r.type_url === ENDPOINT_TYPE);
    const held = (server: TestMeshpilot): number | undefined => server.adsServer.connections()[0]?.watches.get(ENDPOINT_TYPE)?.held.size;
    await eventually(() => (held(b) === 0 && b.adsServer.sharedSubscriptions > 0 ? true : undefined));
    assert.equal(held(a), 1, 'A holds the load assignment it sent');
    assert.equal(held(b), 0, 'B has none to send, whatever A sent the same proxy');
    // A change on A is encoded by A; B encodes nothing and sends nothing.
    const bodiesB = b.adsServer.responseBodies;
    const sentB = onB.responses.length;
    await dirA.write('mesh.yaml', toYaml([service('reviews', 'default', port, '10.96.0.10'), service('details', 'default', port, '10.96.0.30')]));
    const pushed = await onA.next((r) => r.type_url === CLUSTER_TYPE && names(r).includes('outbound|9080||details.default.svc.cluster.local'), onA.responses.length);
    assert.ok(pushed.nonce !== cdsA.nonce);
    assert.ok(a.adsServer.responseBodies.encoded > 0);
    assert.deepEqual(b.adsServer.responseBodies, bodiesB);
    assert.deepEqual(await onB.quiet(200, sentB), []);
    assert.equal(parseProxy(node(41)).id, b.adsServer.connections()[0]?.proxy?.id);
  });
});
