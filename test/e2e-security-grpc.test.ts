// End to end, the whole security story for proxyless gRPC with real parts only: meshpilot's CA on
// its secure port signs each workload's certificate for its service-account token (checked by
// TokenReview), `meshpilot agent` writes the files and the gRPC bootstrap, and @grpc/grpc-js-xds
// clients and an XdsServer carry mTLS calls that PeerAuthentication and AuthorizationPolicy govern.
import './support/grpc-xds-rbac.ts';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CA_TOKEN_AUDIENCE, CERT_CHAIN_FILE, ROOT_CERT_FILE, TLS_MODE_LABEL } from '../src/security/names.ts';
import { startTestAgent, type AgentUnderTest } from './support/agent-harness.ts';
import { FakeKubeApi, ISTIO_SECURITY_CRDS, istioCrds } from './support/fake-kube-api.ts';
import { startMeshpilotOnKube, type KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { freePort, HELLO_PATH, startXdsServer, WhoamiCaller, type SecureServer } from './support/grpc-mtls.ts';
import { WHOAMI_PATH } from './support/backends.ts';
import { endpointSlice, eventually, MeshDir, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { grpcJsXdsVersion } from './support/interop-clients.ts';
import { recordInterop, recordInteropVersion } from './support/interop-results.ts';

const NS = 'default';
const REVIEWS = 'xds:///reviews.default.svc.cluster.local:50051';
const PRODUCTPAGE_SAN = 'URI:spiffe://cluster.local/ns/default/sa/productpage';
const WORKLOADS = { reviews: '127.0.0.51', productpage: '127.0.0.52', ratings: '127.0.0.53' } as const;
type Workload = keyof typeof WORKLOADS;
/** Short-lived certificates, renewed at half their life: each workload rotates during the run. */
const CERT_TTL_S = 12;

/** A Service, its Pod (with Istio's tlsMode label and its own service account) and its endpoints. */
function workload(name: Workload, port: number, vip: string): K8sObject[] {
  const ip = WORKLOADS[name];
  const running = pod(`${name}-v1`, NS, ip, { app: name, [TLS_MODE_LABEL]: 'istio' });
  return [
    service(name, NS, [{ name: 'grpc', port: 50051, targetPort: port }], vip),
    { ...running, spec: { ...(running['spec'] as object), serviceAccountName: name } },
    endpointSlice(name, NS, { name: 'grpc', port }, [{ name: `${name}-v1`, ip }]),
  ];
}

recordInteropVersion('grpc-js', grpcJsXdsVersion());

const strictMeshWide: K8sObject = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'istio-system' }, spec: { mtls: { mode: 'STRICT' } } };
const onReviews = { selector: { matchLabels: { app: 'reviews' } } };

