// The gRPC features clients rely on, on the xDS port: gzip-compressed requests (grpc-js with
// compression on), grpc-timeout, connection errors logged once and counted, and grpc-go's
// keepalive enforcement against PING floods.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../src/xds/protos.ts';
import { encodeDiscoveryRequestJson } from '../src/xds/server/messages.ts';
import { CLUSTER_TYPE } from '../src/xds/type-urls.ts';
import { ADS_SOTW_PATH } from './support/ads-client.ts';
import { rawMethod } from './support/backends.ts';
import { MeshDir, eventually, service, toYaml } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { parsePrometheusText } from './support/prom-text.ts';
import { FRAME, H2Call, H2_ERROR, RawH2Client, errorCodeOf, grpcMessage } from './support/raw-h2.ts';

const NODE = 'sidecar~10.0.0.9~x.default~default.svc.cluster.local';
const CDS_REQUEST = encodeDiscoveryRequestJson({ node: { id: NODE, user_agent_name: 'envoy' }, type_url: CLUSTER_TYPE });

describe('gRPC features of the xDS port', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  before(async () => {
    dir = await MeshDir.create();
    await dir.write('mesh.yaml', toYaml([service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.10')]));
    meshpilot = await startMeshpilot(dir.path, { xdsTransportTuning: { minPingIntervalMs: 60_000 } });
  });
  after(async () => {
    await meshpilot.close();
    await dir.remove();
  });

  it('serves a grpc-js client that compresses its requests with gzip', async (t) => {
    const client = new grpc.Client(`127.0.0.1:${meshpilot.xdsPort}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip });
    const method = rawMethod(ADS_SOTW_PATH, true);
    const stream = client.makeBidiStreamRequest(ADS_SOTW_PATH, method.requestSerialize, method.responseDeserialize);
    t.after(() => {
      stream.cancel();
      client.close();
    });
    stream.on('error', () => undefined);
    const response = new Promise<Buffer>((resolve) => stream.once('data', resolve));
    const compressedBefore = meshpilot.adsServer.transportStats().compressedMessages;
    stream.write(CDS_REQUEST);
    const type = messageType('envoy.service.discovery.v3.DiscoveryResponse');
    const decoded = type.toObject(type.decode(await response)) as { type_url: string; version_info: string; nonce: string; resources: unknown[] };
    assert.equal(decoded.type_url, CLUSTER_TYPE);
    assert.ok(decoded.resources.length > 0);
    // grpc-js compresses once the server has said it reads gzip: the ACK goes compressed.
    stream.write(encodeDiscoveryRequestJson({ type_url: CLUSTER_TYPE, version_info: decoded.version_info, response_nonce: decoded.nonce }));
    const connection = await eventually(() => meshpilot.adsServer.connections().find((c) => c.proxy?.id === NODE && c.watches.get(CLUSTER_TYPE)?.acked !== undefined));
    assert.equal(connection.watches.get(CLUSTER_TYPE)?.acked?.nonce, decoded.nonce);
    assert.ok(meshpilot.adsServer.transportStats().compressedMessages > compressedBefore, 'a message arrived gzip-compressed');
  });

  it("tells a grpc-js client why its call failed in the server's own words (grpc-message per the gRPC spec)", async (t) => {
    const client = new grpc.Client(`127.0.0.1:${meshpilot.xdsPort}`, grpc.credentials.createInsecure());
    t.after(() => {
      client.close();
    });
    const method = rawMethod('/no.such.Service/Method');
    const error = await new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, Buffer.alloc(0), (failure) => {
        resolve(failure);
      });
    });
    assert.equal(error?.code, grpc.status.UNIMPLEMENTED, error?.details);
    assert.equal(error.details, 'unknown method /no.such.Service/Method');
  });

  it('reads a gzip request framed by hand, and refuses one that decompresses past the message limit', async (t) => {
    const good = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH, { 'grpc-encoding': 'gzip' });
    const bomb = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH, { 'grpc-encoding': 'gzip' });
    t.after(() => {
      good.close();
      bomb.close();
    });
    assert.equal((await good.headers)['grpc-accept-encoding'], 'identity,deflate,gzip', 'the encodings it reads are advertised');
    await good.write(grpcMessage(gzipSync(CDS_REQUEST), true));
    await eventually(() => (good.received.length > 0 ? true : undefined));
    // 5 MiB of zeros is a few kilobytes compressed: the bound applies to what it becomes.
    const zeros = gzipSync(Buffer.alloc(5 << 20));
    assert.ok(zeros.length < 64 * 1024);
    await bomb.write(grpcMessage(zeros, true));
    const status = await bomb.status;
    assert.equal(status.code, 8);
    assert.match(status.message, /decompressed message is larger than the limit of 4194304 bytes/);
  });

  it('ends a call with DEADLINE_EXCEEDED when its grpc-timeout passes', async (t) => {
    const call = new H2Call(meshpilot.xdsPort, ADS_SOTW_PATH, { 'grpc-timeout': '300m' });
    t.after(() => {
      call.close();
    });
    await call.write(grpcMessage(CDS_REQUEST));
    await eventually(() => meshpilot.adsServer.connections().find((c) => c.proxy?.id === NODE));
    const status = await call.status;
    assert.equal(status.code, 4);
    assert.match(status.message, /grpc-timeout/);
    assert.equal(await call.closed, H2_ERROR.NO_ERROR);
    await eventually(() => (meshpilot.adsServer.connections().length === 0 ? true : undefined));
  });

  it('counts a connection that breaks the protocol in /metrics', async (t) => {
    const before = meshpilot.adsServer.transportStats().sessionErrors;
    const client = await RawH2Client.connect(meshpilot.xdsPort);
    t.after(() => {
      client.close();
    });
    // More streams than the SETTINGS it has acknowledged allow: node:http2 ends the connection.
    await client.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & 1) === 1);
    for (let id = 1; id <= 2 * 129; id += 2) client.openCall(id, ADS_SOTW_PATH);
    await client.waitFor((f) => f.type === FRAME.GOAWAY);
    await eventually(() => (meshpilot.adsServer.transportStats().sessionErrors > before ? true : undefined));
    const metrics = parsePrometheusText(await (await meshpilot.admin('/metrics')).text());
    assert.ok((metrics.value('meshpilot_xds_session_errors') ?? 0) > before);
  });

  it('tells a peer that PINGs without pause to calm down (GOAWAY ENHANCE_YOUR_CALM, too_many_pings), as grpc-go does', async (t) => {
    const client = await RawH2Client.connect(meshpilot.xdsPort);
    t.after(() => {
      client.close();
    });
    // grpc-go allows two strikes: three quick PINGs are answered, the fourth is one too many.
    for (let i = 0; i < 3; i++) client.ping(Buffer.from(`ping-${i}\0\0`));
    for (let i = 0; i < 3; i++) await client.waitFor((f) => f.type === FRAME.PING && (f.flags & 1) === 1 && f.payload.toString().startsWith(`ping-${i}`));
    assert.ok(!client.frames.some((f) => f.type === FRAME.GOAWAY));
    client.ping(Buffer.from('ping-3\0\0'));
    const goaway = await client.waitFor((f) => f.type === FRAME.GOAWAY);
    assert.equal(errorCodeOf(goaway), H2_ERROR.ENHANCE_YOUR_CALM);
    assert.equal(goaway.payload.subarray(8).toString(), 'too_many_pings');
    const metrics = parsePrometheusText(await (await meshpilot.admin('/metrics')).text());
    assert.equal(metrics.value('meshpilot_xds_too_many_pings'), 1);
  });
});
