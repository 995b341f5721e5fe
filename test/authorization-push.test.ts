// An AuthorizationPolicy change is pushed only to the workloads it applies to: the selected
// workload's proxies get their listeners again (virtualInbound carrying the RBAC filters), every
// other proxy hears nothing and is not even woken. The bytes each affected proxy is sent are
// measured (SotW sends the whole listener set, Delta only virtualInbound).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { MeshDir, endpointSlice, eventually, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { countWakeUps, startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { DeltaFollower, SotwFollower } from './support/xds-follower.ts';

const SILENCE_MS = 600;
const NS = 'default';
const node = (name: string, ip: string): string => `sidecar~${ip}~${name}.${NS}~${NS}.svc.cluster.local`;
const REVIEWS_V1 = node('reviews-v1-0', '10.244.0.11');
const REVIEWS_V2 = node('reviews-v2-0', '10.244.0.12');
const RATINGS = node('ratings-v1-0', '10.244.0.21');
const PRODUCTPAGE = node('productpage-v1-0', '10.244.0.31');

const mesh: K8sObject[] = [
  ...(
    [
      ['reviews', '10.96.0.11', [['reviews-v1-0', '10.244.0.11', 'v1'], ['reviews-v2-0', '10.244.0.12', 'v2']]],
      ['ratings', '10.96.0.21', [['ratings-v1-0', '10.244.0.21', 'v1']]],
      ['productpage', '10.96.0.31', [['productpage-v1-0', '10.244.0.31', 'v1']]],
    ] as const
  ).flatMap(([app, vip, pods]) => [
    service(app, NS, [{ name: 'http', port: 9080, targetPort: 9080 }], vip),
    ...pods.map(([name, ip, version]) => pod(name, NS, ip, { app, version })),
    endpointSlice(app, NS, { name: 'http', port: 9080 }, pods.map(([name, ip]) => ({ name, ip }))),
  ]),
];

const reviewsPolicy = rule('AuthorizationPolicy', 'reviews-viewer', NS, {
  selector: { matchLabels: { app: 'reviews' } },
  rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-productpage'] } }], to: [{ operation: { methods: ['GET'] } }] }],
});

const inboundRbac = (listener: unknown): number => (JSON.stringify(listener).match(/envoy\.filters\.http\.rbac/g) ?? []).length;

