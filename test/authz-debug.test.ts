// /debug/authz over fixtures/security-authz, as an operator asks it: which policies apply to a
// connected sidecar and in which order, the RBAC filters it was sent, and whether a caller would
// be allowed and by which policy (evaluated over what the sidecar holds, as Envoy evaluates it).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { LISTENER_TYPE } from '../src/xds/type-urls.ts';
import { objectsFromDirectory, startClusterMesh } from './support/fake-kube-api-meshpilot.ts';
import { eventually } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { FIXTURES } from './support/rendered.ts';
import { SotwFollower } from './support/xds-follower.ts';

const REVIEWS = 'sidecar~10.244.1.7~reviews-v1-6584ddcf65-9wq2m.default~default.svc.cluster.local';
const PRODUCTPAGE = 'sidecar~10.244.2.7~productpage-v1-d5789fdfb-7kq2n.default~default.svc.cluster.local';
const PRODUCTPAGE_SA = 'cluster.local/ns/default/sa/bookinfo-productpage';

interface AuthzAnswer {
  policies: { namespace: string; name: string; action: string; scope: string }[];
  defaultDecision: string;
  ports: { chain: string; port: number | null; protocol: string; sent: boolean; filters: { action: string; policies: string[] }[] }[];
  explain: { allowed: boolean; chain: string | null; decidedBy: { rbacPolicy: string; namespace: string; name: string; rule: number; action: string } | null; steps: { action: string; matched: string | null; outcome: string }[]; summary: string } | null;
}

