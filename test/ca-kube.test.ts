// Workloads get their identity from meshpilot's CA on 15012, as istio-agent asks for it: over
// TLS, with a service-account token that the (fake) API server's TokenReview vouches for.
// Hostile requests are refused with a reason and nothing is signed; replicas share one root.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { CertificateAuthority } from '../src/security/ca.ts';
import { CertificateAuthority as Ca } from '../src/security/ca.ts';
import { createSelfSignedRoot, selfSignedMaterial } from '../src/security/ca-material.ts';
import { spiffeId } from '../src/security/names.ts';
import { FakeKubeApi, istioCrds } from './support/fake-kube-api.ts';
import { startMeshpilotOnKube, type KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { chainVerifies, createCertificate, firstAdsAnswer, makeCsr, secureClient, type CaCallResult, type CsrSpec } from './support/ca-client.ts';
import { eventually } from './support/mesh-dir.ts';
import { parsePrometheusText } from './support/prom-text.ts';

const PRODUCTPAGE = spiffeId('cluster.local', 'default', 'productpage');
const HOUR = 3600;
const MAX_TTL_S = 48 * HOUR;

function namespace(name: string): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}

async function startCluster(): Promise<FakeKubeApi> {
  const api = await FakeKubeApi.start();
  for (const crd of istioCrds()) api.installCrd(crd);
  api.applyAll([namespace('default'), namespace('bookinfo'), namespace('meshpilot-system')]);
  const audiences = ['istio-ca'];
  api.registerToken('productpage-token', { username: 'system:serviceaccount:default:productpage', audiences });
  api.registerToken('reviews-token', { username: 'system:serviceaccount:bookinfo:reviews', audiences });
  api.registerToken('expired-token', { username: 'system:serviceaccount:default:productpage', audiences, expiresAt: new Date(Date.now() - 60_000) });
  api.registerToken('kube-api-token', { username: 'system:serviceaccount:default:productpage', audiences: ['https://kubernetes.default.svc'] });
  api.registerToken('user-token', { username: 'jason@example.com', audiences });
  return api;
}

function startReplica(api: FakeKubeApi): Promise<KubeMeshpilot> {
  return startMeshpilotOnKube(api, { serve: { secure: { port: 0, namespace: 'meshpilot-system', ca: { maxTtlMs: MAX_TTL_S * 1000 } } } });
}

function securityOf(meshpilot: KubeMeshpilot): { ca: CertificateAuthority; port: number } {
  const security = meshpilot.security;
  assert.ok(security, 'the secure port runs');
  return { ca: security.ca, port: security.port };
}

/** A sample's value in /metrics; 0 when absent. */
async function metric(meshpilot: KubeMeshpilot, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const { samples } = parsePrometheusText(await (await meshpilot.admin('/metrics')).text());
  const sample = samples.find((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));
  return sample?.value ?? 0;
}

function leafOf(result: CaCallResult): X509Certificate {
  assert.equal(result.code, grpc.status.OK, result.details);
  return new X509Certificate(result.chain[0] ?? '');
}

