// Kubernetes TLS Secrets for gateways, as a platform team sees them: a broken Secret is refused with
// the field that is wrong (never its content), names resolve as Istio resolves them, and meshpilot
// serves a Secret over ADS (SotW and Delta) only to a stream that proved it belongs to the
// Secret's namespace, pushing a change only to the proxies that hold it.
import assert from 'node:assert/strict';
import { createPrivateKey, webcrypto } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { indexCredentials, parseCredentialName } from '../src/model/credentials.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import { SECRET_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { makeCsr, secureClient } from './support/ca-client.ts';
import { RawDeltaClient } from './support/delta-client.ts';
import { createTestRoot, issueTestPair, signLeaf, type TestKeyPair } from './support/fake-istio-ca.ts';
import { FIXTURE_CREDENTIAL } from './support/fixture-credential.ts';
import { MeshDir, tlsSecret, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';

const GATEWAY_NS = 'istio-system';
const gatewayNode = (pod: string): string => `router~10.244.9.9~${pod}.${GATEWAY_NS}~${GATEWAY_NS}.svc.cluster.local`;

function convert(objects: readonly K8sObject[]): ReturnType<typeof convertObjects> {
  return convertObjects(objects.map((object) => ({ object, source: { origin: 'file', location: 'secrets.yaml' } })));
}

/** The one problem of one rejected Secret: code, field, message. */
function problemOf(secret: K8sObject): { code: string; path: string; message: string } {
  const converted = convert([secret]);
  assert.equal(converted.credentials?.length ?? 0, 0, 'the Secret is not served');
  const issue = converted.rejected[0]?.issues.find((i) => i.severity === 'error');
  assert.ok(issue, 'the Secret is rejected');
  return { code: issue.code, path: issue.path, message: issue.message };
}

describe('TLS Secrets as a source', () => {
  let other: TestKeyPair;
  before(async () => {
    other = await issueTestPair(await createTestRoot('another CA'), [{ type: 'dns', value: 'other.example.com' }]);
  });

  it('reads kubernetes.io/tls (tls.crt, tls.key, ca.crt) and generic (cert, key, cacert) Secrets; other Secrets are not read', () => {
    const converted = convert([
      tlsSecret('bookinfo', GATEWAY_NS, FIXTURE_CREDENTIAL),
      tlsSecret('generic', GATEWAY_NS, FIXTURE_CREDENTIAL, 'generic'),
      { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/service-account-token', metadata: { name: 'token', namespace: GATEWAY_NS }, data: { 'ca.crt': Buffer.from(FIXTURE_CREDENTIAL.ca).toString('base64'), token: 'dG9rZW4=' } },
    ]);
    assert.deepEqual(converted.rejected, []);
    assert.deepEqual(converted.credentials?.map((c) => [c.name, c.certificateChain === FIXTURE_CREDENTIAL.cert, c.privateKey === FIXTURE_CREDENTIAL.key, c.caCertificates === FIXTURE_CREDENTIAL.ca]), [
      ['bookinfo', true, true, true],
      ['generic', true, true, true],
    ]);
  });

  it('refuses a Secret whose value is not base64, not PEM, or whose key is another certificate\'s, naming the field and never its content', () => {
    const notBase64 = { ...tlsSecret('a', GATEWAY_NS, FIXTURE_CREDENTIAL), data: { 'tls.crt': '%%%not base64%%%', 'tls.key': Buffer.from(FIXTURE_CREDENTIAL.key).toString('base64') } };
    assert.deepEqual(problemOf(notBase64).path, 'data.tls.crt');
    const notPem = problemOf(tlsSecret('b', GATEWAY_NS, { cert: 'just text', key: FIXTURE_CREDENTIAL.key }));
    assert.deepEqual([notPem.code, notPem.path], ['MP_SECRET_INVALID', 'data.tls.crt']);
    assert.match(notPem.message, /not PEM/);
    const badKey = problemOf(tlsSecret('c', GATEWAY_NS, { cert: FIXTURE_CREDENTIAL.cert, key: 'garbage' }, 'generic'));
    assert.deepEqual([badKey.path, badKey.message], ['data.key', 'is not a PEM private key (PKCS#8, PKCS#1 or SEC1)']);
    const mismatch = problemOf(tlsSecret('d', GATEWAY_NS, { cert: FIXTURE_CREDENTIAL.cert, key: other.keyPem }));
    assert.deepEqual([mismatch.code, mismatch.path], ['MP_SECRET_INVALID', 'data.tls.key']);
    assert.match(mismatch.message, /does not match the certificate in data\.tls\.crt/);
    const empty = problemOf({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'e', namespace: GATEWAY_NS }, data: {} });
    assert.match(empty.message, /needs tls\.crt and tls\.key/);
    for (const problem of [notPem, badKey, mismatch, empty]) assert.ok(!problem.message.includes(FIXTURE_CREDENTIAL.cert.slice(40, 80)) && !problem.message.includes(FIXTURE_CREDENTIAL.key.slice(40, 80)) && !problem.message.includes('garbage'), problem.message);
  });

  it('serves an expired certificate, as Istio does, with a warning', async () => {
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const keyPem = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
    const expired = await signLeaf(await createTestRoot('old CA'), keys.publicKey, [{ type: 'dns', value: 'old.example.com' }], -60);
    const converted = convert([tlsSecret('old', GATEWAY_NS, { cert: expired, key: keyPem })]);
    assert.equal(converted.credentials?.length, 1);
    const [warning] = converted.warnings.flatMap((w) => w.issues);
    assert.deepEqual([warning?.code, warning?.path], ['MP_SECRET_INVALID', 'data.tls.crt']);
    assert.match(warning?.message ?? '', /expired/);
  });

  it('resolves kubernetes://name in the proxy\'s namespace, kubernetes://ns/name as written, and a -cacert name from its own Secret or the ca.crt of the Secret it names', () => {
    const { credentials = [] } = convert([tlsSecret('shop', GATEWAY_NS, FIXTURE_CREDENTIAL), tlsSecret('partners', GATEWAY_NS, { cert: FIXTURE_CREDENTIAL.cert, key: FIXTURE_CREDENTIAL.key }), tlsSecret('partners-cacert', GATEWAY_NS, { ca: FIXTURE_CREDENTIAL.ca }, 'generic')]);
    const index = indexCredentials(credentials);
    assert.deepEqual(parseCredentialName('kubernetes://shop', GATEWAY_NS), { resourceName: 'kubernetes://shop', namespace: GATEWAY_NS, name: 'shop', caOnly: false });
    assert.deepEqual(parseCredentialName('kubernetes://shop/shop', GATEWAY_NS)?.namespace, 'shop');
    assert.equal(parseCredentialName('file-cert:/etc/cert.pem', GATEWAY_NS), undefined);
    assert.deepEqual(parseCredentialName('kubernetes-gateway://shop/shop', GATEWAY_NS), { resourceName: 'kubernetes-gateway://shop/shop', namespace: 'shop', name: 'shop', caOnly: false });
    assert.equal(parseCredentialName('kubernetes-gateway://shop', GATEWAY_NS), undefined, 'a Gateway API reference always names its namespace');
    const lookup = (name: string): string => {
      const found = index.lookup(parseCredentialName(name, GATEWAY_NS) ?? { namespace: '', name: '', caOnly: false });
      return found.found ? `${found.credential.name}:${found.caCertificates !== undefined ? 'ca' : 'cert'}` : found.reason;
    };
    assert.equal(lookup('kubernetes://shop'), 'shop:cert');
    assert.equal(lookup('kubernetes://shop-cacert'), 'shop:ca', 'the ca.crt of Secret shop');
    assert.equal(lookup('kubernetes://partners-cacert'), 'partners-cacert:ca', 'a Secret of its own wins');
    assert.equal(lookup('kubernetes://missing'), 'Secret istio-system/missing does not exist (or is not a valid TLS Secret)');
  });
});

/** Gateways of the gateway namespace may refer to Secret shop/app-cert (and to no other Secret of shop). */
const APP_CERT_GRANT: K8sObject = {
  apiVersion: 'gateway.networking.k8s.io/v1beta1',
  kind: 'ReferenceGrant',
  metadata: { name: 'gateways-read-app-cert', namespace: 'shop' },
  spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: GATEWAY_NS }], to: [{ group: '', kind: 'Secret', name: 'app-cert' }] },
};