describe('/debug/authz explains who may call a workload, over what its sidecar holds', () => {
  let meshpilot: TestMeshpilot;
  const followers: SotwFollower[] = [];

  before(async () => {
    meshpilot = await startMeshpilot(`${FIXTURES}security-authz`);
    for (const id of [REVIEWS, PRODUCTPAGE]) {
      const follower = new SotwFollower(meshpilot.xdsPort, id);
      followers.push(follower);
      await eventually(() => (follower.held.get(LISTENER_TYPE)?.has('virtualInbound') ? true : undefined), 5000, 'listeners');
    }
  });

  after(async () => {
    for (const follower of followers) follower.close();
    await meshpilot.close();
  });

  async function authz(proxy: string, caller: Record<string, string | string[]> = {}): Promise<AuthzAnswer> {
    const query = new URLSearchParams({ proxyID: proxy });
    for (const [key, value] of Object.entries(caller)) for (const v of [value].flat()) query.append(key, v);
    const response = await meshpilot.admin(`/debug/authz?${query.toString()}`);
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.json()) as AuthzAnswer;
  }

  it("lists reviews' policies in Istio's evaluation order, and the RBAC filters its 9080 chain was sent", async () => {
    const answer = await authz(REVIEWS);
    assert.deepEqual(answer.policies.map((p) => `${p.action} ${p.namespace}/${p.name} (${p.scope})`), [
      'AUDIT istio-system/audit-everything (mesh)',
      'ALLOW istio-system/allow-nothing (mesh)',
      'ALLOW default/reviews-viewer (workload)',
    ]);
    assert.equal(answer.defaultDecision, 'deny');
    const http = answer.ports.find((p) => p.port === 9080);
    assert.deepEqual(http?.filters.map((f) => [f.action, f.policies]), [
      ['LOG', ['ns[istio-system]-policy[audit-everything]-rule[0]']],
      ['ALLOW', ['ns[istio-system]-policy[allow-nothing]-rule[0]', 'ns[default]-policy[reviews-viewer]-rule[0]']],
    ]);
    assert.equal(http.sent, true);
    assert.equal(answer.explain, null);
  });

  it("productpage's identity may GET reviews, by reviews-viewer's rule 0 (after the audit logged it)", async () => {
    const { explain } = await authz(REVIEWS, { port: '9080', principal: PRODUCTPAGE_SA, method: 'GET', path: '/reviews/0', host: 'reviews' });
    assert.equal(explain?.allowed, true, explain?.summary);
    assert.deepEqual(explain.decidedBy, { rbacPolicy: 'ns[default]-policy[reviews-viewer]-rule[0]', namespace: 'default', name: 'reviews-viewer', rule: 0, action: 'ALLOW' });
    assert.deepEqual(explain.steps.map((s) => s.outcome), ['logged', 'allowed']);
  });

  it('a plaintext caller, a POST, an x-canary header or an unknown host is denied: no ALLOW rule matches', async () => {
    const callers: Record<string, string | string[]>[] = [
      { method: 'GET', host: 'reviews' },
      { principal: PRODUCTPAGE_SA, method: 'POST', host: 'reviews' },
      { principal: PRODUCTPAGE_SA, method: 'GET', host: 'reviews', header: 'x-canary:1' },
      { principal: PRODUCTPAGE_SA, method: 'GET', host: 'evil.example' },
    ];
    for (const caller of callers) {
      const { explain } = await authz(REVIEWS, { port: '9080', ...caller });
      assert.equal(explain?.allowed, false, JSON.stringify(caller));
      assert.equal(explain.decidedBy, null);
      assert.match(explain.summary, /ALLOW policies apply and none matches/);
    }
  });

  it('a namespace in test-* is let in unless its service account is untrusted', async () => {
    assert.equal((await authz(REVIEWS, { port: '9080', principal: 'cluster.local/ns/test-1/sa/runner', method: 'GET', host: 'reviews' })).explain?.allowed, true);
    assert.equal((await authz(REVIEWS, { port: '9080', principal: 'cluster.local/ns/test-1/sa/untrusted', method: 'GET', host: 'reviews' })).explain?.allowed, false);
  });

  it("productpage's /admin is denied by productpage-no-admin before its ALLOW is looked at; its home page is allowed", async () => {
    const admin = (await authz(PRODUCTPAGE, { port: '9080', method: 'GET', path: '/admin/users', ip: '10.244.2.7' })).explain;
    assert.equal(admin?.allowed, false);
    assert.equal(admin.decidedBy?.rbacPolicy, 'ns[default]-policy[productpage-no-admin]-rule[0]');
    assert.deepEqual(admin.steps.map((s) => `${s.action}:${s.outcome}`), ['LOG:logged', 'DENY:denied']);
    const home = (await authz(PRODUCTPAGE, { port: '9080', method: 'GET', path: '/productpage', ip: '10.244.2.7' })).explain;
    assert.equal(home?.decidedBy?.name, 'productpage-viewer');
    const fromBlockedRange = (await authz(PRODUCTPAGE, { port: '9080', method: 'GET', path: '/productpage', ip: '203.0.113.5' })).explain;
    assert.equal(fromBlockedRange?.decidedBy?.rbacPolicy, 'ns[default]-policy[productpage-no-admin]-rule[1]');
    const exempt = (await authz(PRODUCTPAGE, { port: '9080', method: 'GET', path: '/productpage', ip: '203.0.113.7' })).explain;
    assert.equal(exempt?.allowed, true, 'notIpBlocks exempts 203.0.113.7');
  });

  it('a TCP connection to a port no service declares takes the catch-all chain, whose ALLOW denies it', async () => {
    const { explain } = await authz(REVIEWS, { port: '15000', principal: PRODUCTPAGE_SA });
    assert.equal(explain?.chain, 'virtualInbound-catchall');
    assert.equal(explain.allowed, false);
  });

  it('`meshpilot authz` prints the policies and the verdict, and exits 1 for a denied caller', async () => {
    const cli = (args: readonly string[]): Promise<{ code: number; stdout: string }> =>
      new Promise((resolve) => {
        const bin = new URL('../bin/meshpilot.js', import.meta.url).pathname;
        execFile(process.execPath, [bin, 'authz', REVIEWS, '--admin', meshpilot.adminUrl, ...args], { timeout: 20_000 }, (error, stdout) => {
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout });
        });
      });
    const allowed = await cli(['--port', '9080', '--principal', PRODUCTPAGE_SA, '-X', 'GET', '--host', 'reviews']);
    assert.equal(allowed.code, 0, allowed.stdout);
    assert.match(allowed.stdout, /policy {5}ALLOW {2}default\/reviews-viewer \(workload, 1 rules\)/);
    assert.match(allowed.stdout, /=> allowed on port 9080 by policy ns\[default\]-policy\[reviews-viewer\]-rule\[0\]/);
    const denied = await cli(['--port', '9080', '-X', 'GET', '--host', 'reviews']);
    assert.equal(denied.code, 1);
    assert.match(denied.stdout, /=> denied on port 9080: ALLOW policies apply and none matches the caller/);
  });

  it('an unknown proxy is MP_NOT_FOUND, a malformed header MP_BAD_REQUEST', async () => {
    assert.equal((await meshpilot.admin('/debug/authz?proxyID=nobody')).status, 404);
    assert.equal((await meshpilot.admin(`/debug/authz?proxyID=${encodeURIComponent(REVIEWS)}&port=9080&header=nocolon`)).status, 400);
  });
});

describe('AuthorizationPolicies read from a Kubernetes cluster', () => {
  it('are watched at security.istio.io/v1 and applied as from a directory', async () => {
    const { api, meshpilot } = await startClusterMesh(await objectsFromDirectory(`${FIXTURES}security-authz`));
    try {
      const configz = (await (await meshpilot.admin('/debug/configz')).json()) as { rules: { kind: string; name: string; applied: boolean; source: { location: string } }[] };
      const policies = configz.rules.filter((r) => r.kind === 'AuthorizationPolicy');
      assert.equal(policies.length, 7);
      assert.ok(policies.every((p) => p.applied && p.source.location.startsWith('/apis/security.istio.io/')), JSON.stringify(policies));
    } finally {
      await meshpilot.close();
      await api.close();
    }
  });
});