describe('the CA on 15012 against a Kubernetes API', () => {
  let api: FakeKubeApi;
  let meshpilot: KubeMeshpilot;
  let ca: CertificateAuthority;
  let port: number;
  before(async () => {
    api = await startCluster();
    meshpilot = await startReplica(api);
    ({ ca, port } = securityOf(meshpilot));
  });
  after(async () => {
    await meshpilot.close();
    await api.close();
  });

  it('signs productpage its own SPIFFE identity for the lifetime it asks, chained to the root', async () => {
    const client = secureClient(port, { rootPem: ca.rootPem, token: 'productpage-token' });
    const { csr } = await makeCsr({ sans: [`uri:${PRODUCTPAGE}`] });
    const result = await createCertificate(client, { csr, validityDuration: HOUR });
    const leaf = leafOf(result);
    assert.equal(result.chain.length, 2, 'leaf then root');
    assert.equal(result.chain[1], ca.rootPem);
    assert.ok(chainVerifies(result.chain, ca.rootPem));
    assert.equal(leaf.subjectAltName, `URI:${PRODUCTPAGE}`);
    const lifetime = (Date.parse(leaf.validTo) - Date.now()) / 1000;
    assert.ok(lifetime > HOUR - 60 && lifetime <= HOUR, `valid for ${lifetime} s more`);
    assert.ok(Date.parse(leaf.validFrom) < Date.now() - 60_000, 'notBefore leaves room for clock skew');

    const byDefault = leafOf(await createCertificate(client, { csr }));
    assert.ok(Math.abs(Date.parse(byDefault.validTo) - Date.now() - 24 * HOUR * 1000) < 120_000, 'the default is 24 h');
    const longest = leafOf(await createCertificate(client, { csr, validityDuration: MAX_TTL_S }));
    assert.ok(Date.parse(longest.validTo) - Date.now() <= MAX_TTL_S * 1000, 'at most the maximum');
    const rsa = await makeCsr({ sans: [`uri:${PRODUCTPAGE}`], key: 'rsa-2048' });
    assert.equal(leafOf(await createCertificate(client, { csr: rsa.csr })).publicKey.asymmetricKeyType, 'rsa');
    client.close();

    const record = ca.issued().find((issued) => issued.serial.toLowerCase() === leaf.serialNumber.toLowerCase());
    assert.equal(record?.identity, PRODUCTPAGE);
    const listed = (await (await meshpilot.admin(`/debug/certs?identity=${encodeURIComponent(PRODUCTPAGE)}`)).json()) as { root: { pem: string }; certificates: { identity: string; notAfter: string }[] };
    assert.equal(listed.root.pem, ca.rootPem);
    assert.ok(listed.certificates.length >= 4 && listed.certificates.every((c) => c.identity === PRODUCTPAGE));
  });

  it('refuses hostile and mistaken requests with a status and a reason, signs nothing, and keeps serving', async () => {
    const otherCa = await Ca.create(selfSignedMaterial(...(await (async () => {
      const root = await createSelfSignedRoot('cluster.local');
      return [{ name: 'other-root.pem', text: root.certPem }, { name: 'other-key.pem', text: root.keyPem }, 'elsewhere'] as const;
    })())));
    const foreign = await makeCsr({ sans: [`uri:${PRODUCTPAGE}`] });
    const foreignChain = await otherCa.sign(foreign.csr, PRODUCTPAGE, HOUR);
    const good = (await makeCsr({ sans: [`uri:${PRODUCTPAGE}`] })).csr;
    const csr = async (spec: CsrSpec): Promise<string> => (await makeCsr(spec)).csr;
    const badSignature = (() => {
      const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
      return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    })();
    const rows: { name: string; token?: string; clientCert?: { chainPem: string; keyPem: string }; csr: string; ttl?: number; code: grpc.status; reason: RegExp }[] = [
      { name: 'an RSA 1024 key', csr: await csr({ sans: [`uri:${PRODUCTPAGE}`], key: 'rsa-1024' }), code: grpc.status.INVALID_ARGUMENT, reason: /RSA 1024; RSA keys must have 2048/ },
      { name: 'an ECDSA P-384 key', csr: await csr({ sans: [`uri:${PRODUCTPAGE}`], key: 'ecdsa-p384' }), code: grpc.status.INVALID_ARGUMENT, reason: /ECDSA on secp384r1/ },
      { name: 'another service account', csr: await csr({ sans: [`uri:${spiffeId('cluster.local', 'default', 'reviews')}`] }), code: grpc.status.PERMISSION_DENIED, reason: /asks for spiffe:\/\/cluster.local\/ns\/default\/sa\/reviews, but the caller is spiffe:\/\/cluster.local\/ns\/default\/sa\/productpage/ },
      { name: 'another trust domain', csr: await csr({ sans: ['uri:spiffe://evil.example/ns/default/sa/productpage'] }), code: grpc.status.PERMISSION_DENIED, reason: /MP_CA_IDENTITY_MISMATCH/ },
      { name: 'two URI SANs', csr: await csr({ sans: [`uri:${PRODUCTPAGE}`, `uri:${spiffeId('cluster.local', 'default', 'admin')}`] }), code: grpc.status.INVALID_ARGUMENT, reason: /exactly one URI SAN/ },
      { name: 'a DNS SAN only', csr: await csr({ sans: ['dns:productpage.default.svc'] }), code: grpc.status.INVALID_ARGUMENT, reason: /it has dns:productpage.default.svc/ },
      { name: 'no SAN', csr: await csr({ sans: [] }), code: grpc.status.INVALID_ARGUMENT, reason: /it has none/ },
      { name: 'a CA:TRUE request', csr: await csr({ sans: [`uri:${PRODUCTPAGE}`], ca: true }), code: grpc.status.INVALID_ARGUMENT, reason: /CA:TRUE/ },
      { name: 'a 1 MB CSR', csr: `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(1 << 20)}\n-----END CERTIFICATE REQUEST-----\n`, code: grpc.status.INVALID_ARGUMENT, reason: /at most 65536 are accepted/ },
      { name: 'garbage instead of PEM', csr: 'hello, CA', code: grpc.status.INVALID_ARGUMENT, reason: /not a PEM certificate request/ },
      { name: 'a PEM of garbage', csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n', code: grpc.status.INVALID_ARGUMENT, reason: /cannot be parsed/ },
      { name: 'a CSR whose signature does not verify', csr: badSignature, code: grpc.status.INVALID_ARGUMENT, reason: /signature does not verify/ },
      { name: 'a negative validity', csr: good, ttl: -60, code: grpc.status.INVALID_ARGUMENT, reason: /negative/ },
      { name: 'a validity over the maximum', csr: good, ttl: MAX_TTL_S + 1, code: grpc.status.INVALID_ARGUMENT, reason: /longer than this CA's maximum of 172800 s/ },
      { name: 'an expired token', token: 'expired-token', csr: good, code: grpc.status.UNAUTHENTICATED, reason: /expired/ },
      { name: 'a token for the API server, not istio-ca', token: 'kube-api-token', csr: good, code: grpc.status.UNAUTHENTICATED, reason: /invalid for the target audiences \["istio-ca"\]/ },
      { name: 'a forged token', token: 'eyJhbGciOiJSUzI1NiJ9.forged.signature', csr: good, code: grpc.status.UNAUTHENTICATED, reason: /invalid bearer token/ },
      { name: 'a token of a person, not a service account', token: 'user-token', csr: good, code: grpc.status.UNAUTHENTICATED, reason: /not a service account/ },
      { name: "a token of another namespace's workload", token: 'reviews-token', csr: good, code: grpc.status.PERMISSION_DENIED, reason: /the caller is spiffe:\/\/cluster.local\/ns\/bookinfo\/sa\/reviews/ },
      { name: 'no credentials at all', token: '', csr: good, code: grpc.status.UNAUTHENTICATED, reason: /no credentials/ },
      { name: 'a client certificate from another CA', token: '', clientCert: { chainPem: foreignChain.join(''), keyPem: foreign.keyPem }, csr: good, code: grpc.status.UNAUTHENTICATED, reason: /not one this CA issued/ },
    ];
    const issuedBefore = ca.issued().length;
    const signedBefore = await metric(meshpilot, 'citadel_server_success_cert_issuance_count');
    const failuresBefore = await metric(meshpilot, 'citadel_server_authentication_failure_count');
    for (const row of rows) {
      const token = row.token ?? 'productpage-token';
      const client = secureClient(port, { rootPem: ca.rootPem, ...(token !== '' ? { token } : {}), ...(row.clientCert ? { clientCert: row.clientCert } : {}) });
      const result = await createCertificate(client, { csr: row.csr, ...(row.ttl !== undefined ? { validityDuration: row.ttl } : {}) });
      client.close();
      assert.equal(result.code, row.code, `${row.name}: ${grpc.status[result.code]} ${result.details}`);
      assert.match(result.details, row.reason, row.name);
      assert.deepEqual(result.chain, [], `${row.name}: nothing returned`);
    }
    assert.equal(ca.issued().length, issuedBefore, 'nothing signed');
    assert.equal(await metric(meshpilot, 'citadel_server_success_cert_issuance_count'), signedBefore);
    assert.equal(await metric(meshpilot, 'citadel_server_authentication_failure_count') - failuresBefore, rows.filter((r) => r.code === grpc.status.UNAUTHENTICATED).length);
    assert.ok((await metric(meshpilot, 'citadel_server_id_extraction_err_count')) >= 3);

    const client = secureClient(port, { rootPem: ca.rootPem, token: 'productpage-token' });
    assert.equal((await createCertificate(client, { csr: good })).code, grpc.status.OK, 'still serving');
    client.close();
  });

  it('renews with the certificate it issued, no token needed', async () => {
    const first = await makeCsr({ sans: [`uri:${PRODUCTPAGE}`] });
    const withToken = secureClient(port, { rootPem: ca.rootPem, token: 'productpage-token' });
    const issued = await createCertificate(withToken, { csr: first.csr, validityDuration: HOUR });
    withToken.close();
    const renewing = secureClient(port, { rootPem: ca.rootPem, clientCert: { chainPem: issued.chain.join(''), keyPem: first.keyPem } });
    const next = await makeCsr({ sans: [`uri:${PRODUCTPAGE}`] });
    const renewed = await createCertificate(renewing, { csr: next.csr, validityDuration: HOUR });
    assert.equal(leafOf(renewed).subjectAltName, `URI:${PRODUCTPAGE}`);
    const other = await createCertificate(renewing, { csr: (await makeCsr({ sans: [`uri:${spiffeId('cluster.local', 'default', 'reviews')}`] })).csr });
    assert.equal(other.code, grpc.status.PERMISSION_DENIED, 'a certificate is good for its own identity only');
    renewing.close();
  });

  it("serves ADS over TLS only to a node in the caller's namespace (XDS_AUTH)", async () => {
    const client = secureClient(port, { rootPem: ca.rootPem, token: 'productpage-token' });
    const own = await firstAdsAnswer(client, 'sidecar~10.244.0.9~productpage-v1-1.default~default.svc.cluster.local');
    assert.equal(own.code, grpc.status.OK, own.details);
    assert.equal(own.typeUrl, 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
    assert.ok((own.resources ?? 0) > 0);
    const stranger = await firstAdsAnswer(client, 'sidecar~10.244.0.7~reviews-v1-1.bookinfo~bookinfo.svc.cluster.local');
    assert.equal(stranger.code, grpc.status.PERMISSION_DENIED);
    assert.match(stranger.details, /claims namespace bookinfo, but the caller is spiffe:\/\/cluster.local\/ns\/default\/sa\/productpage/);
    client.close();
    const anonymous = secureClient(port, { rootPem: ca.rootPem });
    const refused = await firstAdsAnswer(anonymous, 'sidecar~10.244.0.9~productpage-v1-1.default~default.svc.cluster.local');
    assert.equal(refused.code, grpc.status.UNAUTHENTICATED);
    anonymous.close();
    assert.equal(await metric(meshpilot, 'meshpilot_secure_xds_refused', { reason: 'namespace' }), 1);
  });

  it('publishes the root as the ConfigMap istio-ca-root-cert in every namespace', async () => {
    for (const ns of ['default', 'bookinfo']) {
      const configMap = await eventually(() => api.get('ConfigMap', ns, 'istio-ca-root-cert'), 10_000, `ConfigMap in ${ns}`);
      assert.equal((configMap['data'] as Record<string, string>)['root-cert.pem'], ca.rootPem);
    }
  });
});

describe('two meshpilot replicas against one API server', () => {
  it('share one root: one creates meshpilot-ca-secret, the other reads it, and each trusts the other\'s certificates', async () => {
    const api = await startCluster();
    api.holdCreates('Secret', 2);
    const [a, b] = await Promise.all([startReplica(api), startReplica(api)]);
    try {
      const one = securityOf(a);
      const two = securityOf(b);
      assert.equal(one.ca.rootPem, two.ca.rootPem, 'one root');
      const secret = api.get('Secret', 'meshpilot-system', 'meshpilot-ca-secret');
      assert.equal(Buffer.from((secret?.['data'] as Record<string, string>)['ca-cert.pem'] ?? '', 'base64').toString(), one.ca.rootPem);
      assert.equal(api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/secrets')).length, 2, 'both tried to create it; one lost the race');

      const key = await makeCsr({ sans: [`uri:${PRODUCTPAGE}`] });
      const fromA = secureClient(one.port, { rootPem: one.ca.rootPem, token: 'productpage-token' });
      const issued = await createCertificate(fromA, { csr: key.csr, validityDuration: HOUR });
      fromA.close();
      assert.ok(chainVerifies(issued.chain, two.ca.rootPem), "A's certificate verifies against B's root");
      const atB = secureClient(two.port, { rootPem: two.ca.rootPem, clientCert: { chainPem: issued.chain.join(''), keyPem: key.keyPem } });
      const renewed = await createCertificate(atB, { csr: (await makeCsr({ sans: [`uri:${PRODUCTPAGE}`] })).csr });
      atB.close();
      assert.equal(renewed.code, grpc.status.OK, `B trusts A's certificate: ${renewed.details}`);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await api.close();
    }
  });
});
