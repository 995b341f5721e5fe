// Mutual TLS and authorization by identity on real traffic through real Envoy sidecars: pods in
// network namespaces, each sidecar with its own `meshpilot agent` serving SDS certificates from
// meshpilot's CA (tokens checked by TokenReview), bootstraps from `meshpilot bootstrap --sds`.
// productpage and reviews-v2 call ratings through their sidecars; reviews-v1 has none and calls
// ratings' pod in plaintext. Each row writes its policies, waits until every Envoy has ACKed them,
// and checks what the callers got and what ratings' application saw.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { exactStat } from './support/envoy.ts';
import { rule, type K8sObject } from './support/mesh-dir.ts';
import type { HttpResult } from './support/pod-client.ts';
import type { SeenRequest } from './support/pod-backend.ts';
import { HTTP_PORT, NS, statuses, TCP_PORT, testRows, useSidecarMesh, VIP, type SidecarMesh } from './support/sidecar-mesh.ts';

const identity = (serviceAccount: string): string => `spiffe://cluster.local/ns/${NS}/sa/${serviceAccount}`;
const ratings = { matchLabels: { app: 'ratings' } };
const namespaceMtls = (mode: string): K8sObject => rule('PeerAuthentication', 'default', NS, { mtls: { mode } });
const onlyReviews = rule('AuthorizationPolicy', 'ratings-callers', NS, { selector: ratings, action: 'ALLOW', rules: [{ from: [{ source: { principals: [`cluster.local/ns/${NS}/sa/reviews`] } }] }] });
const INBOUND = 'listener.0.0.0.0_15006';
const RBAC_DENIED = `http.inbound_0.0.0.0_${String(HTTP_PORT)}.rbac.denied`;
const TLS_TO_RATINGS = `cluster.outbound|${String(HTTP_PORT)}||ratings.${NS}.svc.cluster.local.ssl.handshake`;

/** An identity an application may claim in a header it writes itself. */
const FORGED = { 'x-forwarded-client-cert': `By=${identity('ratings')};URI=${identity('admin')}` };

/** Requests from a sidecar pod's application to ratings by its service name (through its sidecar). */
function callRatings(mesh: SidecarMesh, from: 'productpage' | 'reviews-v2', headers: Record<string, string> = {}): Promise<HttpResult[]> {
  return mesh.clientIn(from).http({ address: VIP.ratings, port: HTTP_PORT, host: `ratings:${String(HTTP_PORT)}`, path: '/ratings/0', count: 3, headers });
}

/** A request from reviews-v1, which has no sidecar, straight to ratings' pod: plaintext. */
async function callRatingsPlaintext(mesh: SidecarMesh, headers: Record<string, string> = {}): Promise<HttpResult> {
  const ip = mesh.pod('ratings').ip;
  const [result] = await mesh.clientIn('reviews-v1').http({ address: ip, port: HTTP_PORT, host: `${ip}:${String(HTTP_PORT)}`, count: 1, timeoutMs: 5000, headers });
  return result ?? assert.fail('no result');
}

