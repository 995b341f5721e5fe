// AuthorizationPolicy on real traffic through real Envoy sidecars (pods in network namespaces,
// plaintext): productpage's application calls reviews-v2's pod, whose sidecar enforces the
// policies selecting it. Each row writes its policies, waits until every Envoy has ACKed them,
// and checks what the caller got and what Envoy's RBAC stats say. Rows needing a caller identity
// (principals) need mTLS: envoy-sidecar-mtls.test.ts has them, with certificates from the agents.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { rule, type K8sObject } from './support/mesh-dir.ts';
import { HTTP_PORT, NS, statuses, TCP_PORT, testRows, useSidecarMesh, type SidecarMesh } from './support/sidecar-mesh.ts';

const reviewsV2 = { matchLabels: { app: 'reviews', version: 'v2' } };
const policy = (name: string, spec: Record<string, unknown>): K8sObject => rule('AuthorizationPolicy', name, NS, { selector: reviewsV2, ...spec });
const DENIED_STAT = `http.inbound_0.0.0.0_${String(HTTP_PORT)}.rbac.denied`;

/** Requests from productpage's application straight to reviews-v2's pod (passed through productpage's sidecar, into reviews-v2's). */
function callReviewsV2(mesh: SidecarMesh, request: { path?: string; method?: string; count?: number } = {}): ReturnType<SidecarMesh['call']> {
  const ip = mesh.pod('reviews-v2').ip;
  return mesh.call({ address: ip, host: `${ip}:${String(HTTP_PORT)}`, count: 3, ...request });
}

function oldConnectionsDrained(mesh: SidecarMesh): Promise<void> {
  return mesh.oldConnectionsDrained(mesh.reviewsV2Proxy);
}

/** What /debug/authz says of productpage's request to reviews-v2, over what reviews-v2's sidecar was sent. */
async function explained(mesh: SidecarMesh, request: { path?: string; method?: string; port?: number }): Promise<{ allowed: boolean; decidedBy: { name: string } | null }> {
  const reviews = mesh.pod('reviews-v2');
  const query = new URLSearchParams({
    proxyID: `sidecar~${reviews.ip}~reviews-v2-0.${NS}~${NS}.svc.cluster.local`,
    port: String(request.port ?? HTTP_PORT),
    ip: mesh.pod('productpage').ip,
    method: request.method ?? 'GET',
    path: request.path ?? '/',
    host: `${reviews.ip}:${String(HTTP_PORT)}`,
  });
  const response = await mesh.meshpilot.admin(`/debug/authz?${query.toString()}`);
  assert.equal(response.status, 200);
  const body = (await response.json()) as { explain: { allowed: boolean; decidedBy: { name: string } | null } };
  return body.explain;
}

async function deniedCount(mesh: SidecarMesh): Promise<number> {
  return (await mesh.reviewsV2Proxy.stats({ filter: `${DENIED_STAT.replaceAll('.', '\\.')}$` })).get(DENIED_STAT) ?? 0;
}

describe('AuthorizationPolicy through real Envoy sidecars', { concurrency: false }, () => {
  const meshFor = useSidecarMesh({ envoyArgs: ['--drain-time-s', '1', '--drain-strategy', 'immediate'] });
  testRows(meshFor, [
    {
      name: "a DENY on /admin answers 403 'RBAC: access denied' for that path only",
      rules: [policy('no-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }] })],
      check: async (mesh) => {
        await oldConnectionsDrained(mesh);
        const before = await deniedCount(mesh);
        const admin = await callReviewsV2(mesh, { path: '/admin/users' });
        assert.deepEqual(statuses(admin), { 403: 3 });
        assert.equal(admin[0]?.body, 'RBAC: access denied');
        const reviews = await callReviewsV2(mesh, { path: '/reviews/1' });
        assert.deepEqual(statuses(reviews), { 200: 3 });
        assert.equal(reviews[0]?.headers?.['x-served-by'], 'reviews-v2');
        assert.equal(await deniedCount(mesh), before + 3, "Envoy's RBAC filter counted each denial");
        const adminExplained = await explained(mesh, { path: '/admin/users' });
        assert.deepEqual([adminExplained.allowed, adminExplained.decidedBy?.name], [false, 'no-admin'], 'explain agrees with Envoy');
        assert.equal((await explained(mesh, { path: '/reviews/1' })).allowed, true, 'explain agrees with Envoy');
      },
    },
    {
      name: "an ALLOW for productpage's address and GET lets GET through and denies DELETE (an ALLOW means default deny)",
      rules: [],
      check: async (mesh) => {
        await oldConnectionsDrained(mesh);
        await mesh.applyRules([policy('productpage-get', { rules: [{ from: [{ source: { ipBlocks: [`${mesh.pod('productpage').ip}/32`] } }], to: [{ operation: { methods: ['GET'] } }] }] })]);
        await oldConnectionsDrained(mesh);
        assert.deepEqual(statuses(await callReviewsV2(mesh, { method: 'GET' })), { 200: 3 });
        assert.deepEqual(statuses(await callReviewsV2(mesh, { method: 'DELETE' })), { 403: 3 });
        assert.equal((await explained(mesh, { method: 'GET' })).decidedBy?.name, 'productpage-get', 'explain agrees with Envoy');
        const deleted = await explained(mesh, { method: 'DELETE' });
        assert.deepEqual([deleted.allowed, deleted.decidedBy], [false, null]);
      },
    },
    {
      name: 'an ALLOW for other addresses denies productpage, whatever the method',
      rules: [policy('others-only', { rules: [{ from: [{ source: { ipBlocks: ['203.0.113.99/32'], notIpBlocks: ['203.0.113.98'] } }] }] })],
      check: async (mesh) => {
        await oldConnectionsDrained(mesh);
        assert.deepEqual(statuses(await callReviewsV2(mesh, { method: 'GET' })), { 403: 3 });
        assert.equal((await explained(mesh, { method: 'GET' })).allowed, false, 'explain agrees with Envoy');
      },
    },
    {
      name: 'removing the policies restores access without a restart',
      rules: [],
      check: async (mesh) => {
        await oldConnectionsDrained(mesh);
        assert.deepEqual(statuses(await callReviewsV2(mesh, { path: '/admin/users' })), { 200: 3 });
        assert.deepEqual(statuses(await callReviewsV2(mesh, { method: 'DELETE' })), { 200: 3 });
      },
    },
    {
      name: "a DENY on a TCP port closes the connection at reviews-v2's inbound TCP chain (network RBAC)",
      rules: [policy('no-echo', { action: 'DENY', rules: [{ to: [{ operation: { ports: [String(TCP_PORT)] } }] }] })],
      check: async (mesh) => {
        await oldConnectionsDrained(mesh);
        const reply = await mesh.client.tcp({ address: mesh.pod('reviews-v2').ip, port: TCP_PORT, message: 'hello' });
        assert.equal(reply.reply, undefined, `no echo through a denied port, got ${JSON.stringify(reply)}`);
        await mesh.reviewsV2Proxy.waitForStat('tcp.rbac.denied', 1);
        const allowed = await mesh.client.tcp({ address: mesh.pod('reviews-v1').ip, port: TCP_PORT, message: 'hello' });
        assert.deepEqual(allowed, { reply: 'reviews-v1 hello' }, 'reviews-v1 has no sidecar and no policy');
      },
    },
  ]);
});