describe('an AuthorizationPolicy change reaches only the workloads it selects', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  let reviewsSotw: SotwFollower;
  let reviewsDelta: DeltaFollower;
  let ratings: SotwFollower;
  let productpage: DeltaFollower;

  before(async () => {
    dir = await MeshDir.create();
    await dir.write('mesh.yaml', mesh);
    meshpilot = await startMeshpilot(dir.path);
    reviewsSotw = new SotwFollower(meshpilot.xdsPort, REVIEWS_V1);
    reviewsDelta = new DeltaFollower(meshpilot.xdsPort, REVIEWS_V2);
    ratings = new SotwFollower(meshpilot.xdsPort, RATINGS);
    productpage = new DeltaFollower(meshpilot.xdsPort, PRODUCTPAGE);
    for (const follower of [reviewsSotw, reviewsDelta, ratings, productpage]) {
      await eventually(() => (follower.held.get(LISTENER_TYPE)?.has('virtualInbound') && follower.held.get(ROUTE_TYPE)?.has('9080') ? true : undefined), 5000, 'initial sync');
    }
  });

  after(async () => {
    for (const follower of [reviewsSotw, reviewsDelta, ratings, productpage]) follower.close();
    await meshpilot.close();
    await dir.remove();
  });

  it("a new policy for reviews sends reviews' proxies their RBAC filter; ratings and productpage hear nothing and are not woken", async (t) => {
    const woken = [countWakeUps(meshpilot, RATINGS), countWakeUps(meshpilot, PRODUCTPAGE)];
    const [sotwFrom, deltaFrom, ratingsFrom, productpageFrom] = [reviewsSotw.client, reviewsDelta.client, ratings.client, productpage.client].map((c) => c.responses.length) as [number, number, number, number];
    await dir.write('policy.yaml', [reviewsPolicy]);
    const sotw = await reviewsSotw.client.next((r) => r.type_url === LISTENER_TYPE, sotwFrom, 5000);
    const delta = await reviewsDelta.client.next((r) => r.type_url === LISTENER_TYPE, deltaFrom, 5000);
    assert.deepEqual(delta.resources.map((r) => r.name), ['virtualInbound'], 'Delta: only the inbound listener changed');
    assert.equal(inboundRbac(delta.resources[0]?.resource), 1);
    assert.equal(inboundRbac(sotw.resources.find((r) => r['name'] === 'virtualInbound')), 1);
    assert.deepEqual(await ratings.client.quiet(SILENCE_MS, ratingsFrom), []);
    assert.deepEqual(await productpage.client.quiet(SILENCE_MS, productpageFrom), []);
    assert.deepEqual(woken.map((w) => w.count), [0, 0], 'the other proxies had nothing to regenerate');
    const sotwBytes = reviewsSotw.client.sizes[reviewsSotw.client.responses.indexOf(sotw)] ?? 0;
    const deltaBytes = reviewsDelta.client.sizes[reviewsDelta.client.responses.indexOf(delta)] ?? 0;
    assert.ok(deltaBytes > 0 && sotwBytes > deltaBytes, `SotW sends every listener (${String(sotwBytes)} B), Delta only virtualInbound (${String(deltaBytes)} B)`);
    t.diagnostic(`xDS bytes per affected proxy: SotW ${String(sotwBytes)} B (LDS, every listener), Delta ${String(deltaBytes)} B (virtualInbound); unaffected proxies: 0 B`);
  });

  it('removing the policy takes the filter away again, still only from reviews', async () => {
    const [sotwFrom, ratingsFrom] = [reviewsSotw.client.responses.length, ratings.client.responses.length];
    const woken = countWakeUps(meshpilot, RATINGS);
    await dir.delete('policy.yaml');
    const sotw = await reviewsSotw.client.next((r) => r.type_url === LISTENER_TYPE, sotwFrom, 5000);
    assert.equal(inboundRbac(sotw.resources.find((r) => r['name'] === 'virtualInbound')), 0);
    assert.deepEqual(await ratings.client.quiet(SILENCE_MS, ratingsFrom), []);
    assert.equal(woken.count, 0);
  });

  it('a namespace-wide policy reaches every workload of the namespace', async () => {
    const from = [reviewsSotw, ratings].map((f) => f.client.responses.length);
    const productpageFrom = productpage.client.responses.length;
    await dir.write('policy.yaml', [rule('AuthorizationPolicy', 'deny-admin', NS, { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] })]);
    for (const [i, follower] of [reviewsSotw, ratings].entries()) {
      const update = await follower.client.next((r) => r.type_url === LISTENER_TYPE, from[i] ?? 0, 5000);
      assert.equal(inboundRbac(update.resources.find((r) => r['name'] === 'virtualInbound')), 1);
    }
    const update = await productpage.client.next((r) => r.type_url === LISTENER_TYPE, productpageFrom, 5000);
    assert.deepEqual(update.resources.map((r) => r.name), ['virtualInbound']);
  });
});

describe('a broken edit of an AuthorizationPolicy', () => {
  it('is reported with its code and field, the last good version keeps being enforced, and nothing is pushed', async () => {
    const dir = await MeshDir.create();
    await dir.write('mesh.yaml', mesh);
    await dir.write('policy.yaml', [reviewsPolicy]);
    const meshpilot = await startMeshpilot(dir.path);
    const reviews = new SotwFollower(meshpilot.xdsPort, REVIEWS_V1);
    try {
      await eventually(() => (reviews.held.get(LISTENER_TYPE)?.has('virtualInbound') && reviews.held.get(ROUTE_TYPE)?.has('9080') ? true : undefined), 5000, 'initial sync');
      const from = reviews.client.responses.length;
      await dir.write('policy.yaml', [rule('AuthorizationPolicy', 'reviews-viewer', NS, { selector: { matchLabels: { app: 'reviews' } }, action: 'PERMIT', rules: [{}] })]);
      const rejected = await eventually(async () => {
        const body = (await (await meshpilot.admin('/debug/configz')).json()) as { rejected: { object: string; keptLastGood: boolean; errors: { code: string; path: string }[] }[] };
        return body.rejected.find((r) => r.object === 'AuthorizationPolicy default/reviews-viewer');
      }, 5000, 'the rejected policy in /debug/configz');
      assert.equal(rejected.keptLastGood, true);
      assert.deepEqual(rejected.errors.map((e) => [e.code, e.path]), [['MP_RULE_INVALID', 'spec.action']]);
      assert.deepEqual(await reviews.client.quiet(SILENCE_MS, from), []);
      assert.equal(inboundRbac(reviews.held.get(LISTENER_TYPE)?.get('virtualInbound')), 1, 'the last good policy is still enforced');
    } finally {
      reviews.close();
      await meshpilot.close();
      await dir.remove();
    }
  });
});