describe('workload identity, mTLS and authorization for proxyless gRPC, from the CA to the call', { timeout: 90_000 }, () => {
  let api: FakeKubeApi;
  let dir: MeshDir;
  let meshpilot: KubeMeshpilot;
  let rootDir: string;
  const agents = new Map<Workload, AgentUnderTest>();
  let reviews: SecureServer;
  /** When the last of the first certificates expires: a call after it needs a rotated one. */
  let firstExpiry: number;
  const opened: WhoamiCaller[] = [];

  /** A new client (its own connection) of reviews, as `name` with its agent's bootstrap. */
  async function caller(name: 'productpage' | 'ratings'): Promise<WhoamiCaller> {
    const agent = agents.get(name);
    assert.ok(agent);
    const client = new WhoamiCaller(REVIEWS, await readFile(agent.bootstrapFile, 'utf8'), { 'grpc.use_local_subchannel_pool': 1 });
    opened.push(client);
    return client;
  }

  /** Waits until a fresh client of `name` gets `code` for `method`. */
  async function until(name: 'productpage' | 'ratings', method: 'Whoami' | 'Hello', code: grpc.status): Promise<void> {
    await eventually(async () => {
      const client = await caller(name);
      const got = await client.status(3000, method);
      client.close();
      return got === code ? true : undefined;
    }, 15_000, `${name}'s ${method} to get ${grpc.status[code]}`);
  }

  before(async () => {
    api = await FakeKubeApi.start();
    for (const crd of [...istioCrds(), ...ISTIO_SECURITY_CRDS]) api.installCrd(crd);
    api.applyAll(['default', 'istio-system', 'meshpilot-system'].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })));
    for (const name of Object.keys(WORKLOADS)) {
      api.registerToken(`${name}-token`, { username: `system:serviceaccount:${NS}:${name}`, audiences: [CA_TOKEN_AUDIENCE] });
    }
    const reviewsPort = await freePort(WORKLOADS.reviews);
    dir = await MeshDir.create();
    await dir.write('workloads.yaml', [
      ...workload('reviews', reviewsPort, '10.96.70.1'),
      ...workload('productpage', 9080, '10.96.70.2'),
      ...workload('ratings', 9080, '10.96.70.3'),
      strictMeshWide,
    ]);
    // The config from the directory; the cluster answers TokenReview and keeps the CA's root.
    meshpilot = await startMeshpilotOnKube(api, { configDir: dir.path, serve: { secure: { port: 0, namespace: 'meshpilot-system' } } });
    await eventually(async () => ((await meshpilot.admin('/ready')).status === 200 ? true : undefined), 10_000, '/ready');
    const security = meshpilot.security;
    assert.ok(security, 'the secure port runs');
    rootDir = await mkdtemp(join(tmpdir(), 'meshpilot-mesh-root-'));
    const rootFile = join(rootDir, 'root-cert.pem');
    await writeFile(rootFile, security.ca.rootPem);
    const ca = { address: `127.0.0.1:${security.port}`, rootFile };
    const xdsAddress = `127.0.0.1:${meshpilot.xdsPort}`;
    for (const name of Object.keys(WORKLOADS) as Workload[]) {
      const agent = await startTestAgent(ca, {
        serviceAccount: name,
        podName: `${name}-v1`,
        podIp: WORKLOADS[name],
        sdsSocket: undefined,
        xdsAddress,
        grpcBootstrap: 'bootstrap.json',
        validitySeconds: CERT_TTL_S,
        renewAt: 0.5,
      }, `${name}-token`);
      agents.set(name, agent);
    }
    await Promise.all([...agents.values()].map((agent) => agent.agent.certificate.ready()));
    await eventually(() => ([...agents.values()].every((agent) => agent.agent.status().files?.lastWrite !== undefined) ? true : undefined), 10_000, "the agents' files");
    firstExpiry = Math.max(...[...agents.values()].map((agent) => new Date(agent.agent.status().notAfter ?? 0).getTime()));
    const reviewsAgent = agents.get('reviews');
    assert.ok(reviewsAgent);
    reviews = await startXdsServer('reviews', `${WORKLOADS.reviews}:${reviewsPort}`, await readFile(reviewsAgent.bootstrapFile, 'utf8'));
  });

  after(async () => {
    for (const client of opened) client.close();
    await reviews.close();
    for (const agent of agents.values()) await agent.close();
    await meshpilot.close();
    await api.close();
    await dir.remove();
    await rm(rootDir, { recursive: true, force: true });
  });

  it("each agent wrote a certificate signed by meshpilot's CA for its own service account", async () => {
    const root = new X509Certificate(await readFile(join(rootDir, 'root-cert.pem')));
    for (const [name, agent] of agents) {
      const leaf = new X509Certificate(await readFile(join(agent.outputDir, CERT_CHAIN_FILE)));
      assert.equal(leaf.subjectAltName, `URI:spiffe://cluster.local/ns/default/sa/${name}`);
      assert.ok(leaf.verify(root.publicKey), `${name}'s certificate is signed by the mesh root`);
      assert.equal(await readFile(join(agent.outputDir, ROOT_CERT_FILE), 'utf8'), root.toString());
    }
  });

  it('STRICT mesh-wide: productpage reaches reviews over mTLS and reviews sees its SPIFFE identity; a plaintext client is refused', async () => {
    const view = await eventually(async () => (await caller('productpage')).call().catch(() => undefined), 15_000, 'a call to reviews');
    assert.deepEqual(view, { server: 'reviews', transport: 'ssl', peer: PRODUCTPAGE_SAN });
    const plain = new WhoamiCaller(reviews.address, undefined, { 'grpc.use_local_subchannel_pool': 1 });
    opened.push(plain);
    assert.equal(await plain.status(), grpc.status.UNAVAILABLE);
    recordInterop('mtls-strict', 'grpc-js', 'pass');
  });

  it('an ALLOW for productpage only: productpage gets through, ratings gets PERMISSION_DENIED', async () => {
    await dir.write('authz.yaml', [rule('AuthorizationPolicy', 'reviews-callers', NS, { ...onReviews, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/productpage'] } }] }] })]);
    await until('ratings', 'Whoami', grpc.status.PERMISSION_DENIED);
    const view = await (await caller('productpage')).call();
    assert.deepEqual(view, { server: 'reviews', transport: 'ssl', peer: PRODUCTPAGE_SAN });
    assert.equal(await (await caller('productpage')).status(3000, 'Hello'), grpc.status.OK);
    recordInterop('authz-principal', 'grpc-js', 'pass');
  });

  it('a DENY on one method blocks just that method for productpage', async () => {
    await dir.write('deny.yaml', [rule('AuthorizationPolicy', 'no-hello', NS, { ...onReviews, action: 'DENY', rules: [{ to: [{ operation: { paths: [HELLO_PATH] } }] }] })]);
    await until('productpage', 'Hello', grpc.status.PERMISSION_DENIED);
    assert.equal(await (await caller('productpage')).status(3000, 'Whoami'), grpc.status.OK, `${WHOAMI_PATH} still answers`);
    assert.equal(await (await caller('ratings')).status(3000, 'Whoami'), grpc.status.PERMISSION_DENIED);
  });

  it('removing the policies restores access without a restart', async () => {
    await dir.delete('authz.yaml');
    await dir.delete('deny.yaml');
    await until('ratings', 'Whoami', grpc.status.OK);
    await until('productpage', 'Hello', grpc.status.OK);
    const view = await (await caller('ratings')).call();
    assert.deepEqual(view, { server: 'reviews', transport: 'ssl', peer: 'URI:spiffe://cluster.local/ns/default/sa/ratings' });
  });

  it("certificates rotate under a stream of calls: none fails, and calls go on past the first certificates' expiry", async () => {
    const rotationsOf = (name: Workload): number => agents.get(name)?.agent.status().rotations ?? 0;
    const startedWith = { productpage: rotationsOf('productpage'), reviews: rotationsOf('reviews') };
    const rotatedSince = (): boolean => rotationsOf('productpage') > startedWith.productpage && rotationsOf('reviews') > startedWith.reviews;
    const giveUpAt = Date.now() + 3 * CERT_TTL_S * 1000;
    const steady = await caller('productpage');
    let calls = 0;
    const failures: string[] = [];
    // gRPC re-reads the files every second: two seconds past the expiry every handshake uses a rotated certificate.
    while ((Date.now() < firstExpiry + 2000 || !rotatedSince()) && Date.now() < giveUpAt) {
      const fresh = await caller('productpage');
      const results = await Promise.allSettled([steady.call(), fresh.call()]);
      fresh.close();
      calls += results.length;
      for (const result of results) if (result.status === 'rejected') failures.push(String(result.reason));
      // Pacing the stream (a call pair about every 50 ms), not waiting for anything.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(rotatedSince(), 'productpage and reviews both rotated during the stream');
    assert.ok(Date.now() >= firstExpiry, 'the stream went on past the first certificates');
    assert.deepEqual(failures, [], `no call of ${calls} failed`);
    const view = await (await caller('productpage')).call();
    assert.deepEqual(view, { server: 'reviews', transport: 'ssl', peer: PRODUCTPAGE_SAN });
    for (const [name, agent] of agents) {
      const { rotations } = agent.agent.status();
      // At half of each certificate's life, so a handful in the run; never one after another.
      assert.ok(rotations >= 1 && rotations <= 4, `${name} rotated ${rotations} times`);
    }
  });
});