describe('Secrets over ADS: only to a verified identity of their namespace', () => {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  }));
  let dir: MeshDir;
  let caRoot: string;
  let meshpilot: TestMeshpilot;
  const secrets = (shopCert: { cert: string; key: string }): K8sObject[] => [
    tlsSecret('shop-cert', GATEWAY_NS, shopCert),
    tlsSecret('bookinfo-cert', GATEWAY_NS, FIXTURE_CREDENTIAL),
    tlsSecret('app-cert', 'shop', FIXTURE_CREDENTIAL),
    tlsSecret('db-cert', 'shop', FIXTURE_CREDENTIAL),
  ];
  /** A gRPC client on the secure port holding a workload certificate of `namespace`, from meshpilot's own CA. */
  const workloadClient = async (namespace: string): Promise<ReturnType<typeof secureClient>> => {
    const security = meshpilot.security;
    assert.ok(security);
    const identity = `spiffe://cluster.local/ns/${namespace}/sa/istio-ingressgateway-service-account`;
    const key = await makeCsr({ sans: [`uri:${identity}`] });
    const chain = await security.ca.sign(key.csr, identity, 3600);
    return secureClient(security.port, { rootPem: security.ca.rootPem, clientCert: { chainPem: chain.join(''), keyPem: key.keyPem } });
  };

  before(async () => {
    dir = await MeshDir.create();
    caRoot = await mkdtemp(join(tmpdir(), 'meshpilot-ca-root-'));
    await dir.write('secrets.yaml', secrets({ cert: FIXTURE_CREDENTIAL.cert, key: FIXTURE_CREDENTIAL.key }));
    await dir.write('grants.yaml', [APP_CERT_GRANT]);
    meshpilot = await startMeshpilot(dir.path, { secure: { port: 0, caRootDir: caRoot }, log });
  });
  after(async () => {
    await meshpilot.close();
    await dir.remove();
    await rm(caRoot, { recursive: true, force: true });
  });

  it('the plaintext port sends no Secret and says why; --xds-plaintext-secrets serves it for development', async () => {
    const plain = new RawAdsClient(meshpilot.xdsPort, gatewayNode('plain-0'));
    plain.send({ typeUrl: SECRET_TYPE, names: ['kubernetes://shop-cert'] });
    assert.deepEqual(await plain.quiet(300, 0), [], 'nothing is sent');
    plain.close();
    assert.ok(lines.some((line) => line.includes('MP_SECRET_DENIED') && line.includes('plain-0') && line.includes('kubernetes://shop-cert') && line.includes('not authenticated')));

    const development = await startMeshpilot(dir.path, { xdsPlaintextSecrets: true });
    try {
      const client = new RawAdsClient(development.xdsPort, gatewayNode('dev-0'));
      client.send({ typeUrl: SECRET_TYPE, names: ['kubernetes://shop-cert', 'kubernetes://shop/app-cert'] });
      const response = await client.next((r) => r.type_url === SECRET_TYPE);
      assert.deepEqual(response.resources.map((r) => r['name']), ['kubernetes://shop-cert'], 'its own namespace only, even so');
      client.close();
    } finally {
      await development.close();
    }
  });

  it('on the secure port a gateway gets its namespace\'s Secrets (SotW and Delta), and a change only reaches the proxies that hold it', async () => {
    const holder = new RawAdsClient(await workloadClient(GATEWAY_NS), gatewayNode('holder-0'));
    const bystander = new RawDeltaClient(await workloadClient(GATEWAY_NS), gatewayNode('bystander-0'));
    try {
      holder.send({ typeUrl: SECRET_TYPE, names: ['kubernetes://bookinfo-cert-cacert', 'kubernetes://shop-cert'] });
      const first = await holder.next((r) => r.type_url === SECRET_TYPE);
      assert.deepEqual(first.resources.map((r) => [r['name'], Object.keys(r).filter((k) => k !== '@type' && k !== 'name')]).sort(), [
        ['kubernetes://bookinfo-cert-cacert', ['validation_context']],
        ['kubernetes://shop-cert', ['tls_certificate']],
      ]);
      holder.ack(first, ['kubernetes://bookinfo-cert-cacert', 'kubernetes://shop-cert']);
      bystander.send({ typeUrl: SECRET_TYPE, subscribe: ['kubernetes://bookinfo-cert'] });
      const delta = await bystander.next((r) => r.type_url === SECRET_TYPE);
      assert.deepEqual(delta.resources.map((r) => r.name), ['kubernetes://bookinfo-cert']);
      bystander.send({ typeUrl: SECRET_TYPE, nonce: delta.nonce });

      // Rotation: the holder is sent the new certificate (and only what changed); the bystander nothing.
      const rotated = await issueTestPair(await createTestRoot('rotation CA'), [{ type: 'dns', value: 'shop.example.com' }]);
      const [heldBefore, bystanderBefore] = [holder.responses.length, bystander.responses.length];
      await dir.write('secrets.yaml', secrets({ cert: rotated.certPem, key: rotated.keyPem }));
      const pushed = await holder.next((r) => r.type_url === SECRET_TYPE, heldBefore);
      assert.deepEqual(pushed.resources.map((r) => r['name']), ['kubernetes://shop-cert']);
      const chain = ((pushed.resources[0]?.['tls_certificate'] as { certificate_chain: { inline_bytes: string } }).certificate_chain.inline_bytes);
      assert.equal(Buffer.from(chain, 'base64').toString('utf8'), rotated.certPem);
      assert.deepEqual(await bystander.quiet(300, bystanderBefore), [], 'a proxy that does not hold the Secret is sent nothing');
    } finally {
      holder.close();
      bystander.close();
    }
  });

  it("serves another namespace's Secret to a gateway when a ReferenceGrant there lets its Gateways refer to it, as a Gateway API certificateRef only", async () => {
    const client = new RawAdsClient(await workloadClient(GATEWAY_NS), gatewayNode('granted-0'));
    try {
      const names = ['kubernetes-gateway://shop/app-cert', 'kubernetes-gateway://shop/app-cert-cacert', 'kubernetes://shop/app-cert', 'kubernetes-gateway://shop/db-cert', 'kubernetes-gateway://shop/other-cert'];
      client.send({ typeUrl: SECRET_TYPE, names });
      const response = await client.next((r) => r.type_url === SECRET_TYPE);
      assert.deepEqual(response.resources.map((r) => r['name']), ['kubernetes-gateway://shop/app-cert', 'kubernetes-gateway://shop/app-cert-cacert']);
      client.ack(response, names);
      const denial = (name: string): string | undefined => lines.find((line) => line.includes('MP_SECRET_DENIED') && line.includes('granted-0') && line.includes(`"secret":"${name}"`));
      assert.match(denial('kubernetes://shop/app-cert') ?? '', /a credentialName names only the gateway's own namespace's Secrets/);
      assert.match(denial('kubernetes-gateway://shop/db-cert') ?? '', /no ReferenceGrant in shop lets Gateways of istio-system refer to Secret db-cert/);
      assert.match(denial('kubernetes-gateway://shop/other-cert') ?? '', /shop\/other-cert does not exist/);
    } finally {
      client.close();
    }
  });

  it('refuses a Secret of another namespace by name, and keeps key material out of the log, /debug/configz and config_dump', async () => {
    const client = new RawAdsClient(await workloadClient(GATEWAY_NS), gatewayNode('curious-0'));
    try {
      client.send({ typeUrl: SECRET_TYPE, names: ['kubernetes://shop/app-cert', 'kubernetes://bookinfo-cert'] });
      const response = await client.next((r) => r.type_url === SECRET_TYPE);
      assert.deepEqual(response.resources.map((r) => r['name']), ['kubernetes://bookinfo-cert']);
      client.ack(response, ['kubernetes://shop/app-cert', 'kubernetes://bookinfo-cert']);
      assert.ok(lines.some((line) => line.includes('MP_SECRET_DENIED') && line.includes('curious-0') && line.includes('kubernetes://shop/app-cert') && line.includes('another namespace')));
      const dump = await meshpilot.admin(`/debug/config_dump?proxyID=${encodeURIComponent(gatewayNode('curious-0'))}`);
      const text = await dump.text();
      assert.ok(text.includes('SecretsConfigDump') && text.includes('[redacted]'), text.slice(0, 300));
      const keyBase64 = Buffer.from(FIXTURE_CREDENTIAL.key).toString('base64').slice(0, 40);
      for (const [what, body] of [['config_dump', text], ['configz', await (await meshpilot.admin('/debug/configz')).text()], ['log', lines.join('')]] as const) {
        assert.ok(!body.includes(keyBase64) && !body.includes('PRIVATE KEY'), `${what} holds no key`);
      }
      const metrics = await (await meshpilot.admin('/metrics')).text();
      assert.match(metrics, /pilot_sds_certificate_errors_total [1-9]/);
    } finally {
      client.close();
    }
  });
});
