// The CA without Kubernetes: a company's own intermediate plugged in from a directory (and a
// refusal to start, naming the file, when it is wrong), a self-signed root that survives a
// restart, certificate-only authentication, and a serving certificate renewed under a live stream.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate, type webcrypto } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { spiffeId } from '../src/security/names.ts';
import { ECDSA_P256, subtle, x509 } from '../src/security/x509.ts';
import { messageType } from '../src/xds/protos.ts';
import { encodeDiscoveryRequestJson } from '../src/xds/server/messages.ts';
import { CLUSTER_TYPE, LISTENER_TYPE } from '../src/xds/type-urls.ts';
import { ADS_SOTW_PATH } from './support/ads-client.ts';
import { rawMethod } from './support/backends.ts';
import { chainVerifies, createCertificate, makeCsr, secureClient } from './support/ca-client.ts';
import { eventually } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/meshpilot.js');
const BOOKINFO = join(ROOT, 'fixtures/bookinfo');
const RATINGS = spiffeId('cluster.local', 'default', 'ratings');
const DAY = 24 * 3_600_000;

interface KeyedCert {
  readonly cert: x509.X509Certificate;
  readonly keys: webcrypto.CryptoKeyPair;
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  return `${x509.PemConverter.encode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY')}\n`;
}

const pem = (cert: x509.X509Certificate): string => `${cert.toString('pem')}\n`;

/** A company root and an intermediate it signed, valid `from`..`to`. */
async function companyCa(validity: { from: Date; to: Date } = { from: new Date(Date.now() - DAY), to: new Date(Date.now() + 365 * DAY) }): Promise<{ root: KeyedCert; intermediate: KeyedCert }> {
  const rootKeys = await keyPair();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Example Corp Root CA, O=Example Corp',
    notBefore: new Date(Date.now() - 2 * DAY),
    notAfter: new Date(Date.now() + 3650 * DAY),
    keys: rootKeys,
    signingAlgorithm: ECDSA_P256,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true), await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey)],
  });
  const keys = await keyPair();
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=Mesh Intermediate CA, O=Example Corp',
    issuer: root.subject,
    notBefore: validity.from,
    notAfter: validity.to,
    publicKey: keys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)],
  });
  return { root: { cert: root, keys: rootKeys }, intermediate: { cert: intermediate, keys } };
}

/** Istio's four plug-in files in a new directory; `edit` spoils one on purpose. */
async function pluggedInDir(ca: { root: KeyedCert; intermediate: KeyedCert }, edit: Partial<Record<'ca-cert.pem' | 'ca-key.pem' | 'root-cert.pem' | 'cert-chain.pem', string>> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshpilot-cacerts-'));
  const files = {
    'ca-cert.pem': pem(ca.intermediate.cert),
    'ca-key.pem': await pkcs8Pem(ca.intermediate.keys.privateKey),
    'root-cert.pem': pem(ca.root.cert),
    'cert-chain.pem': pem(ca.intermediate.cert) + pem(ca.root.cert),
    ...edit,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

/** `meshpilot serve` with `args`: its exit code and what it printed. */
function serveAndExit(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config-dir', BOOKINFO, '--xds-port', '0', '--admin-port', '0', '--secure-port', '0', ...args], { cwd: ROOT });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("a company's own CA plugged in from --ca-dir", () => {
  let ca: Awaited<ReturnType<typeof companyCa>>;
  let dir: string;
  let meshpilot: TestMeshpilot;
  before(async () => {
    ca = await companyCa();
    dir = await pluggedInDir(ca);
    meshpilot = await startMeshpilot(BOOKINFO, { secure: { port: 0, caDir: dir, servingTtlMs: 2000 } });
  });
  after(async () => {
    await meshpilot.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('signs with the intermediate: the chain is leaf, intermediate, root', async () => {
    const security = meshpilot.security;
    assert.ok(security);
    const rootPem = pem(ca.root.cert);
    assert.equal(security.ca.rootPem, rootPem);
    // Without Kubernetes a workload's first certificate comes another way (here: signed in process).
    const first = await makeCsr({ sans: [`uri:${RATINGS}`] });
    const bootstrap = await security.ca.sign(first.csr, RATINGS, 3600);
    const client = secureClient(security.port, { rootPem, clientCert: { chainPem: bootstrap.join(''), keyPem: first.keyPem } });
    const renewed = await createCertificate(client, { csr: (await makeCsr({ sans: [`uri:${RATINGS}`] })).csr, validityDuration: 600 });
    client.close();
    assert.equal(renewed.code, grpc.status.OK, renewed.details);
    assert.equal(renewed.chain.length, 3);
    assert.equal(new X509Certificate(renewed.chain[1] ?? '').subject, 'CN=Mesh Intermediate CA\nO=Example Corp');
    assert.equal(renewed.chain[2], rootPem);
    assert.ok(chainVerifies(renewed.chain, rootPem));
    assert.equal(new X509Certificate(renewed.chain[0] ?? '').subjectAltName, `URI:${RATINGS}`);
  });

  it('says a token cannot be checked without a Kubernetes API', async () => {
    const security = meshpilot.security;
    assert.ok(security);
    const client = secureClient(security.port, { rootPem: security.ca.rootPem, token: 'a-service-account-token' });
    const result = await createCertificate(client, { csr: (await makeCsr({ sans: [`uri:${RATINGS}`] })).csr });
    client.close();
    assert.equal(result.code, grpc.status.UNAUTHENTICATED);
    assert.match(result.details, /token authentication needs the Kubernetes API \(TokenReview\).*client certificate/);
  });

  it('renews its serving certificate before it expires, and a stream open across the renewal keeps being served', async () => {
    const security = meshpilot.security;
    assert.ok(security);
    const key = await makeCsr({ sans: [`uri:${RATINGS}`] });
    const chain = await security.ca.sign(key.csr, RATINGS, 3600);
    const client = secureClient(security.port, { rootPem: security.ca.rootPem, clientCert: { chainPem: chain.join(''), keyPem: key.keyPem } });
    const method = rawMethod(ADS_SOTW_PATH, true);
    const stream = client.makeBidiStreamRequest(ADS_SOTW_PATH, method.requestSerialize, method.responseDeserialize);
    const type = messageType('envoy.service.discovery.v3.DiscoveryResponse');
    const typesSeen: string[] = [];
    let ended: string | undefined;
    stream.on('data', (bytes: Buffer) => typesSeen.push((type.toObject(type.decode(bytes)) as { type_url: string }).type_url));
    stream.on('error', (error: grpc.ServiceError) => (ended = error.details));
    stream.write(encodeDiscoveryRequestJson({ node: { id: 'sidecar~10.244.0.12~ratings-v1-1.default~default.svc.cluster.local', user_agent_name: 'envoy' }, type_url: CLUSTER_TYPE }));
    await eventually(() => (typesSeen.includes(CLUSTER_TYPE) ? true : undefined), 5000, 'CDS over TLS');
    const servedSerial = async (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: security.port, servername: 'localhost', ca: security.ca.rootPem, ALPNProtocols: ['h2'] }, () => {
          resolve(socket.getPeerX509Certificate()?.serialNumber ?? '');
          socket.destroy();
        });
        socket.on('error', reject);
      });
    const before = await servedSerial();
    await eventually(async () => ((await servedSerial()) !== before ? true : undefined), 10_000, 'a renewed serving certificate');
    stream.write(encodeDiscoveryRequestJson({ type_url: LISTENER_TYPE }));
    await eventually(() => (typesSeen.includes(LISTENER_TYPE) ? true : undefined), 5000, 'LDS on the stream opened before the renewal');
    assert.equal(ended, undefined, 'the stream was never ended');
    stream.cancel();
    client.close();
  });
});

