// A real Envoy as the ingress gateway of istio-system, bootstrapped by `meshpilot bootstrap
// --xds-tls` with its workload certificate from `meshpilot agent`, takes its HTTPS certificates
// from Kubernetes Secrets that meshpilot serves over SDS on the ADS stream: HTTPS on the 443
// server ends with the Secret's certificate, MUTUAL checks clients against the `-cacert` Secret, a
// rotated Secret is picked up live, a server whose Secret is missing is left out while the others
// serve, and a Secret of another namespace is never sent; then the same over Delta xDS.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect } from 'node:tls';
import { describe, it } from 'node:test';
import pino from 'pino';
import { SECRET_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { startTestAgent } from './support/agent-harness.ts';
import { secureClient } from './support/ca-client.ts';
import { LOOPBACK_DNS, requireEnvoy, startEnvoy } from './support/envoy.ts';
import { CA_SERVER_NAME, createTestRoot, issueTestPair, startFakeCa, type TestKeyPair, type TestRoot } from './support/fake-istio-ca.ts';
import { endpointSlice, MeshDir, pod, rule, service, tlsSecret, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';

const GATEWAY_NS = 'istio-system';
const APP_NS = 'shop';
const GATEWAY_SA = 'istio-ingressgateway-service-account';
const POD = 'istio-ingressgateway-7f9c-x2k4p';
const NODE_ID = `router~10.244.9.9~${POD}.${GATEWAY_NS}~${GATEWAY_NS}.svc.cluster.local`;
const BIN = new URL('../bin/meshpilot.js', import.meta.url).pathname;

/** A port free on 127.0.0.1 right now, for a gateway Service port to reach. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => {
    resolve();
  }));
  return port;
}

/** `meshpilot bootstrap` as a user runs it, parsed. */
function printedBootstrap(args: readonly string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'bootstrap', ...args, '--output', 'json'], { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`meshpilot bootstrap failed: ${stderr}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

interface Served {
  /** SHA-256 fingerprint of the certificate the gateway presented. */
  readonly fingerprint: string;
  readonly body: string;
}

/** An HTTPS GET through the gateway with SNI `host`: the certificate it presented and what the backend answered. */
function httpsGet(port: number, host: string, ca: string, client?: TestKeyPair): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: host, ca, ...(client ? { cert: client.certPem, key: client.keyPem } : {}), ALPNProtocols: ['http/1.1'] });
    let text = '';
    socket.once('secureConnect', () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.write(`GET /orders HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      socket.once('end', () => {
        if (!text.startsWith('HTTP/1.1 200')) reject(new Error(`unexpected answer: ${text.slice(0, 80)}`));
        else resolve({ fingerprint, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
      });
    });
    socket.once('error', reject);
  });
}

/** Envoy's stat of a dynamic secret, its name with `://` made `_`. */
const SHOP_CERT_UPDATES = 'sds.kubernetes_shop-cert.update_success';
const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256;

