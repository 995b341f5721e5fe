// The hand-written wire paths of the ADS server against protobufjs and the xDS protos: what a
// client sends is read exactly, what is shared between streams stays correct.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { describe, it } from 'node:test';
import type { Cluster } from '../src/xds/envoy-types.generated.ts';
import { messageToJson } from '../src/xds/proto-json.ts';
import { messageType } from '../src/xds/protos.ts';
import { EnvoyResource, internResource, versionOfSet } from '../src/xds/resource.ts';
import { HeldResources } from '../src/xds/server/held.ts';
import { SharedLists } from '../src/xds/server/shared-lists.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, encodeDeltaDiscoveryRequestJson, encodeDiscoveryRequestJson } from '../src/xds/server/messages.ts';
import { SubscriptionPool } from '../src/xds/server/subscription.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { MeshDir, eventually, service, toYaml } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';

const cluster = (name: string, timeout = '1s'): EnvoyResource => new EnvoyResource(CLUSTER_TYPE, name, { name, type: 'EDS', connect_timeout: timeout, eds_cluster_config: { eds_config: { ads: {} } } });

describe('reading DiscoveryRequests', () => {
  const cases: { name: string; json: Record<string, unknown> }[] = [
    { name: 'an Envoy first request with its node and no names', json: { node: { id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', cluster: 'a', user_agent_name: 'envoy', metadata: { LABELS: { app: 'a' } } }, type_url: CLUSTER_TYPE } },
    { name: 'an EDS ACK repeating its names', json: { version_info: 'abc', resource_names: ['outbound|9080||reviews.default.svc.cluster.local', 'outbound|9080|v1|reviews.default.svc.cluster.local'], type_url: ENDPOINT_TYPE, response_nonce: '1f' } },
    { name: 'a NACK with its error', json: { version_info: 'abc', type_url: CLUSTER_TYPE, response_nonce: '2', error_detail: { code: 3, message: 'cluster foo: unknown field ✓' } } },
    { name: 'a negative status code', json: { type_url: CLUSTER_TYPE, response_nonce: '3', error_detail: { code: -1, message: 'odd' } } },
    { name: 'names with non-ASCII characters', json: { resource_names: ['ünïcode.example:80', '*'], type_url: 'type.googleapis.com/envoy.config.listener.v3.Listener' } },
  ];
  for (const { name, json } of cases) {
    it(`reads ${name} as protobufjs does`, () => {
      const bytes = encodeDiscoveryRequestJson(json as never);
      const type = messageType('envoy.service.discovery.v3.DiscoveryRequest');
      const reference = messageToJson(type, type.decode(bytes)) as Record<string, unknown>;
      const fast = decodeDiscoveryRequest(bytes);
      assert.equal(fast.versionInfo, reference['version_info'] ?? '');
      assert.equal(fast.typeUrl, reference['type_url'] ?? '');
      assert.equal(fast.responseNonce, reference['response_nonce'] ?? '');
      assert.deepEqual(fast.resourceNames, reference['resource_names'] ?? []);
      const error = reference['error_detail'] as { code?: number; message?: string } | undefined;
      assert.deepEqual(fast.errorDetail, error ? { code: error.code ?? 0, message: error.message ?? '' } : undefined);
      const node = reference['node'] as { id?: string; user_agent_name?: string } | undefined;
      assert.equal(fast.node?.id, node?.id);
      assert.equal(fast.node?.userAgentName, node?.user_agent_name);
    });
  }

  it('gives the same names digest for the same list and a different one when any name changes', () => {
    const names = ['a', 'b', 'c'];
    const digest = (list: string[]): string => decodeDiscoveryRequest(encodeDiscoveryRequestJson({ resource_names: list, type_url: ENDPOINT_TYPE, response_nonce: 'x', version_info: 'v' })).namesDigest;
    assert.equal(digest(names), digest([...names]));
    assert.notEqual(digest(names), digest(['a', 'b', 'd']));
    assert.notEqual(digest(names), digest(['a', 'b']));
    // One name that contains what would be the next tag and length is not two names.
    assert.notEqual(digest(['a', 'b']), digest(['a\u001a\u0001b']));
    assert.equal(digest([]), '');
  });

  it('rejects a truncated request instead of guessing', () => {
    const bytes = encodeDiscoveryRequestJson({ resource_names: ['abcdef'], type_url: ENDPOINT_TYPE });
    assert.throws(() => decodeDiscoveryRequest(bytes.subarray(0, bytes.length - 3)));
  });
});

describe('reading DeltaDiscoveryRequests', () => {
  it('reads subscriptions, initial versions, nonces, errors and the node as protobufjs does', () => {
    const json = {
      node: { id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', user_agent_name: 'envoy' },
      type_url: ENDPOINT_TYPE,
      resource_names_subscribe: ['outbound|9080||reviews.default.svc.cluster.local', 'ünïcode|80'],
      resource_names_unsubscribe: ['outbound|9080|v1|reviews.default.svc.cluster.local'],
      initial_resource_versions: { 'outbound|9080||reviews.default.svc.cluster.local': 'abc123', other: '' },
      response_nonce: '7',
      error_detail: { code: -2, message: 'rejected ✓' },
    };
    const bytes = encodeDeltaDiscoveryRequestJson(json);
    const type = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
    const reference = messageToJson(type, type.decode(bytes)) as typeof json;
    const fast = decodeDeltaDiscoveryRequest(bytes);
    assert.equal(fast.typeUrl, reference.type_url);
    assert.deepEqual(fast.subscribe, reference.resource_names_subscribe);
    assert.deepEqual(fast.unsubscribe, reference.resource_names_unsubscribe);
    assert.deepEqual(Object.fromEntries(fast.initialVersions), reference.initial_resource_versions);
    assert.equal(fast.responseNonce, reference.response_nonce);
    assert.deepEqual(fast.errorDetail, reference.error_detail);
    const node = fast.node;
    assert.ok(node, 'the node is read');
    assert.equal(node.id, reference.node.id);
    assert.equal(node.userAgentName, 'envoy');
    const ack = decodeDeltaDiscoveryRequest(encodeDeltaDiscoveryRequestJson({ type_url: CLUSTER_TYPE, response_nonce: '8' }));
    assert.deepEqual([ack.subscribe, ack.unsubscribe, ack.initialVersions.size, ack.errorDetail, ack.node], [[], [], 0, undefined, undefined]);
  });
});

describe('set versions', () => {
  it('do not depend on order, and change when a resource, the count or a name changes', () => {
    const a = cluster('a');
    const b = cluster('b');
    assert.equal(versionOfSet([a, b]), versionOfSet([b, a]));
    assert.match(versionOfSet([a, b]), /^[0-9a-f]{16}$/);
    assert.notEqual(versionOfSet([a, b]), versionOfSet([a, cluster('b', '2s')]));
    assert.notEqual(versionOfSet([a, b]), versionOfSet([a]));
    assert.notEqual(versionOfSet([a]), versionOfSet([]));
    assert.notEqual(versionOfSet([a, b]), versionOfSet([a, cluster('c')]));
  });
});

describe('resources shared across pushes', () => {
  it('are the same object for the same content, and a new one when content changes', () => {
    const json: Cluster = { name: 'x', type: 'EDS', connect_timeout: '1s', eds_cluster_config: { eds_config: { ads: {} } } };
    const first = internResource(1_000_001, CLUSTER_TYPE, 'x', json);
    const again = internResource(1_000_002, CLUSTER_TYPE, 'x', structuredClone(json));
    assert.equal(first, again, 'unchanged content keeps its encoding from the last push');
    const changed = internResource(1_000_003, CLUSTER_TYPE, 'x', { ...json, connect_timeout: '2s' });
    assert.notEqual(changed, first);
    assert.notEqual(changed.version, first.version);
  });

  it('are one encoded body for proxies alike, each stream with nonces of its own that it is never sent twice', async (t) => {
    const dir = await MeshDir.create();
    const reviews = service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.10');
    await dir.write('mesh.yaml', toYaml([reviews]));
    const meshpilot = await startMeshpilot(dir.path);
    const clients = [21, 22, 23].map((ip) => new RawAdsClient(meshpilot.xdsPort, `sidecar~10.0.0.${ip}~p${ip}.default~default.svc.cluster.local`));
    t.after(async () => {
      for (const c of clients) c.close();
      await meshpilot.close();
      await dir.remove();
    });
    const seen = clients.map(() => new Set<string>());
    let from = clients.map(() => 0);
    for (let round = 0; round < 3; round++) {
      if (round === 0) for (const c of clients) c.send({ typeUrl: CLUSTER_TYPE });
      // Each later round is a push whose CDS every proxy is sent.
      else await dir.write('mesh.yaml', toYaml([reviews, service(`extra-${round}`, 'default', [{ name: 'http', port: 8080, targetPort: 8080 }], `10.96.0.${20 + round}`)]));
      const responses = await Promise.all(clients.map((c, i) => c.next((r) => r.type_url === CLUSTER_TYPE, from[i], 10_000)));
      from = clients.map((c) => c.responses.length);
      assert.equal(new Set(responses.map((r) => r.version_info)).size, 1);
      assert.equal(new Set(responses.map((r) => r.nonce)).size, 3, `round ${round}: each stream has nonces of its own`);
      // Encoded once for the three (the first body is still being written when the others ask).
      assert.ok(meshpilot.adsServer.responseBodies.reused >= 1, `round ${round}: a proxy was sent a body another was sent`);
      responses.forEach((r, i) => {
        assert.ok(!seen[i]?.has(r.nonce), `round ${round}: proxy ${i} was sent nonce ${r.nonce} before`);
        seen[i]?.add(r.nonce);
        clients[i]?.ack(r);
      });
    }
  });
});

describe('what a stream holds', () => {
  it('shares the map of a whole set and keeps only its own differences', () => {
    const list = [cluster('a'), cluster('b'), cluster('c')];
    const held = new HeldResources(new SharedLists());
    held.replaceAll(list);
    assert.equal(held.size, 3);
    assert.equal(held.get('a'), list[0]?.version);
    const a2 = cluster('a', '2s');
    held.set(a2);
    held.delete('b');
    held.claim('d', 'v1');
    assert.deepEqual([...held.keys()].sort(), ['a', 'c', 'd']);
    assert.equal(held.size, 3);
    assert.equal(held.get('a'), a2.version);
    assert.equal(held.get('d'), 'v1');
    assert.equal(held.has('b'), false);
    // What it was sent, as sent: a claimed version has no content here.
    assert.deepEqual(held.sent(), [a2, list[2]]);
    const other = new HeldResources(new SharedLists());
    other.replaceAll(list);
    assert.equal(other.get('a'), list[0]?.version, "one stream's changes never show in another's");
    assert.deepEqual(other.sent(), list);
    held.set(list[0] as EnvoyResource);
    assert.equal(held.get('a'), list[0]?.version);
    held.clear();
    assert.equal(held.size, 0);
    assert.deepEqual([...held.keys()], []);
  });

  it('stays right after drifting far from its base', () => {
    const list = Array.from({ length: 200 }, (_, i) => cluster(`c${i}`));
    const held = new HeldResources(new SharedLists());
    held.replaceAll(list);
    const changed = Array.from({ length: 150 }, (_, i) => cluster(`c${i}`, '2s'));
    for (const r of changed) held.set(r);
    for (let i = 150; i < 160; i++) held.delete(`c${i}`);
    assert.equal(held.size, 190);
    assert.equal(held.get('c10'), changed[10]?.version);
    assert.equal(held.get('c170'), list[170]?.version);
    assert.equal(held.has('c155'), false);
    assert.equal(held.sent().length, 190);
  });
});

describe('subscriptions shared between streams', () => {
  it('find a list seen before by its request digest, and forget it when the last stream lets go', () => {
    const pool = new SubscriptionPool();
    const first = pool.acquire(['b', 'a'], 'digest-1');
    const second = pool.acquire(['unused: found by digest'], 'digest-1');
    assert.equal(second, first);
    assert.deepEqual(first.names, ['a', 'b']);
    assert.equal(pool.acquire(['a', 'b', 'a']), first, 'same names in another order are the same subscription');
    pool.release(first);
    pool.release(first);
    pool.release(first);
    assert.equal(pool.size, 0);
    assert.notEqual(pool.acquire(['x'], 'digest-1'), first, 'a released digest is not reused');
  });
});

describe('the xDS port speaks gRPC', () => {
  const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

  interface Exchange {
    status: number;
    headers: http2.IncomingHttpHeaders;
    trailers: http2.IncomingHttpHeaders;
    data: Buffer;
  }

  /** One HTTP/2 request to the xDS port; resolves when the response is complete. */
  function exchange(port: number, headers: http2.OutgoingHttpHeaders, body?: Buffer, after?: (stream: http2.ClientHttp2Stream) => void): Promise<Exchange> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', reject);
      const stream = session.request({ ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', ...headers });
      const result: Exchange = { status: 0, headers: {}, trailers: {}, data: Buffer.alloc(0) };
      stream.on('response', (h) => {
        result.headers = h;
        result.status = Number(h[':status']);
      });
      stream.on('trailers', (t: http2.IncomingHttpHeaders) => {
        result.trailers = t;
      });
      stream.on('data', (chunk: Buffer) => {
        result.data = Buffer.concat([result.data, chunk]);
      });
      stream.on('close', () => {
        session.close();
        resolve(result);
      });
      stream.on('error', reject);
      if (body) stream.write(body);
      if (after) after(stream);
      else stream.end();
    });
  }

  const frame = (flag: number, message: Buffer): Buffer => {
    const prefix = Buffer.alloc(5);
    prefix[0] = flag;
    prefix.writeUInt32BE(message.length, 1);
    return Buffer.concat([prefix, message]);
  };

  it('answers an unknown method with UNIMPLEMENTED, a browser with 415, a message marked compressed without grpc-encoding with INTERNAL, and a bad message with INVALID_ARGUMENT', async (t) => {
    const dir = await MeshDir.create();
    const meshpilot = await startMeshpilot(dir.path);
    t.after(async () => {
      await meshpilot.close();
      await dir.remove();
    });
    const unknown = await exchange(meshpilot.xdsPort, { ':path': '/envoy.service.discovery.v3.AggregatedDiscoveryService/Nope' });
    assert.equal(unknown.status, 200);
    assert.equal(unknown.headers['grpc-status'], '12');
    assert.match(decodeURIComponent(String(unknown.headers['grpc-message'])), /unknown method/);

    const browser = await exchange(meshpilot.xdsPort, { ':method': 'GET', ':path': '/', 'content-type': 'text/html' });
    assert.equal(browser.status, 415);
    assert.match(browser.data.toString(), /admin API/);

    const request = encodeDiscoveryRequestJson({ node: { id: 'sidecar~10.0.0.9~x.default~default.svc.cluster.local' }, type_url: CLUSTER_TYPE });
    const compressed = await exchange(meshpilot.xdsPort, { ':path': ADS }, frame(1, request));
    assert.equal(compressed.trailers['grpc-status'], '13');
    assert.match(decodeURIComponent(String(compressed.trailers['grpc-message'])), /no grpc-encoding/);

    const garbage = await exchange(meshpilot.xdsPort, { ':path': ADS }, frame(0, Buffer.from([0x0a, 0x05, 0x41])));
    assert.equal(garbage.trailers['grpc-status'], '3');
    assert.match(decodeURIComponent(String(garbage.trailers['grpc-message'])), /MP_XDS_BAD_REQUEST/);
  });

  it('sends a whole CDS response framed for gRPC, and ends the stream with OK when meshpilot shuts down', async (t) => {
    const dir = await MeshDir.create();
    await dir.write('mesh.yaml', toYaml([service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.10')]));
    const meshpilot = await startMeshpilot(dir.path);
    t.after(async () => {
      await dir.remove();
    });
    const request = encodeDiscoveryRequestJson({ node: { id: 'sidecar~10.0.0.9~x.default~default.svc.cluster.local' }, type_url: CLUSTER_TYPE });
    const done = exchange(meshpilot.xdsPort, { ':path': ADS }, frame(0, request), (stream) => {
      stream.once('data', () => {
        void meshpilot.close();
      });
    });
    const result = await done;
    assert.equal(result.trailers['grpc-status'], '0', 'a server going away ends streams with OK, so clients reconnect');
    assert.equal(result.data[0], 0, 'not compressed');
    const length = result.data.readUInt32BE(1);
    const type = messageType('envoy.service.discovery.v3.DiscoveryResponse');
    const response = messageToJson(type, type.decode(result.data.subarray(5, 5 + length))) as { resources: { name: string }[]; type_url: string };
    assert.equal(response.type_url, CLUSTER_TYPE);
    assert.ok(response.resources.some((r) => r.name === 'outbound|9080||reviews.default.svc.cluster.local'));
  });
});

describe('requests that arrive in pieces', () => {
  it('reads a subscription of thousands of names split across writes, and two requests in one write', async (t) => {
    const dir = await MeshDir.create();
    await dir.write('mesh.yaml', toYaml([service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.10')]));
    const meshpilot = await startMeshpilot(dir.path);
    t.after(async () => {
      await meshpilot.close();
      await dir.remove();
    });
    const wanted = 'outbound|9080||reviews.default.svc.cluster.local';
    const names = [...Array.from({ length: 3000 }, (_, i) => `outbound|9080||missing-${i}.default.svc.cluster.local`), wanted];
    const first = encodeDiscoveryRequestJson({ node: { id: 'sidecar~10.0.0.9~x.default~default.svc.cluster.local' }, type_url: ENDPOINT_TYPE, resource_names: names });
    const prefix = (message: Buffer): Buffer => {
      const out = Buffer.alloc(5 + message.length);
      out.writeUInt32BE(message.length, 1);
      message.copy(out, 5);
      return out;
    };
    const session = http2.connect(`http://127.0.0.1:${meshpilot.xdsPort}`);
    t.after(() => {
      session.close();
    });
    const stream = session.request({ ':method': 'POST', ':path': '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', 'content-type': 'application/grpc', te: 'trailers' });
    const type = messageType('envoy.service.discovery.v3.DiscoveryResponse');
    const responses: { resources: { cluster_name: string }[]; nonce: string; version_info: string }[] = [];
    let pending = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const length = pending.readUInt32BE(1);
        responses.push(messageToJson(type, type.decode(pending.subarray(5, 5 + length))) as never);
        pending = pending.subarray(5 + length);
      }
    });
    const whole = prefix(first);
    assert.ok(whole.length > 100_000, 'larger than any single HTTP/2 frame');
    // In three pieces, each its own write, so the server sees the message in several chunks.
    const cuts = [0, 3, Math.floor(whole.length / 2), whole.length];
    for (let i = 0; i < 3; i++) {
      stream.write(whole.subarray(cuts[i], cuts[i + 1]));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const answered = await eventually(() => responses[0]);
    assert.deepEqual(answered.resources.map((r) => r.cluster_name), [wanted]);
    // An ACK and a narrower subscription in one write: both are read, in order.
    const ack = encodeDiscoveryRequestJson({ type_url: ENDPOINT_TYPE, resource_names: names, version_info: answered.version_info, response_nonce: answered.nonce });
    const narrower = encodeDiscoveryRequestJson({ type_url: ENDPOINT_TYPE, resource_names: [wanted], version_info: answered.version_info, response_nonce: answered.nonce });
    stream.write(Buffer.concat([prefix(ack), prefix(narrower)]));
    const connection = await eventually(() => meshpilot.adsServer.connections().find((c) => c.watches.get(ENDPOINT_TYPE)?.names?.length === 1));
    assert.deepEqual(connection.watches.get(ENDPOINT_TYPE)?.names, [wanted]);
    assert.equal(connection.watches.get(ENDPOINT_TYPE)?.requests, 3);
    stream.close();
  });
});
