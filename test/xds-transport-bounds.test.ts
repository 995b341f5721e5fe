// The xDS port under abuse: whatever a client sends, meshpilot holds a bounded amount of it.
// A call it has refused is reset and its further bytes dropped; a message is bounded in size
// and in time; a connection is bounded in streams and in buffered bytes; a request is bounded in
// names and in the length of its node id.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ADS_DELTA_PATH } from './support/delta-client.ts';
import { ADS_SOTW_PATH } from './support/ads-client.ts';
import { MeshDir, eventually } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { FRAME, H2Call, H2_ERROR, RawH2Client, errorCodeOf, grpcMessage } from './support/raw-h2.ts';
import { encodeDeltaDiscoveryRequestJson, encodeDiscoveryRequestJson } from '../src/xds/server/messages.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '../src/xds/type-urls.ts';

const MiB = 1 << 20;
const NODE = 'sidecar~10.0.0.9~x.default~default.svc.cluster.local';

describe('a call meshpilot has refused', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  before(async () => {
    dir = await MeshDir.create();
    meshpilot = await startMeshpilot(dir.path);
  });
  after(async () => {
    await meshpilot.close();
    await dir.remove();
  });

  const cases = [
    { name: 'a 500 MB length prefix', headers: {}, first: grpcMessage(Buffer.alloc(0), false, 500_000_000), status: 8, message: /larger than the limit of 4194304/ },
    { name: 'a compressed message without grpc-encoding', headers: {}, first: grpcMessage(Buffer.alloc(16), true), status: 13, message: /no grpc-encoding/ },
    { name: 'a message compressed with an encoding meshpilot does not read', headers: { 'grpc-encoding': 'snappy' }, first: grpcMessage(Buffer.alloc(16), true), status: 12, message: /snappy is not supported; use one of identity,deflate,gzip/ },
  ];
  for (const { name, headers, first, status, message } of cases) {
    it(`answers ${name}, resets the stream after the trailers, and keeps none of the 40 MiB sent after`, async (t) => {
      const call = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH, headers);
      t.after(() => {
        call.close();
      });
      await call.write(first);
      const answered = await call.status;
      assert.equal(answered.code, status);
      assert.match(answered.message, message);
      // The client does not listen and keeps sending; before the reset it could send forever.
      const sent = await call.flood(Buffer.alloc(MiB, 0x61), 40 * MiB);
      assert.equal(await call.closed, H2_ERROR.NO_ERROR, 'RST_STREAM NO_ERROR after the trailers, as grpc-go does');
      assert.ok(sent < 40 * MiB, `the stream was reset before the client could send 40 MiB (sent ${sent})`);
      assert.equal(meshpilot.adsServer.transportStats().bufferedBytes, 0, 'nothing of the call is held');
    });
  }
});

