// A pod's agent gets its workload certificate from the CA, renews it before it expires, and
// keeps serving the one it has while the CA is failing; its key never leaves it.
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, type webcrypto } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { x509 } from '../src/security/x509.ts';
import { CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE } from '../src/security/names.ts';
import { startFakeCa, type FakeCa } from './support/fake-istio-ca.ts';
import { eventually, startTestAgent } from './support/agent-harness.ts';

const PRODUCTPAGE = 'spiffe://cluster.local/ns/default/sa/productpage';

async function statusOf(port: number | undefined, path = '/status'): Promise<{ code: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${String(port)}${path}`);
  return { code: response.status, body: await response.text() };
}

describe('meshpilot agent: the workload certificate', () => {
  let ca: FakeCa;
  before(async () => {
    ca = await startFakeCa();
  });
  after(async () => {
    await ca.close();
  });

  it("asks for productpage's identity with a CSR made here and its token, and writes the files gRPC reads", async () => {
    const pod = await startTestAgent(ca, { sdsSocket: undefined });
    try {
      assert.equal((await statusOf(pod.agent.statusPort, '/healthz')).code, 503, 'not ready before a certificate is held');
      await pod.agent.certificate.ready();
      const call = ca.calls.at(-1);
      assert.ok(call);
      assert.equal(call.token, 'token-for-productpage-1');
      assert.deepEqual(call.identities, [PRODUCTPAGE]);
      assert.equal(call.validitySeconds, 86_400);
      const csr = new x509.Pkcs10CertificateRequest(call.csrPem);
      assert.deepEqual(csr.publicKey.algorithm, { name: 'ECDSA', namedCurve: 'P-256' });
      assert.equal(csr.extensions.length, 1, 'one extension: the SAN');

      const files = await eventually('the files', () => pod.agent.status().files?.lastWrite);
      assert.ok(files);
      const keyPem = await readFile(join(pod.outputDir, KEY_FILE), 'utf8');
      assert.equal((await stat(join(pod.outputDir, KEY_FILE))).mode & 0o777, 0o600);
      const leaf = new X509Certificate(await readFile(join(pod.outputDir, CERT_CHAIN_FILE), 'utf8'));
      assert.equal(leaf.subjectAltName, `URI:${PRODUCTPAGE}`);
      assert.ok(leaf.checkPrivateKey(createPrivateKey(keyPem)), 'key.pem is the key of cert-chain.pem');
      assert.ok(leaf.verify(new X509Certificate(ca.root.certPem).publicKey), 'signed by the root');
      assert.equal(await readFile(join(pod.outputDir, ROOT_CERT_FILE), 'utf8'), `${ca.root.certPem.trim()}\n`);

      assert.equal((await statusOf(pod.agent.statusPort, '/healthz')).code, 200);
      const status = JSON.parse((await statusOf(pod.agent.statusPort)).body) as Record<string, unknown>;
      assert.equal(status['identity'], PRODUCTPAGE);
      assert.equal(status['serial'], leaf.serialNumber.toLowerCase());
      assert.equal(status['notAfter'], new Date(leaf.validTo).toISOString());

      const keyBody = keyPem.split('\n').slice(1, -2).join('');
      assert.ok(!call.csrPem.includes(keyBody) && !pod.logText().includes(keyBody.slice(0, 40)), 'the key is neither sent nor logged');
      assert.ok(!pod.logText().includes('token-for-productpage-1'), 'the token is not logged');
    } finally {
      await pod.close();
    }
  });

  it('makes an RSA 2048 key when asked', async () => {
    const pod = await startTestAgent(ca, { sdsSocket: undefined, outputDir: undefined, keyType: 'rsa-2048' });
    try {
      await pod.agent.certificate.ready();
      const csr = new x509.Pkcs10CertificateRequest(ca.calls.at(-1)?.csrPem ?? '');
      assert.equal((csr.publicKey.algorithm as webcrypto.RsaHashedKeyAlgorithm).modulusLength, 2048);
    } finally {
      await pod.close();
    }
  });

  it('refuses a CA whose serving certificate does not carry the expected name, and says so', async () => {
    const pod = await startTestAgent(ca, { sdsSocket: undefined, outputDir: undefined, ca: { address: ca.address, serverName: 'impostor.example.svc', rootCertFile: ca.rootFile, tokenFile: '/nonexistent', deadlineMs: 2000 } });
    try {
      await pod.setToken('x');
      const status = await eventually('two failed attempts', () => {
        const current = pod.agent.status();
        return current.failures >= 2 ? current : undefined;
      });
      assert.equal(status.ready, false);
      assert.match(status.lastError ?? '', /impostor\.example\.svc|altnames|no such file/);
      const health = await statusOf(pod.agent.statusPort, '/healthz');
      assert.equal(health.code, 503);
      assert.match(pod.logText(), /MP_AGENT_CERTIFICATE: .*no certificate is held yet; retrying in \d+ ms/);
    } finally {
      await pod.close();
    }
  });

  it('gives up on a CA that does not answer within the deadline, and tries again', async () => {
    ca.failWith('stall');
    const pod = await startTestAgent(ca, { sdsSocket: undefined, outputDir: undefined, ca: { address: ca.address, serverName: 'meshpilot.meshpilot-system.svc', rootCertFile: ca.rootFile, tokenFile: '/dev/null', deadlineMs: 200 } });
    try {
      const status = await eventually('two attempts past their deadline', () => {
        const current = pod.agent.status();
        return current.failures >= 2 ? current : undefined;
      });
      assert.match(status.lastError ?? '', /did not answer within 200 ms/);
      ca.failWith(undefined);
      await pod.agent.certificate.ready();
    } finally {
      ca.failWith(undefined);
      await pod.close();
    }
  });

  it('is not ready once its certificate has expired with the CA still refusing, and says why', async () => {
    // A 2-second certificate (backdated 1 s): it expires a second after it is issued.
    ca.capValidity(1);
    const pod = await startTestAgent(ca, { sdsSocket: undefined, outputDir: undefined });
    try {
      await pod.agent.certificate.ready();
      ca.failWith({ code: grpc.status.PERMISSION_DENIED, message: 'the token is not for default/productpage' });
      // Expiry and the refused renewal can come in either order: wait until /healthz says both.
      const health = await eventually('/healthz 503 with the CA refusal', async () => {
        const answer = await statusOf(pod.agent.statusPort, '/healthz');
        return answer.code === 503 && answer.body.includes('the CA refused') ? answer : undefined;
      });
      assert.match(health.body, /^the certificate expired at .*: the CA refused the certificate request: the token is not for default\/productpage/);
      assert.equal(pod.agent.certificate.secrets().size, 2, 'the expired certificate is still what SDS serves');
    } finally {
      ca.failWith(undefined);
      ca.capValidity(undefined);
      await pod.close();
    }
  });

  it('renews at about 80% of the lifetime, presenting its current certificate and the rotated token; files are always whole', async () => {
    ca.capValidity(2);
    const pod = await startTestAgent(ca, { sdsSocket: undefined });
    try {
      await pod.agent.certificate.ready();
      const first = pod.agent.certificate.held;
      assert.ok(first);
      const { notAfter } = first.facts;
      const { nextRotation, lastRotation } = pod.agent.status();
      // The lifetime from when it arrived (notBefore is backdated for clock skew).
      const issued = new Date(lastRotation ?? 0).getTime();
      const fraction = (new Date(nextRotation ?? 0).getTime() - issued) / (notAfter.getTime() - issued);
      assert.ok(fraction > 0.74 && fraction <= 0.8, `renewal planned at ${fraction.toFixed(3)} of the lifetime`);
      await eventually('the first files', () => pod.agent.status().files?.lastWrite);
      const callsBefore = ca.calls.length;
      await pod.setToken('token-for-productpage-2');
      let reads = 0;
      const torn: string[] = [];
      while (pod.agent.status().rotations < 2) {
        const [chain, key] = await Promise.all([readFile(join(pod.outputDir, CERT_CHAIN_FILE), 'utf8'), readFile(join(pod.outputDir, KEY_FILE), 'utf8')]);
        try {
          new X509Certificate(chain);
          createPrivateKey(key);
        } catch {
          torn.push(chain.length > 0 ? chain.slice(-40) : '(empty)');
        }
        reads++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.deepEqual(torn, [], `of ${reads} reads during two rotations, none saw half a file`);
      const renewal = ca.calls[callsBefore];
      assert.ok(renewal);
      assert.equal(renewal.token, 'token-for-productpage-2', 'the token is read again for every call');
      assert.equal(renewal.clientIdentity, PRODUCTPAGE, 'the current certificate is presented while valid');
      assert.notEqual(pod.agent.certificate.held.facts.serial, first.facts.serial);
      assert.notEqual(pod.agent.certificate.held.privateKeyPem, first.privateKeyPem, 'a new key for every certificate');
    } finally {
      ca.capValidity(undefined);
      await pod.close();
    }
  });

  it('keeps serving its certificate while the CA refuses, retries with backoff, and recovers', async () => {
    // 4-second certificates (backdated 1 s) renewed at half their life: the retries happen well before expiry.
    ca.capValidity(3);
    const pod = await startTestAgent(ca, { sdsSocket: undefined, outputDir: undefined, retryMaxMs: 200, renewAt: 0.5 });
    try {
      await pod.agent.certificate.ready();
      const serial = pod.agent.certificate.held?.facts.serial;
      ca.failWith({ code: grpc.status.UNAVAILABLE, message: 'the CA is restarting' });
      const failing = await eventually('three refused renewals', () => {
        const status = pod.agent.status();
        return status.failures >= 3 ? status : undefined;
      });
      assert.equal(failing.serial, serial, 'the current certificate is still served');
      assert.equal(failing.ready, true);
      assert.match(failing.lastError ?? '', /the CA is restarting/);
      assert.match(pod.logText(), /MP_AGENT_CERTIFICATE: the CA refused the certificate request: the CA is restarting; the current certificate .*still served; retrying in \d+ ms/);
      assert.equal((await statusOf(pod.agent.statusPort, '/healthz')).code, 200);
      ca.failWith(undefined);
      const recovered = await eventually('a renewal once the CA answers', () => {
        const status = pod.agent.status();
        return status.rotations >= 1 ? status : undefined;
      });
      assert.notEqual(recovered.serial, serial);
      assert.equal(recovered.lastError, undefined);
    } finally {
      ca.failWith(undefined);
      ca.capValidity(undefined);
      await pod.close();
    }
  });
});
