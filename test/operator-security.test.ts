// What an operator sees of the mesh's security, against a real meshpilot whose CA signed real
// agents' certificates: `meshpilot proxy-config secret` (the real binary) from the CA's record and
// from an agent's status endpoint, the admin API's per-proxy identity, certificate and mTLS per
// port, and the web UI showing them in headless Chromium.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { ProxySecurity } from '../src/admin/proxy-security.ts';
import type { SecretAnswer } from '../src/commands/proxy-config-secret.ts';
import { CA_TOKEN_AUDIENCE, TLS_MODE_LABEL } from '../src/security/names.ts';
import { CLUSTER_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { startTestAgent, type AgentUnderTest } from './support/agent-harness.ts';
import { FakeKubeApi, ISTIO_SECURITY_CRDS, istioCrds } from './support/fake-kube-api.ts';
import { startMeshpilotOnKube, type KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { endpointSlice, eventually, MeshDir, pod, service, type K8sObject } from './support/mesh-dir.ts';

const BIN = new URL('../bin/meshpilot.js', import.meta.url).pathname;
const CHROMIUM = process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium';
const NS = 'default';

/** Pods by name: address, service account, and whether an agent runs beside them. */
const PODS = {
  'productpage-v1': { ip: '127.0.0.61', app: 'productpage', sa: 'productpage', agent: true },
  'reviews-v1': { ip: '127.0.0.62', app: 'reviews', sa: 'reviews', agent: true },
  'reviews-v2': { ip: '127.0.0.64', app: 'reviews', sa: 'reviews', agent: true },
  'ratings-v1': { ip: '127.0.0.63', app: 'ratings', sa: 'ratings', agent: false },
} as const;
type PodName = keyof typeof PODS;
const nodeId = (name: PodName | 'ghost'): string => `sidecar~${name === 'ghost' ? '127.0.0.69' : PODS[name].ip}~${name}.${NS}~${NS}.svc.cluster.local`;
const VM = 'sidecar~127.0.0.70~productpage-vm.default~default.svc.cluster.local';
const spiffe = (sa: string): string => `spiffe://cluster.local/ns/${NS}/sa/${sa}`;

function cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000, env: { ...process.env, MESHPILOT_ADMIN_URL: '', MESHPILOT_ADMIN_TOKEN: '' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

function mesh(): K8sObject[] {
  const objects: K8sObject[] = [
    service('productpage', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.80.1'),
    service('reviews', NS, [{ name: 'http', port: 9080, targetPort: 9080 }, { name: 'metrics', port: 9081, targetPort: 9081 }], '10.96.80.2'),
    service('ratings', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.80.3'),
  ];
  for (const [name, p] of Object.entries(PODS)) {
    // Istio's injector labels pods that run the agent; ratings runs none.
    const running = pod(name, NS, p.ip, { app: p.app, ...(p.agent ? { [TLS_MODE_LABEL]: 'istio' } : {}) });
    objects.push({ ...running, spec: { ...(running['spec'] as object), serviceAccountName: p.sa } });
  }
  const members = (app: string): { name: string; ip: string }[] => Object.entries(PODS).filter(([, p]) => p.app === app).map(([name, p]) => ({ name, ip: p.ip }));
  objects.push(endpointSlice('productpage', NS, { name: 'http', port: 9080 }, members('productpage')));
  objects.push({ ...endpointSlice('reviews', NS, { name: 'http', port: 9080 }, members('reviews')), ports: [{ name: 'http', port: 9080, protocol: 'TCP' }, { name: 'metrics', port: 9081, protocol: 'TCP' }] });
  objects.push(endpointSlice('ratings', NS, { name: 'http', port: 9080 }, members('ratings')));
  const peerAuthentication = (name: string, namespace: string, spec: object): K8sObject => ({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name, namespace }, spec });
  objects.push(
    peerAuthentication('default', 'istio-system', { mtls: { mode: 'STRICT' } }),
    peerAuthentication('reviews', NS, { selector: { matchLabels: { app: 'reviews' } }, portLevelMtls: { 9081: { mode: 'DISABLE' } } }),
    peerAuthentication('ratings', NS, { selector: { matchLabels: { app: 'ratings' } }, mtls: { mode: 'PERMISSIVE' } }),
  );
  return objects;
}

describe('the security an operator sees: proxy-config secret, the admin API and the UI', { timeout: 60_000 }, () => {
  let api: FakeKubeApi;
  let dir: MeshDir;
  let meshpilot: KubeMeshpilot;
  let adminUrl: string;
  let rootDir: string;
  let rootSerial: string;
  const agents = new Map<PodName, AgentUnderTest>();
  const proxies: RawAdsClient[] = [];

  const adsz = async (): Promise<Map<string, ProxySecurity>> => {
    const body = (await (await meshpilot.admin('/debug/adsz')).json()) as { connections: { proxy: string; security: ProxySecurity }[] };
    return new Map(body.connections.map((c) => [c.proxy, c.security]));
  };
  const secret = (...args: string[]) => cli(['proxy-config', 'secret', ...args, '--admin', adminUrl]);

  before(async () => {
    api = await FakeKubeApi.start();
    for (const crd of [...istioCrds(), ...ISTIO_SECURITY_CRDS]) api.installCrd(crd);
    api.applyAll([NS, 'istio-system', 'meshpilot-system'].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })));
    for (const sa of ['productpage', 'reviews']) api.registerToken(`${sa}-token`, { username: `system:serviceaccount:${NS}:${sa}`, audiences: [CA_TOKEN_AUDIENCE] });
    dir = await MeshDir.create();
    await dir.write('mesh.yaml', mesh());
    meshpilot = await startMeshpilotOnKube(api, { configDir: dir.path, serve: { secure: { port: 0, namespace: 'meshpilot-system' } } });
    adminUrl = `http://127.0.0.1:${meshpilot.adminPort}`;
    await eventually(async () => ((await meshpilot.admin('/ready')).status === 200 ? true : undefined), 10_000, '/ready');
    const security = meshpilot.security;
    assert.ok(security, 'the secure port runs');
    rootSerial = new X509Certificate(security.ca.rootPem).serialNumber.toLowerCase();
    rootDir = await mkdtemp(join(tmpdir(), 'meshpilot-operator-root-'));
    await writeFile(join(rootDir, 'root-cert.pem'), security.ca.rootPem);
    // One after the other: reviews-v2's certificate is the newest the CA issued to reviews.
    for (const [name, p] of Object.entries(PODS) as [PodName, (typeof PODS)[PodName]][]) {
      if (!p.agent) continue;
      const agent = await startTestAgent({ address: `127.0.0.1:${security.port}`, rootFile: join(rootDir, 'root-cert.pem') }, { serviceAccount: p.sa, podName: name, podIp: p.ip, sdsSocket: undefined }, `${p.sa}-token`);
      await agent.agent.certificate.ready();
      agents.set(name, agent);
    }
    for (const name of [...Object.keys(PODS), 'ghost'] as (PodName | 'ghost')[]) {
      const proxy = new RawAdsClient(meshpilot.xdsPort, nodeId(name));
      proxy.send({ typeUrl: CLUSTER_TYPE });
      await proxy.next((r) => r.type_url === CLUSTER_TYPE);
      proxies.push(proxy);
    }
    // A VM's proxy: no pod at its address, its identity from its node metadata as istio-agent sends it.
    const vm = new RawAdsClient(meshpilot.xdsPort, VM, { NAMESPACE: NS, SERVICE_ACCOUNT: 'productpage' });
    vm.send({ typeUrl: CLUSTER_TYPE });
    await vm.next((r) => r.type_url === CLUSTER_TYPE);
    proxies.push(vm);
  });

  after(async () => {
    for (const proxy of proxies) proxy.close();
    for (const agent of agents.values()) await agent.close();
    await meshpilot.close();
    await api.close();
    await dir.remove();
    await rm(rootDir, { recursive: true, force: true });
  });

  const agentOf = (name: PodName): AgentUnderTest => {
    const agent = agents.get(name);
    assert.ok(agent, `${name} runs an agent`);
    return agent;
  };

  it("proxy-config secret shows productpage's certificate from the CA's record: the agent's serial, its SPIFFE ID, and the root", async () => {
    const status = agentOf('productpage-v1').agent.status();
    const table = await secret(nodeId('productpage-v1'));
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^RESOURCE NAME\s+TYPE\s+STATUS\s+VALID CERT\s+SERIAL NUMBER\s+NOT AFTER\s+NOT BEFORE\s+IDENTITY$/);
    assert.equal(lines[1]?.split(/\s{3,}/).join('|'), ['default', 'Cert Chain', 'ACTIVE', 'true', status.serial, status.notAfter, status.notBefore, spiffe('productpage')].join('|'));
    assert.match(lines[2] ?? '', new RegExp(`^ROOTCA\\s+CA\\s+ACTIVE\\s+true\\s+${rootSerial}\\s+.*trust domain cluster\\.local$`));
    assert.match(table.stdout, /^source: meshpilot's CA record$/m);
  });

  it('for two pods of one service account, the CA shows the newest and says so; --agent reads the certificate this pod holds', async () => {
    const [v1, v2] = [agentOf('reviews-v1').agent.status(), agentOf('reviews-v2').agent.status()];
    assert.notEqual(v1.serial, v2.serial, 'each pod has its own certificate');
    const statusPort = agentOf('reviews-v1').agent.statusPort ?? 0;
    const [fromCa, fromAgent] = await Promise.all([secret(nodeId('reviews-v1')), secret(nodeId('reviews-v1'), '--agent', `http://127.0.0.1:${statusPort}/`, '-o', 'json')]);
    assert.equal(fromCa.code, 0, fromCa.stderr);
    assert.match(fromCa.stdout, new RegExp(`^default\\s+Cert Chain\\s+ACTIVE\\s+true\\s+${v2.serial ?? '?'}\\s`, 'm'));
    assert.match(fromCa.stdout, /the newest of 2 certificates the CA issued to spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews .*--agent URL/);
    assert.equal(fromAgent.code, 0, fromAgent.stderr);
    const answer = JSON.parse(fromAgent.stdout) as SecretAnswer;
    assert.deepEqual([answer.source, answer.identity], ['agent', spiffe('reviews')]);
    assert.deepEqual(answer.secrets.map((s) => [s.name, s.status, s.serial, s.notAfter]), [['default', 'ACTIVE', v1.serial, v1.notAfter], ['ROOTCA', 'ACTIVE', rootSerial, meshpilot.security?.ca.rootNotAfter.toISOString()]], "this pod's certificate, and the CA's root as its trust bundle");
  });

  it('says why no certificate is known, with a code and exit 1: no agent beside the proxy, an unreachable agent', async () => {
    const [ratings, noAgent] = await Promise.all([secret(nodeId('ratings-v1')), secret(nodeId('ratings-v1'), '--agent', 'http://127.0.0.1:1')]);
    assert.equal(ratings.code, 1);
    assert.equal(ratings.stdout, '');
    assert.match(ratings.stderr, /^MP_NO_CERTIFICATE: no certificate is known for proxy "sidecar~127\.0\.0\.63~ratings-v1\.default~default\.svc\.cluster\.local": this meshpilot's CA has issued no certificate to spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings since it started \(each replica records only what it signed.*\): is `meshpilot agent`.*--agent URL/);
    assert.equal(noAgent.code, 1);
    assert.match(noAgent.stderr, /^MP_AGENT_UNREACHABLE: cannot read the agent's status at http:\/\/127\.0\.0\.1:1\/status/);
  });

  it("the admin API gives each proxy its identity (or why it is unknown), its certificate's expiry, and the mTLS mode of each inbound port", async () => {
    const views = await adsz();
    const productpage = views.get(nodeId('productpage-v1'));
    assert.deepEqual(productpage?.identity, { spiffeId: spiffe('productpage'), namespace: NS, serviceAccount: 'productpage', source: 'workload' });
    assert.deepEqual([productpage.certificate?.notAfter, productpage.certificate?.expired], [agentOf('productpage-v1').agent.status().notAfter, false]);
    assert.deepEqual(productpage.mtls, { mode: 'STRICT', policies: ['istio-system/default'], ports: [{ port: 9080, service: 'productpage.default.svc.cluster.local:9080', mode: 'STRICT', accepts: 'STRICT' }] });
    const reviews = views.get(nodeId('reviews-v1'));
    assert.deepEqual(reviews?.mtls.ports.map((p) => [p.port, p.mode, p.accepts]), [[9080, 'STRICT', 'STRICT'], [9081, 'DISABLE', 'plaintext']]);
    assert.deepEqual(reviews.mtls.policies, ['istio-system/default', 'default/reviews']);
    assert.equal(reviews.issuedToIdentity, 2);
    const ratings = views.get(nodeId('ratings-v1'));
    assert.equal(ratings?.certificate, null);
    assert.match(ratings.unknownBecause ?? '', /issued no certificate to spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings/);
    assert.deepEqual(ratings.mtls.ports.map((p) => [p.port, p.mode, p.accepts]), [[9080, 'PERMISSIVE', 'plaintext']], 'PERMISSIVE without a certificate takes plaintext only');
    const vm = views.get(VM);
    assert.deepEqual([vm?.identity?.spiffeId, vm?.identity?.source, vm?.certificate?.serial], [spiffe('productpage'), 'node metadata', agentOf('productpage-v1').agent.status().serial]);
    const ghost = views.get(nodeId('ghost'));
    assert.equal(ghost?.identity, null);
    assert.match(ghost.unknownBecause ?? '', /^meshpilot does not know the identity of .*: no SERVICE_ACCOUNT in its node metadata and no pod with a service account at 127\.0\.0\.69 or named default\/ghost$/);
    const certs = (await (await meshpilot.admin(`/debug/certs?proxyID=${encodeURIComponent(nodeId('reviews-v2'))}`)).json()) as { root: { serial: string }; certificates: { serial: string }[]; proxy: ProxySecurity };
    assert.equal(certs.root.serial, rootSerial);
    assert.deepEqual(certs.certificates.map((c) => c.serial), [agentOf('reviews-v1').agent.status().serial, agentOf('reviews-v2').agent.status().serial]);
    assert.equal(certs.proxy.certificate?.serial, agentOf('reviews-v2').agent.status().serial);
    const docs = (await (await meshpilot.admin('/docs/json')).json()) as { paths: Record<string, { get: { parameters?: { name: string }[]; responses: Record<string, { content?: Record<string, { schema: { properties: Record<string, unknown> } }> }> } }> };
    assert.ok(docs.paths['/debug/certs']?.get.parameters?.some((p) => p.name === 'proxyID'), '/docs names ?proxyID= of /debug/certs');
    const adszSchema = docs.paths['/debug/adsz']?.get.responses['200']?.content?.['application/json']?.schema.properties['connections'] as { items: { properties: Record<string, unknown> } } | undefined;
    assert.ok(adszSchema?.items.properties['security'], '/docs describes the security of /debug/adsz');
  });

  it('the web UI shows each proxy its identity, certificate expiry ("unknown" when none) and mTLS per port', { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}` }, async () => {
    const profile = await mkdtemp(join(tmpdir(), 'meshpilot-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${adminUrl}/ui/`);
      const row = (name: PodName | 'ghost'): ReturnType<typeof page.locator> => page.locator(`#proxy-table tr[data-proxy="${nodeId(name)}"]`);
      await row('reviews-v1').locator('.mtls-port').first().waitFor();
      assert.equal(await row('productpage-v1').locator('td.identity').textContent(), spiffe('productpage'));
      assert.match((await row('productpage-v1').locator('td.cert').textContent()) ?? '', new RegExp(`^${(agentOf('productpage-v1').agent.status().notAfter ?? '?').replace(/[.]/g, '\\.')}in 23h`));
      assert.deepEqual(await row('reviews-v1').locator('.mtls-port').allTextContents(), ['9080 STRICT', '9081 DISABLE (accepts plaintext)']);
      assert.equal(await row('ratings-v1').locator('td.cert').textContent(), 'unknown');
      assert.match((await row('ratings-v1').locator('td.cert').getAttribute('title')) ?? '', /issued no certificate to spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings/);
      assert.deepEqual(await row('ratings-v1').locator('.mtls-port').allTextContents(), ['9080 PERMISSIVE (accepts plaintext)']);
      assert.equal(await row('ghost').locator('td.identity').textContent(), 'unknown');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    }
  });
});