/** Who ratings' application was told called it: `By` and `URI` of each x-forwarded-client-cert element (none: no header). */
function clientCert(result: HttpResult | undefined): { By?: string; URI?: string }[] {
  const xfcc = (result?.body as SeenRequest | undefined)?.headers['x-forwarded-client-cert'];
  if (xfcc === undefined) return [];
  // Our certificates have an empty subject, so no quoted value holds a comma or a semicolon.
  return xfcc.split(',').map((element) => {
    const fields = Object.fromEntries(element.split(';').map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
    return { By: fields['By'], URI: fields['URI'] };
  });
}

/** The calls reached ratings' application (not some other pod), each told it came from `caller`. */
function assertFromIdentity(results: readonly HttpResult[], caller: string): void {
  assert.deepEqual(statuses(results), { 200: results.length });
  for (const result of results) {
    assert.equal(result.headers?.['x-served-by'], 'ratings');
    assert.deepEqual(clientCert(result), [{ By: identity('ratings'), URI: identity(caller) }]);
  }
}

async function statOf(mesh: SidecarMesh, pod: string, stat: string): Promise<number> {
  return (await mesh.proxy(pod).stats({ filter: exactStat(stat) })).get(stat) ?? 0;
}

/** What /debug/authz says of `principal`'s request to ratings, over what ratings' sidecar was sent. */
async function explained(mesh: SidecarMesh, principal: string): Promise<{ allowed: boolean; decidedBy: { name: string } | null }> {
  const pod = mesh.pod('ratings');
  const query = new URLSearchParams({ proxyID: `sidecar~${pod.ip}~ratings-0.${NS}~${NS}.svc.cluster.local`, port: String(HTTP_PORT), principal, method: 'GET', path: '/ratings/0' });
  const response = await mesh.meshpilot.admin(`/debug/authz?${query.toString()}`);
  assert.equal(response.status, 200);
  return ((await response.json()) as { explain: { allowed: boolean; decidedBy: { name: string } | null } }).explain;
}

describe('mutual TLS and authorization by identity through real Envoy sidecars, each with its agent', { concurrency: false }, () => {
  const meshFor = useSidecarMesh({ identity: true, callers: ['reviews-v2', 'reviews-v1'], envoyArgs: ['--drain-time-s', '1', '--drain-strategy', 'immediate'] });
  testRows(meshFor, [
    {
      name: "with no policy, productpage's sidecar calls ratings over mTLS by itself (auto mTLS, no DestinationRule): ratings' application sees productpage's SPIFFE ID",
      rules: [],
      check: async (mesh) => {
        const handshakes = await statOf(mesh, 'ratings', `${INBOUND}.ssl.handshake`);
        assertFromIdentity(await callRatings(mesh, 'productpage'), 'productpage');
        assert.ok((await statOf(mesh, 'ratings', `${INBOUND}.ssl.handshake`)) > handshakes, "ratings' sidecar terminated TLS");
        assert.ok((await statOf(mesh, 'productpage', TLS_TO_RATINGS)) > 0, "productpage's sidecar opened TLS to ratings");
      },
    },
    {
      name: "STRICT: a pod without a sidecar is refused at ratings' sidecar; productpage's sidecar still gets through",
      rules: [namespaceMtls('STRICT')],
      check: async (mesh) => {
        await mesh.oldConnectionsDrained(mesh.proxy('ratings'));
        const unmatched = await statOf(mesh, 'ratings', `${INBOUND}.no_filter_chain_match`);
        const seen = mesh.backend('ratings').seen.length;
        const plaintext = await callRatingsPlaintext(mesh);
        assert.ok(plaintext.error !== undefined, `the plaintext request failed, got ${JSON.stringify(plaintext)}`);
        assert.ok((await statOf(mesh, 'ratings', `${INBOUND}.no_filter_chain_match`)) > unmatched, 'refused by STRICT: no filter chain takes plaintext');
        assert.equal(mesh.backend('ratings').seen.length, seen, "nothing reached ratings' application");
        assertFromIdentity(await callRatings(mesh, 'productpage'), 'productpage');
      },
      interop: 'mtls-strict',
    },
    {
      name: "STRICT on a TCP port: productpage's sidecar reaches reviews-v2's echo over mTLS, the sidecar-less reviews pods in plaintext",
      rules: [namespaceMtls('STRICT')],
      check: async (mesh) => {
        const handshakes = await statOf(mesh, 'reviews-v2', `${INBOUND}.ssl.handshake`);
        const answeredBy = new Set<string>();
        // tcp-echo's three endpoints are picked by load balancing: exchanges go on until reviews-v2 has answered.
        for (let exchange = 0; exchange < 40 && !answeredBy.has('reviews-v2'); exchange++) {
          const { reply, error } = await mesh.client.tcp({ address: VIP.tcpEcho, port: TCP_PORT, message: 'hello' });
          assert.ok(reply !== undefined && reply.endsWith(' hello'), `exchange ${String(exchange)} got an echo, got ${JSON.stringify({ reply, error })}`);
          answeredBy.add(reply.slice(0, reply.indexOf(' ')));
        }
        assert.ok(answeredBy.has('reviews-v2'), `reviews-v2 answered (${[...answeredBy].join(', ')})`);
        assert.ok((await statOf(mesh, 'reviews-v2', `${INBOUND}.ssl.handshake`)) > handshakes, "through reviews-v2's sidecar's TLS chain");
      },
    },
    {
      name: 'PERMISSIVE: the plaintext pod gets through and the mTLS sidecar too; an identity an application claims in a header never arrives',
      rules: [namespaceMtls('PERMISSIVE')],
      check: async (mesh) => {
        await mesh.oldConnectionsDrained(mesh.proxy('ratings'));
        const plaintext = await callRatingsPlaintext(mesh, FORGED);
        assert.deepEqual([plaintext.status, plaintext.headers?.['x-served-by'], clientCert(plaintext)], [200, 'ratings', []]);
        assertFromIdentity(await callRatings(mesh, 'productpage', FORGED), 'productpage');
      },
    },
    {
      name: "an ALLOW for reviews' identity only: reviews gets through, productpage gets 403 'RBAC: access denied'",
      rules: [namespaceMtls('STRICT'), onlyReviews],
      check: async (mesh) => {
        await mesh.oldConnectionsDrained(mesh.proxy('ratings'));
        const denied = await statOf(mesh, 'ratings', RBAC_DENIED);
        const fromProductpage = await callRatings(mesh, 'productpage');
        assert.deepEqual(statuses(fromProductpage), { 403: 3 });
        assert.equal(fromProductpage[0]?.body, 'RBAC: access denied');
        assertFromIdentity(await callRatings(mesh, 'reviews-v2'), 'reviews');
        assert.equal(await statOf(mesh, 'ratings', RBAC_DENIED), denied + 3, "Envoy's RBAC filter counted each denial");
        const [forProductpage, forReviews] = [await explained(mesh, `cluster.local/ns/${NS}/sa/productpage`), await explained(mesh, `cluster.local/ns/${NS}/sa/reviews`)];
        assert.deepEqual([forProductpage.allowed, forReviews.allowed, forReviews.decidedBy?.name], [false, true, 'ratings-callers'], 'explain agrees with Envoy');
      },
      interop: 'authz-principal',
    },
    {
      name: 'removing the policy restores access without a restart',
      rules: [namespaceMtls('STRICT')],
      check: async (mesh) => {
        await mesh.oldConnectionsDrained(mesh.proxy('ratings'));
        assertFromIdentity(await callRatings(mesh, 'productpage'), 'productpage');
        assertFromIdentity(await callRatings(mesh, 'reviews-v2'), 'reviews');
      },
    },
  ]);
});