describe('a plugged-in CA that is wrong stops meshpilot from starting, naming the file', () => {
  it('refuses a malformed certificate, an expired intermediate and a key that is not the certificate\'s', async () => {
    const good = await companyCa();
    const expired = await companyCa({ from: new Date(Date.now() - 30 * DAY), to: new Date(Date.now() - DAY) });
    const dirs = {
      malformed: await pluggedInDir(good, { 'ca-cert.pem': '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' }),
      expired: await pluggedInDir(expired),
      mismatched: await pluggedInDir(good, { 'ca-key.pem': await pkcs8Pem((await keyPair()).privateKey) }),
      missing: await pluggedInDir(good, { 'root-cert.pem': '' }),
    };
    try {
      // The command, as an operator runs it: exit code 1 and one line naming the file.
      const refused = await serveAndExit(['--ca-dir', dirs.mismatched]);
      assert.equal(refused.code, 1, refused.output);
      const fatal = refused.output.split('\n').filter((l) => l.includes('MP_CA_PLUGIN_INVALID'));
      assert.equal(fatal.length, 1, refused.output);
      assert.ok(fatal[0]?.includes(`MP_CA_PLUGIN_INVALID: ${dirs.mismatched}/ca-key.pem: the key does not match the certificate in ${dirs.mismatched}/ca-cert.pem`), fatal[0]);
      assert.doesNotMatch(refused.output, /meshpilot is serving/);
      const cases = [
        { dir: dirs.malformed, reason: `MP_CA_PLUGIN_INVALID: ${dirs.malformed}/ca-cert.pem: certificate 1 is not valid X.509` },
        { dir: dirs.expired, reason: `MP_CA_PLUGIN_INVALID: ${dirs.expired}/ca-cert.pem: the certificate expired on ` },
        { dir: dirs.missing, reason: `MP_CA_PLUGIN_INVALID: ${dirs.missing}/root-cert.pem: holds no PEM certificate` },
      ];
      for (const { dir, reason } of cases) {
        await assert.rejects(startMeshpilot(BOOKINFO, { secure: { port: 0, caDir: dir } }), (error: Error) => {
          assert.ok(error.message.startsWith(reason), error.message);
          assert.doesNotMatch(error.message, /\n/, 'one line');
          return true;
        });
      }
    } finally {
      await Promise.all(Object.values(dirs).map((dir) => rm(dir, { recursive: true, force: true })));
    }
  });
});

describe('a self-signed root in --ca-root-dir', () => {
  it('is created once and kept: a restarted meshpilot signs with the same root', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'meshpilot-root-')), 'ca');
    try {
      const first = await startMeshpilot(BOOKINFO, { secure: { port: 0, caRootDir: dir } });
      const root = first.security?.ca.rootPem;
      await first.close();
      assert.ok(root);
      assert.equal((await stat(join(dir, 'ca-key.pem'))).mode & 0o777, 0o600, 'the key is readable by meshpilot only');
      const second = await startMeshpilot(BOOKINFO, { secure: { port: 0, caRootDir: dir } });
      assert.equal(second.security?.ca.rootPem, root);
      assert.equal(second.security.ca.material.kind, 'self-signed');
      await second.close();
    } finally {
      await rm(join(dir, '..'), { recursive: true, force: true });
    }
  });
});