describe('a real Envoy gateway takes its HTTPS certificates from Kubernetes Secrets over meshpilot SDS', () => {
  it('terminates with the Secret, checks MUTUAL clients, rotates live, leaves out only the server whose Secret is missing, and never gets another namespace\'s Secret', async (t) => {
    if (!(await requireEnvoy(t))) return;
    // The mesh CA, both the agent's (it issues the gateway's workload certificate) and meshpilot's (it verifies it on 15012).
    const meshCa = await startFakeCa();
    t.after(() => meshCa.close());
    const caDir = await mkdtemp(join(tmpdir(), 'meshpilot-cacerts-'));
    t.after(() => rm(caDir, { recursive: true, force: true }));
    for (const [file, text] of Object.entries({ 'ca-cert.pem': meshCa.root.certPem, 'ca-key.pem': meshCa.root.keyPem, 'root-cert.pem': meshCa.root.certPem, 'cert-chain.pem': meshCa.root.certPem })) await writeFile(join(caDir, file), text);

    // The shop's own CA: the gateway's HTTPS certificates, and the clients MUTUAL accepts.
    const shopCa: TestRoot = await createTestRoot('shop CA');
    const clientCa: TestRoot = await createTestRoot('shop clients CA');
    const shopCert = await issueTestPair(shopCa, [{ type: 'dns', value: 'shop.example.com' }]);
    const mtlsCert = await issueTestPair(shopCa, [{ type: 'dns', value: 'partners.example.com' }]);
    const adminCert = await issueTestPair(shopCa, [{ type: 'dns', value: 'admin.example.com' }]);
    const partner = await issueTestPair(clientCa, [{ type: 'dns', value: 'partner-1.example.com' }]);

    const web: Server = createServer((req, res) => res.end(JSON.stringify({ backend: 'web', host: req.headers.host })));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    t.after(() => web.close());
    const webPort = (web.address() as AddressInfo).port;
    const [httpPort, httpsPort, adminPort] = [await freePort(), await freePort(), await freePort()];

    const gatewayObjects = (secrets: K8sObject[]): K8sObject[] => [
      service('web', APP_NS, [{ name: 'http', port: 80, targetPort: webPort }], '10.96.8.1'),
      endpointSlice('web', APP_NS, { name: 'http', port: webPort }, [{ name: 'web-0', ip: '127.0.0.1' }]),
      pod(POD, GATEWAY_NS, '10.244.9.9', { istio: 'ingressgateway' }),
      // As Istio's istio-ingressgateway Service: 80 and 443 reach the pod's own ports (here free loopback ones); 9443 reaches the admin-ish third.
      service('istio-ingressgateway', GATEWAY_NS, [{ name: 'http2', port: 80, targetPort: httpPort }, { name: 'https', port: 443, targetPort: httpsPort }, { name: 'https-admin', port: 9443, targetPort: adminPort }], '10.96.8.10'),
      { ...endpointSlice('istio-ingressgateway', GATEWAY_NS, { name: 'http2', port: httpPort }, [{ name: POD, ip: '10.244.9.9' }]), ports: [{ name: 'http2', port: httpPort, protocol: 'TCP' }, { name: 'https', port: httpsPort, protocol: 'TCP' }, { name: 'https-admin', port: adminPort, protocol: 'TCP' }] },
      rule('Gateway', 'shop-gateway', APP_NS, {
        selector: { istio: 'ingressgateway' },
        servers: [
          { port: { number: 80, name: 'http', protocol: 'HTTP' }, bind: '127.0.0.1', hosts: ['shop.example.com'] },
          { port: { number: 443, name: 'https', protocol: 'HTTPS' }, bind: '127.0.0.1', hosts: ['shop.example.com'], tls: { mode: 'SIMPLE', credentialName: 'shop-cert' } },
          { port: { number: 443, name: 'https-partners', protocol: 'HTTPS' }, bind: '127.0.0.1', hosts: ['partners.example.com'], tls: { mode: 'MUTUAL', credentialName: 'partners-cert' } },
          // The shop's own namespace holds this one: a gateway of istio-system may not read it.
          { port: { number: 443, name: 'https-foreign', protocol: 'HTTPS' }, bind: '127.0.0.1', hosts: ['foreign.example.com'], tls: { mode: 'SIMPLE', credentialName: `${APP_NS}/foreign-cert` } },
          { port: { number: 9443, name: 'https-admin', protocol: 'HTTPS' }, bind: '127.0.0.1', hosts: ['admin.example.com'], tls: { mode: 'SIMPLE', credentialName: 'admin-cert' } },
        ],
      }),
      rule('VirtualService', 'shop', APP_NS, { hosts: ['shop.example.com', 'partners.example.com', 'foreign.example.com', 'admin.example.com'], gateways: ['shop-gateway'], http: [{ route: [{ destination: { host: 'web' } }] }] }),
      ...secrets,
    ];
    const baseSecrets = [
      tlsSecret('shop-cert', GATEWAY_NS, { cert: shopCert.certPem, key: shopCert.keyPem }),
      tlsSecret('partners-cert', GATEWAY_NS, { cert: mtlsCert.certPem, key: mtlsCert.keyPem }, 'generic'),
      tlsSecret('partners-cert-cacert', GATEWAY_NS, { ca: clientCa.certPem }, 'generic'),
      tlsSecret('foreign-cert', APP_NS, { cert: shopCert.certPem, key: shopCert.keyPem }),
    ];
    const dir = await MeshDir.create();
    t.after(() => dir.remove());
    await dir.write('shop.yaml', gatewayObjects(baseSecrets));

    const lines: string[] = [];
    const log = pino({ level: 'info' }, new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    }));
    const meshpilot = await startMeshpilot(dir.path, { secure: { port: 0, caDir }, log });
    t.after(() => meshpilot.close());
    const securePort = meshpilot.security?.port ?? 0;

    const agent = await startTestAgent(meshCa, { namespace: GATEWAY_NS, serviceAccount: GATEWAY_SA, podName: POD, outputDir: undefined });
    t.after(() => agent.close());
    const bootstrap = await printedBootstrap(['--node-id', NODE_ID, '--xds-address', `127.0.0.1:${String(securePort)}`, '--xds-tls', '--sds-socket', agent.sdsSocket, '--xds-server-name', CA_SERVER_NAME]);
    const envoy = await startEnvoy({ bootstrap: { ...bootstrap, ...LOOPBACK_DNS, admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } } } });
    t.after(() => envoy.stop());

    // HTTPS on the 443 server ends with the Secret's certificate, checked by its fingerprint.
    const shop = await envoy.waitFor('HTTPS for shop.example.com', () => httpsGet(httpsPort, 'shop.example.com', shopCa.certPem).catch(() => undefined));
    assert.equal(shop.fingerprint, fingerprintOf(shopCert.certPem), 'the gateway presents the certificate of Secret istio-system/shop-cert');
    assert.deepEqual(JSON.parse(shop.body), { backend: 'web', host: 'shop.example.com' });

    // MUTUAL: the client CA comes from the -cacert Secret; a client it signed is served, one without a certificate is not.
    const partners = await httpsGet(httpsPort, 'partners.example.com', shopCa.certPem, partner);
    assert.equal(partners.fingerprint, fingerprintOf(mtlsCert.certPem));
    await assert.rejects(httpsGet(httpsPort, 'partners.example.com', shopCa.certPem), 'a client without a certificate is refused');

    // A missing Secret keeps only its server out: 9443 is not listening while 80 and 443 serve; the Gateway says why.
    const listeners = ((await (await envoy.admin('/listeners?format=json')).json()) as { listener_statuses: { name: string }[] }).listener_statuses.map((l) => l.name).sort();
    assert.deepEqual(listeners, [`127.0.0.1_${String(httpPort)}`, `127.0.0.1_${String(httpsPort)}`].sort());
    await assert.rejects(httpsGet(adminPort, 'admin.example.com', shopCa.certPem), 'nothing listens for the server whose Secret is missing');
    const configz = (await (await meshpilot.admin('/debug/configz')).json()) as { rules: { kind: string; name: string; warnings: { code: string; path: string; message: string }[] }[] };
    const gatewayWarnings = configz.rules.find((r) => r.kind === 'Gateway')?.warnings ?? [];
    assert.ok(gatewayWarnings.some((w) => w.code === 'MP_REF_UNKNOWN' && w.path === 'spec.servers[4].tls.credentialName' && w.message.includes('istio-system/admin-cert')), JSON.stringify(gatewayWarnings));
    assert.ok(gatewayWarnings.some((w) => w.path === 'spec.servers[3].tls.credentialName' && w.message.includes('another namespace')), 'the other-namespace reference is reported too');

    // The foreign namespace's Secret is refused even when asked for by name on the secure port.
    const gatewayClientCert = await issueTestPair(meshCa.root, [{ type: 'url', value: `spiffe://cluster.local/ns/${GATEWAY_NS}/sa/${GATEWAY_SA}` }]);
    const asker = new RawAdsClient(secureClient(securePort, { rootPem: meshCa.root.certPem, clientCert: { chainPem: gatewayClientCert.certPem, keyPem: gatewayClientCert.keyPem } }), `router~10.244.9.8~${POD}-b.${GATEWAY_NS}~${GATEWAY_NS}.svc.cluster.local`);
    t.after(() => {
      asker.close();
    });
    asker.send({ typeUrl: SECRET_TYPE, names: [`kubernetes://${APP_NS}/foreign-cert`, 'kubernetes://shop-cert'] });
    const answered = await asker.next((r) => r.type_url === SECRET_TYPE);
    assert.deepEqual(answered.resources.map((r) => r['name']), ['kubernetes://shop-cert'], 'only its own namespace\'s Secret');
    assert.ok(lines.some((line) => line.includes('MP_SECRET_DENIED') && line.includes(`kubernetes://${APP_NS}/foreign-cert`) && line.includes(`${POD}-b`)), 'the refusal is logged with proxy, Secret and reason');

    // Rotation: a new certificate in the Secret is served on new connections, without a restart.
    const rotated = await issueTestPair(shopCa, [{ type: 'dns', value: 'shop.example.com' }]);
    const updates = (await envoy.stats()).get(SHOP_CERT_UPDATES) ?? 0;
    await dir.write('shop.yaml', gatewayObjects([tlsSecret('shop-cert', GATEWAY_NS, { cert: rotated.certPem, key: rotated.keyPem }), ...baseSecrets.slice(1)]));
    await envoy.waitFor('the rotated certificate', async () => (await httpsGet(httpsPort, 'shop.example.com', shopCa.certPem).catch(() => undefined))?.fingerprint === fingerprintOf(rotated.certPem));
    assert.ok(((await envoy.stats()).get(SHOP_CERT_UPDATES) ?? 0) > updates, 'Envoy counted the pushed Secret');

    // The missing Secret appears: its server is served, the others never stopped.
    await dir.write('shop.yaml', gatewayObjects([tlsSecret('shop-cert', GATEWAY_NS, { cert: rotated.certPem, key: rotated.keyPem }), tlsSecret('admin-cert', GATEWAY_NS, { cert: adminCert.certPem, key: adminCert.keyPem }), ...baseSecrets.slice(1)]));
    const admin = await envoy.waitFor('the admin server', () => httpsGet(adminPort, 'admin.example.com', shopCa.certPem).catch(() => undefined));
    assert.equal(admin.fingerprint, fingerprintOf(adminCert.certPem));

    assert.deepEqual(await envoy.rejectedUpdates(), {});
    assert.ok(!lines.some((line) => line.includes('PRIVATE KEY') || line.includes(Buffer.from(shopCert.keyPem).toString('base64').slice(0, 40))), 'no key material in the log');
    const dump = JSON.stringify(await meshpilot.configDump(NODE_ID));
    assert.ok(dump.includes('kubernetes://shop-cert') && dump.includes('[redacted]'), 'config_dump lists the Secret with its key redacted');
    assert.ok(!dump.includes(Buffer.from(rotated.keyPem).toString('base64').slice(0, 40)), 'config_dump never holds the key');

    // The same gateway on Delta xDS (`meshpilot bootstrap --delta`), once the first has let go of the ports.
    await envoy.stop();
    const deltaBootstrap = await printedBootstrap(['--node-id', NODE_ID, '--xds-address', `127.0.0.1:${String(securePort)}`, '--xds-tls', '--delta', '--sds-socket', agent.sdsSocket, '--xds-server-name', CA_SERVER_NAME]);
    const deltaEnvoy = await startEnvoy({ bootstrap: { ...deltaBootstrap, ...LOOPBACK_DNS, admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } } } });
    t.after(() => deltaEnvoy.stop());
    const overDelta = await deltaEnvoy.waitFor('HTTPS over a Delta gateway', () => httpsGet(httpsPort, 'shop.example.com', shopCa.certPem).catch(() => undefined));
    assert.equal(overDelta.fingerprint, fingerprintOf(rotated.certPem));
    assert.equal((await httpsGet(httpsPort, 'partners.example.com', shopCa.certPem, partner)).fingerprint, fingerprintOf(mtlsCert.certPem));
    assert.deepEqual(await deltaEnvoy.rejectedUpdates(), {});
  });
});
