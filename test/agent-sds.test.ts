// Envoy's side of the agent, spoken by raw xDS clients on the Unix socket: the `default` and
// `ROOTCA` secrets over StreamSecrets (state of the world) and DeltaSecrets, pushed again when
// the certificate rotates, ACKs answered with silence, NACKs logged with Envoy's reason.
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { SdsServer, SDS_DELTA_PATH, SDS_SOTW_PATH } from '../src/agent/sds-server.ts';
import { SECRET_TYPE } from '../src/xds/type-urls.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { RawAdsClient, ADS_SOTW_PATH } from './support/ads-client.ts';
import { RawDeltaClient } from './support/delta-client.ts';
import { startFakeCa, type FakeCa } from './support/fake-istio-ca.ts';
import { eventually, startTestAgent, type AgentUnderTest } from './support/agent-harness.ts';

const NODE = 'sidecar~127.0.0.1~productpage-v1-0.default~default.svc.cluster.local';

function pemOf(secret: JsonObject, ...path: string[]): string {
  let at: unknown = secret;
  for (const key of path) at = (at as Record<string, unknown>)[key];
  return Buffer.from((at as { inline_bytes: string }).inline_bytes, 'base64').toString('utf8');
}

describe('meshpilot agent: SDS on a Unix socket', () => {
  let ca: FakeCa;
  let pod: AgentUnderTest;
  before(async () => {
    ca = await startFakeCa();
    // Every certificate lives 3 s: rotations come every ~1.4 s for the tests to watch.
    ca.capValidity(2);
    pod = await startTestAgent(ca, { outputDir: undefined });
    await pod.agent.certificate.ready();
  });
  after(async () => {
    await pod.close();
    await ca.close();
  });

  it('serves `default` and `ROOTCA` over StreamSecrets, silent after an ACK, and pushes the rotated certificate', async () => {
    const workload = new RawAdsClient(`unix:${pod.sdsSocket}`, NODE, {}, SDS_SOTW_PATH);
    const roots = new RawAdsClient(`unix:${pod.sdsSocket}`, NODE, {}, SDS_SOTW_PATH);
    try {
      workload.send({ typeUrl: SECRET_TYPE, names: ['default'] });
      roots.send({ typeUrl: SECRET_TYPE, names: ['ROOTCA'] });
      const first = await workload.next();
      const [secret] = first.resources;
      assert.ok(secret);
      assert.equal(secret['name'], 'default');
      const leaf = new X509Certificate(pemOf(secret, 'tls_certificate', 'certificate_chain'));
      assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/productpage');
      assert.ok(leaf.checkPrivateKey(createPrivateKey(pemOf(secret, 'tls_certificate', 'private_key'))));
      const root = (await roots.next()).resources[0];
      assert.ok(root);
      assert.equal(root['name'], 'ROOTCA');
      assert.equal(pemOf(root, 'validation_context', 'trusted_ca').trim(), ca.root.certPem.trim());

      workload.ack(first, ['default']);
      const rotated = await workload.next((r) => r.version_info !== first.version_info, 1, 5000);
      const newLeaf = new X509Certificate(pemOf(rotated.resources[0] ?? {}, 'tls_certificate', 'certificate_chain'));
      assert.notEqual(newLeaf.serialNumber, leaf.serialNumber);
      assert.equal(workload.responses.indexOf(rotated), 1, 'nothing between the first response and the rotation: the ACK got no answer');

      // Envoy rejects it: the agent logs why, and does not send the same thing again.
      workload.send({ typeUrl: SECRET_TYPE, names: ['default'], version: first.version_info, nonce: rotated.nonce, error: 'Failed to load certificate chain from <inline>' });
      await eventually('the NACK in the log', () => pod.logText().includes('Failed to load certificate chain from <inline>'));
      assert.match(pod.logText(), /MP_XDS_NACK: Envoy rejected SDS secrets: Failed to load certificate chain/);
    } finally {
      workload.close();
      roots.close();
    }
  });

  it('answers the same secret with the same version on every stream (a content hash)', async () => {
    const a = new RawAdsClient(`unix:${pod.sdsSocket}`, NODE, {}, SDS_SOTW_PATH);
    const b = new RawAdsClient(`unix:${pod.sdsSocket}`, NODE, {}, ADS_SOTW_PATH);
    try {
      a.send({ typeUrl: SECRET_TYPE, names: ['ROOTCA'] });
      b.send({ typeUrl: SECRET_TYPE, names: ['ROOTCA'] });
      const [ra, rb] = await Promise.all([a.next(), b.next()]);
      assert.equal(ra.version_info, rb.version_info, 'the ADS path serves the same secrets');
      // The root does not change when the leaf rotates: no push for ROOTCA.
      const rotations = pod.agent.status().rotations;
      await eventually('a rotation', () => pod.agent.status().rotations > rotations);
      assert.deepEqual(await a.quiet(100, 1), []);
    } finally {
      a.close();
      b.close();
    }
  });

  it('does not answer a SotW request for a secret it does not hold, and logs the name', async () => {
    const client = new RawAdsClient(`unix:${pod.sdsSocket}`, NODE, {}, SDS_SOTW_PATH);
    try {
      client.send({ typeUrl: SECRET_TYPE, names: ['kubernetes://reviews-credential'] });
      await eventually('the log line', () => pod.logText().includes('kubernetes://reviews-credential'));
      assert.deepEqual(await client.quiet(100, 0), []);
    } finally {
      client.close();
    }
  });

  it('serves DeltaSecrets: both secrets, unknown names as removed, a reconnect with current versions gets nothing, a rotation only `default`', async () => {
    const delta = new RawDeltaClient(`unix:${pod.sdsSocket}`, NODE, {}, SDS_DELTA_PATH);
    let again: RawDeltaClient | undefined;
    try {
      delta.send({ typeUrl: SECRET_TYPE, subscribe: ['default', 'ROOTCA', 'file-cert:/etc/certs/x.pem'] });
      const first = await delta.next();
      assert.deepEqual(first.resources.map((r) => r.name).sort(), ['ROOTCA', 'default']);
      assert.deepEqual(first.removed_resources, ['file-cert:/etc/certs/x.pem']);
      delta.ack(first);
      const rotated = await delta.next(() => true, 1, 5000);
      assert.deepEqual(rotated.resources.map((r) => r.name), ['default'], 'the unchanged root is not sent again');
      delta.ack(rotated);

      const versions = Object.fromEntries([...pod.agent.certificate.secrets()].map(([name, secret]) => [name, secret.version]));
      again = new RawDeltaClient(`unix:${pod.sdsSocket}`, NODE, {}, SDS_DELTA_PATH);
      again.send({ typeUrl: SECRET_TYPE, subscribe: ['default', 'ROOTCA'], initialVersions: versions });
      const next = await again.next(() => true, 0, 5000);
      assert.deepEqual(next.resources.map((r) => r.name), ['default'], 'the reconnected stream gets only the rotation that came after');
      assert.notEqual(next.resources[0]?.version, versions['default']);
    } finally {
      delta.close();
      again?.close();
    }
  });

  it('holds an SDS request until the first certificate arrives, then answers it', async () => {
    ca.failWith({ code: grpc.status.UNAVAILABLE, message: 'the CA is not up yet' });
    const early = await startTestAgent(ca, { outputDir: undefined });
    const client = new RawAdsClient(`unix:${early.sdsSocket}`, NODE, {}, SDS_SOTW_PATH);
    try {
      client.send({ typeUrl: SECRET_TYPE, names: ['default'] });
      await eventually('a refused CA call and the stream open', () => early.agent.status().failures >= 1 && early.agent.sds?.stats.streams === 1);
      assert.deepEqual(await client.quiet(100, 0), [], 'nothing to send before a certificate is held');
      ca.failWith(undefined);
      const response = await client.next(() => true, 0, 5000);
      assert.equal(response.resources[0]?.['name'], 'default');
    } finally {
      ca.failWith(undefined);
      client.close();
      await early.close();
    }
  });

  it('replaces a stale socket left by a killed agent, and refuses to replace a file that is not a socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshpilot-sds-'));
    const source = { secrets: () => new Map(), onChange: () => undefined };
    const log = pino({ level: 'silent' });
    try {
      const socket = join(dir, 'run/socket');
      const child = spawn(process.execPath, ['-e', `require('fs').mkdirSync(${JSON.stringify(join(dir, 'run'))});require('net').createServer().listen(${JSON.stringify(socket)},()=>process.kill(process.pid,'SIGKILL'))`]);
      await new Promise((resolve) => child.once('exit', resolve));
      assert.ok((await stat(socket)).isSocket(), 'a stale socket is left');
      const sds = new SdsServer(source, log);
      await sds.listen(socket);
      const client = new RawAdsClient(`unix:${socket}`, NODE, {}, SDS_SOTW_PATH);
      client.send({ typeUrl: SECRET_TYPE, names: ['default'] });
      await eventually('the stream', () => sds.stats.streams === 1);
      client.close();
      await sds.close();

      const notSocket = join(dir, 'file');
      await writeFile(notSocket, 'data');
      await assert.rejects(new SdsServer(source, log).listen(notSocket), /exists and is not a socket/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