describe('bounded partial messages', () => {
  it('refuses, with RESOURCE_EXHAUSTED, a stream that would take its connection past its receive buffer limit', async (t) => {
    const dir = await MeshDir.create();
    const meshpilot = await startMeshpilot(dir.path, { xdsMaxConnectionBufferBytes: 2 * MiB });
    const first = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH);
    const second = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH, {}, first.session);
    const other = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH);
    t.after(async () => {
      first.close();
      other.close();
      await meshpilot.close();
      await dir.remove();
    });
    // Two halves of 3 MiB messages on one connection: 1.5 MiB + 1.5 MiB is past its 2 MiB.
    const half = grpcMessage(Buffer.alloc(1.5 * MiB), false, 3 * MiB);
    await first.write(half);
    await eventuallyBuffered(meshpilot, half.length);
    await second.write(half);
    const refused = await second.status;
    assert.equal(refused.code, 8);
    assert.match(refused.message, /this connection holds 2097152 bytes of unfinished messages, its limit/);
    // Another connection has a budget of its own.
    await other.write(half);
    await eventuallyBuffered(meshpilot, 2 * half.length);
    assert.ok(meshpilot.adsServer.transportStats().bufferedBytes <= 2 * 2 * MiB);
  });

  it('resets a stream whose message does not complete in time', async (t) => {
    const dir = await MeshDir.create();
    const meshpilot = await startMeshpilot(dir.path, { xdsTransportTuning: { messageTimeoutMs: 300 } });
    const call = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH);
    t.after(async () => {
      call.close();
      await meshpilot.close();
      await dir.remove();
    });
    await call.write(grpcMessage(Buffer.alloc(MiB), false, 2 * MiB));
    const status = await call.status;
    assert.equal(status.code, 8);
    assert.match(status.message, /not completed within 300 ms/);
    assert.equal(await call.closed, H2_ERROR.NO_ERROR);
    assert.equal(meshpilot.adsServer.transportStats().bufferedBytes, 0);
  });

  it('advertises 128 streams per connection in SETTINGS and refuses streams past the limit one by one, the connection going on', async (t) => {
    const dir = await MeshDir.create();
    const defaults = await startMeshpilot(dir.path);
    const limited = await startMeshpilot(dir.path, { xdsMaxStreamsPerConnection: 2 });
    const clients: RawH2Client[] = [];
    t.after(async () => {
      for (const c of clients) c.close();
      await defaults.close();
      await limited.close();
      await dir.remove();
    });
    const plain = await RawH2Client.connect(defaults.xdsPort);
    clients.push(plain);
    await plain.waitFor((f) => f.type === FRAME.SETTINGS);
    assert.equal(plain.setting(3), 128, 'SETTINGS_MAX_CONCURRENT_STREAMS');
    // Four streams at once, before the client has read the server's SETTINGS.
    const eager = await RawH2Client.connect(limited.xdsPort);
    clients.push(eager);
    for (const id of [1, 3, 5, 7]) eager.openCall(id, ADS_SOTW_PATH);
    eager.ping();
    await eager.waitFor((f) => f.type === FRAME.PING && (f.flags & 1) === 1);
    for (const id of [5, 7]) {
      const reset = await eager.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === id);
      assert.equal(errorCodeOf(reset), H2_ERROR.REFUSED_STREAM, `stream ${id} is refused`);
    }
    for (const id of [1, 3]) assert.ok(eager.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === id), `stream ${id} is served`);
    assert.ok(!eager.frames.some((f) => f.type === FRAME.GOAWAY), 'the connection is not closed');
  });

  it('joins a 3 MiB message sent in pieces without keeping a scratch buffer of its size', async (t) => {
    const dir = await MeshDir.create();
    const meshpilot = await startMeshpilot(dir.path);
    const call = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH);
    t.after(async () => {
      call.close();
      await meshpilot.close();
      await dir.remove();
    });
    const names = Array.from({ length: 60_000 }, (_, i) => `outbound|9080||service-${i}.default.svc.cluster.local`);
    const request = grpcMessage(encodeDiscoveryRequestJson({ node: { id: NODE }, type_url: ENDPOINT_TYPE, resource_names: names }));
    assert.ok(request.length > 3 * MiB);
    for (let offset = 0; offset < request.length; offset += MiB / 2) await call.write(request.subarray(offset, offset + MiB / 2));
    await eventually(() => meshpilot.adsServer.connections().find((c) => c.watches.get(ENDPOINT_TYPE)?.names?.length === names.length));
    assert.ok(meshpilot.adsServer.transportStats().scratchBytes <= MiB, `scratch space stays at most 1 MiB (${meshpilot.adsServer.transportStats().scratchBytes})`);
  });
});

describe('requests too big to show or to read', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  const lines: string[] = [];
  before(async () => {
    dir = await MeshDir.create();
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    meshpilot = await startMeshpilot(dir.path, { log: pino({ level: 'debug' }, sink) });
  });
  after(async () => {
    await meshpilot.close();
    await dir.remove();
  });

  it('refuses a 10 MiB node id by size, and a 2 MiB one by length, never showing or logging it', async (t) => {
    const huge = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH);
    const long = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH);
    t.after(() => {
      huge.close();
      long.close();
    });
    await huge.write(grpcMessage(encodeDiscoveryRequestJson({ node: { id: 'x'.repeat(10 * MiB) }, type_url: CLUSTER_TYPE })));
    assert.equal((await huge.status).code, 8);
    await long.write(grpcMessage(encodeDiscoveryRequestJson({ node: { id: 'y'.repeat(2 * MiB) }, type_url: CLUSTER_TYPE })));
    const refused = await long.status;
    assert.equal(refused.code, 3);
    assert.match(refused.message, /node id is 2097152 characters long; at most 1024 are accepted/);
    const adsz = await (await meshpilot.admin('/debug/adsz')).text();
    assert.ok(adsz.length < 10_000, 'nothing of it in /debug/adsz');
    assert.ok(lines.length > 0 && lines.every((l) => l.length < 4096), 'no log line carries it');
  });

  for (const { mode, path, encode } of [
    { mode: 'SotW', path: ADS_SOTW_PATH, encode: (names: string[]) => encodeDiscoveryRequestJson({ node: { id: NODE }, type_url: ENDPOINT_TYPE, resource_names: names }) },
    { mode: 'Delta', path: ADS_DELTA_PATH, encode: (names: string[]) => encodeDeltaDiscoveryRequestJson({ node: { id: NODE }, type_url: ENDPOINT_TYPE, resource_names_subscribe: names }) },
  ]) {
    it(`refuses a ${mode} request naming 1,000,000 resources with INVALID_ARGUMENT`, async (t) => {
      const call = new H2Call(meshpilot.xdsPort, path);
      t.after(() => {
        call.close();
      });
      await call.write(grpcMessage(encode(Array.from({ length: 1_000_000 }, (_, i) => (i % 36).toString(36)))));
      const status = await call.status;
      assert.equal(status.code, 3);
      assert.match(status.message, /names more than 100000 resources/);
      assert.equal(meshpilot.adsServer.connections().length, 0, 'not counted as a proxy');
    });
  }
});

function eventuallyBuffered(meshpilot: TestMeshpilot, bytes: number): Promise<true> {
  return eventually(() => (meshpilot.adsServer.transportStats().bufferedBytes >= bytes ? true : undefined));
}
