// Real Envoy takes every fixture as meshpilot serves it to each of the fixture's workloads: as a
// static bootstrap through `envoy --mode validate`, and live over ADS (SotW and Delta), where it
// must reject nothing and hold exactly what meshpilot's /debug/config_dump says it was sent.
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { buildPushContext } from '../src/model/push-context.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { loadDirectory } from '../src/sources/config-dir.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { EnvoyResource } from '../src/xds/resource.ts';
import { buildConfigDump } from '../src/xds/config-dump.ts';
import { renderForProxy, type RenderedResources } from '../src/xds/render.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, type ShortType } from '../src/xds/type-urls.ts';
import { adsBootstrap, envoyVersion, requireEnvoy, startEnvoy, validateBootstrap, type RunningEnvoy } from './support/envoy.ts';
import { heldConfig, heldDifferences } from './support/envoy-dump.ts';
import { sdsCluster, staticBootstrap } from './support/envoy-static.ts';
import { startSdsServer } from './support/sds-server.ts';
import { createTestRoot } from './support/test-ca.ts';
import { fixturePush, fixtures, fixtureWorkloads, type Fixture, type Workload } from './support/fixture-workloads.ts';
import { limiter } from './support/limit.ts';
import { MeshDir, rule } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { FIXTURES } from './support/rendered.ts';

/** Envoy processes at once: the machine has two cores, and meshpilot runs in this process. */
const validating = limiter(2);
const live = limiter(3);

describe('what the real-Envoy checks read and write', () => {
  it('a static bootstrap holds each EDS cluster with its endpoints and each listener with its routes, all else as generated', async () => {
    const [bookinfo] = fixtures().filter((f) => f.name === 'bookinfo');
    assert.ok(bookinfo);
    const nodeId = (await fixtureWorkloads(bookinfo))[0]?.nodeId ?? '';
    const rendered = renderForProxy(await fixturePush(bookinfo), parseProxy(nodeId));
    const bootstrap = staticBootstrap(nodeId, rendered);
    const staticResources = bootstrap['static_resources'] as { clusters: JsonObject[]; listeners: JsonObject[] };
    const reviews = staticResources.clusters.find((c) => c['name'] === 'outbound|9080||reviews.default.svc.cluster.local');
    const { eds_cluster_config: _eds, type: _type, ...generated } = rendered[CLUSTER_TYPE].find((c) => c.name === reviews?.['name'])?.json ?? {};
    assert.deepEqual(reviews, { ...generated, type: 'STATIC', load_assignment: rendered[ENDPOINT_TYPE].find((e) => e.name === reviews?.['name'])?.json });
    const text = JSON.stringify(staticResources.listeners);
    assert.ok(!text.includes('"rds"') && text.includes(JSON.stringify(rendered[ROUTE_TYPE][0]?.json)));
    assert.equal(staticResources.listeners.length, rendered[LISTENER_TYPE].length);
  });

  it('a held config equals what was sent up to proto3 defaults, and a changed endpoint or missing route shows', async () => {
    const [bookinfo] = fixtures().filter((f) => f.name === 'bookinfo');
    assert.ok(bookinfo);
    const nodeId = (await fixtureWorkloads(bookinfo))[0]?.nodeId ?? '';
    const rendered = renderForProxy(await fixturePush(bookinfo), parseProxy(nodeId));
    const dump = (resources: RenderedResources): JsonObject =>
      buildConfigDump(Object.fromEntries(Object.entries(resources).map(([type, list]) => [type, { version: '1', at: new Date(0), resources: list }])));
    const sent = heldConfig(dump(rendered));
    // Envoy leaves out fields at their default, as its config_dump does.
    const withoutDefaults = rendered[CLUSTER_TYPE].map((c) => new EnvoyResource(CLUSTER_TYPE, c.name, Object.fromEntries(Object.entries(c.json).filter(([k, v]) => !(k === 'lb_policy' && v === 'ROUND_ROBIN')))));
    assert.deepEqual(heldDifferences(heldConfig(dump({ ...rendered, [CLUSTER_TYPE]: withoutDefaults })), sent), []);
    const moved = rendered[ENDPOINT_TYPE].map((e) => e.name === 'outbound|9080|v1|ratings.default.svc.cluster.local' ? new EnvoyResource(ENDPOINT_TYPE, e.name, JSON.parse(JSON.stringify(e.json).replace('10.244.1.6', '10.244.1.99')) as JsonObject) : e);
    assert.deepEqual(heldDifferences(heldConfig(dump({ ...rendered, [ENDPOINT_TYPE]: moved, [ROUTE_TYPE]: [] })), sent), [
      'route configuration 9080: sent, not held',
      'endpoints of outbound|9080|v1|ratings.default.svc.cluster.local.0: "10.244.1.99:9080 HEALTHY" != "10.244.1.6:9080 HEALTHY"',
    ]);
  });
});

/** The other Envoys meshpilot serves: a gateway (`router~`, never scoped by a Sidecar) and an id without Istio's form. */
const OTHER_PROXIES: readonly Workload[] = [
  { name: 'gateway', nodeId: 'router~10.244.9.9~ingressgateway-0.istio-system~istio-system.svc.cluster.local' },
  { name: 'plain Envoy', nodeId: 'edge-envoy-1' },
];

describe('envoy --mode validate accepts what each workload of every fixture is sent', { concurrency: true }, () => {
  for (const fixture of fixtures()) {
    it(`${fixture.name}${fixture.meshConfig ? ' (with its MeshConfig)' : ''}: every workload's sidecar config, and a gateway's and a plain Envoy's`, async (t) => {
      const bin = await requireEnvoy(t);
      if (!bin) return;
      const push = await fixturePush(fixture);
      const workloads = await fixtureWorkloads(fixture);
      assert.ok(workloads.length > 0, `${fixture.name} has no Pod or WorkloadEntry to run a sidecar for`);
      const refusals = await Promise.all(
        [...workloads, ...OTHER_PROXIES].map((workload) =>
          validating(async () => {
            const bootstrap = staticBootstrap(workload.nodeId, renderForProxy(push, parseProxy(workload.nodeId)));
            const verdict = await validateBootstrap(bin, bootstrap);
            return verdict.ok ? undefined : `${workload.name}: ${verdict.output}`;
          }),
        ),
      );
      assert.deepEqual(refusals.filter((r) => r !== undefined), []);
      t.diagnostic(`${workloads.length} workloads and ${OTHER_PROXIES.length} other proxies validated`);
    });
  }

  /** productpage's static bootstrap with BookInfo's services and one VirtualService for reviews. */
  async function withReviewsRoute(t: TestContext, http: unknown[]): Promise<JsonObject> {
    const dir = await MeshDir.create();
    t.after(() => dir.remove());
    await cp(join(FIXTURES, 'bookinfo', 'services.yaml'), join(dir.path, 'services.yaml'));
    await dir.write('reviews.yaml', [rule('VirtualService', 'reviews', 'default', { hosts: ['reviews'], http })]);
    const push = buildPushContext(await loadDirectory(dir.path));
    assert.deepEqual([...push.ruleStatus.values()].flatMap((s) => s.issues), []);
    const [productpage] = (await fixtureWorkloads({ name: 'bookinfo', dir: join(FIXTURES, 'bookinfo') })).filter((w) => w.name.startsWith('productpage'));
    assert.ok(productpage);
    return staticBootstrap(productpage.nodeId, renderForProxy(push, parseProxy(productpage.nodeId)));
  }

  it("accepts a route regex over Envoy's default RE2 budget of 100 with the runtime meshpilot's bootstrap sets, as Istio's does", async (t) => {
    const bin = await requireEnvoy(t);
    if (!bin) return;
    const greek = '/(alpha|beta|gamma|delta|epsilon|zeta|eta|theta|iota|kappa|lambda|mu|nu|xi|omicron|pi|rho|sigma|tau|upsilon|phi|chi|psi|omega)/[0-9]+/(details|reviews|ratings)';
    const bootstrap = await withReviewsRoute(t, [{ match: [{ uri: { regex: greek } }], route: [{ destination: { host: 'reviews' } }] }]);
    assert.ok(JSON.stringify(bootstrap).includes(JSON.stringify(greek)));
    const accepted = await validateBootstrap(bin, bootstrap);
    assert.equal(accepted.ok, true, accepted.output);
    const { layered_runtime: _runtime, ...withEnvoyDefaults } = bootstrap;
    const refused = await validateBootstrap(bin, withEnvoyDefaults);
    assert.match(refused.output, /RE2 program size of \d+ > max program size of 100/);
  });

  it('accepts a header or query parameter match with no operand (Istio\'s "present"), sent as present_match', async (t) => {
    const bin = await requireEnvoy(t);
    if (!bin) return;
    const bootstrap = await withReviewsRoute(t, [{ match: [{ headers: { 'x-user': {} }, queryParams: { q: {} } }], route: [{ destination: { host: 'reviews' } }] }]);
    const text = JSON.stringify(bootstrap);
    assert.ok(text.includes('{"name":"x-user","present_match":true}') && text.includes('{"name":"q","present_match":true}'), 'sent as present_match');
    const verdict = await validateBootstrap(bin, bootstrap);
    assert.equal(verdict.ok, true, verdict.output);
  });

  it("refuses two listeners on one address, in Envoy's words (the check can fail)", async (t) => {
    const bin = await requireEnvoy(t);
    if (!bin) return;
    const [bookinfo] = fixtures().filter((f) => f.name === 'bookinfo');
    assert.ok(bookinfo);
    const [productpage] = (await fixtureWorkloads(bookinfo)).filter((w) => w.name.startsWith('productpage'));
    assert.ok(productpage);
    const rendered = renderForProxy(await fixturePush(bookinfo), parseProxy(productpage.nodeId));
    const http = rendered[LISTENER_TYPE].find((l) => l.name === '0.0.0.0_9080');
    assert.ok(http);
    const twin = new EnvoyResource(LISTENER_TYPE, 'twin', { ...http.json, name: 'twin' });
    const verdict = await validateBootstrap(bin, staticBootstrap(productpage.nodeId, { ...rendered, [LISTENER_TYPE]: [...rendered[LISTENER_TYPE], twin] }));
    assert.equal(verdict.ok, false);
    assert.match(verdict.output, /'twin' has duplicate address '0\.0\.0\.0:9080'/);
    t.diagnostic(`Envoy ${await envoyVersion(bin)}`);
  });
});

interface LiveResult {
  readonly problems: readonly string[];
  readonly counts: Readonly<Record<Exclude<ShortType, 'sds'>, number>>;
}

const TYPES: readonly ShortType[] = ['cds', 'eds', 'lds', 'rds'];

/** Envoy has applied every update it was sent: CDS and LDS, each RDS, and no cluster or listener still warming. */
async function appliedEverything(envoy: RunningEnvoy): Promise<boolean> {
  const stats = await envoy.stats({ filter: 'update_success$|warming' });
  const rds = [...stats].filter(([name]) => /\.rds\..*\.update_success$/.test(name));
  return (stats.get('cluster_manager.cds.update_success') ?? 0) >= 1
    && (stats.get('listener_manager.lds.update_success') ?? 0) >= 1
    && rds.every(([, value]) => value >= 1)
    && stats.get('cluster_manager.warming_clusters') === 0
    && stats.get('listener_manager.total_listeners_warming') === 0;
}

/** meshpilot saw every type it sent ACKed (cds and lds at least). */
async function ackedEverything(meshpilot: TestMeshpilot, workload: Workload): Promise<boolean> {
  const sync = await meshpilot.proxySync(workload.nodeId);
  if (!sync) return false;
  const sent = TYPES.filter((type) => sync[type].status !== 'NOT SENT');
  return sent.includes('cds') && sent.includes('lds') && sent.every((type) => sync[type].status === 'SYNCED');
}

async function runWorkload(meshpilot: TestMeshpilot, workload: Workload, delta: boolean, sdsPort: number): Promise<LiveResult> {
  const bootstrap = adsBootstrap({ nodeId: workload.nodeId, xdsHost: '127.0.0.1', xdsPort: meshpilot.xdsPort, delta });
  (bootstrap['static_resources'] as { clusters: unknown[] }).clusters.push(sdsCluster({ socket_address: { address: '127.0.0.1', port_value: sdsPort } }));
  const envoy = await startEnvoy({ bootstrap });
  try {
    await envoy.waitFor(`${workload.name} to apply and ACK every update`, async () => (await appliedEverything(envoy)) && ackedEverything(meshpilot, workload));
    const problems: string[] = [];
    const rejected = await envoy.rejectedUpdates();
    if (Object.keys(rejected).length > 0) problems.push(`rejected updates ${JSON.stringify(rejected)}: ${envoy.log.slice(-2000)}`);
    const sync = await meshpilot.proxySync(workload.nodeId);
    for (const type of TYPES) if (sync?.[type].status !== 'SYNCED' && sync?.[type].status !== 'NOT SENT') problems.push(`${type} is ${sync?.[type].status ?? 'not connected'}`);
    const sentDump = await meshpilot.configDump(workload.nodeId);
    const sent = heldConfig(sentDump);
    const held = heldConfig((await envoy.configDump()) as JsonObject);
    problems.push(...heldDifferences(held, sent));
    const edsClusters = [...sent.clusters.values()].filter((c) => c['type'] === 'EDS').length;
    return {
      problems: problems.map((p) => `${workload.name}: ${p}`),
      counts: { cds: held.clusters.size, eds: edsClusters, lds: held.listeners.size, rds: held.routes.size },
    };
  } finally {
    await envoy.stop();
  }
}

async function serveFixture(fixture: Fixture): Promise<TestMeshpilot> {
  return startMeshpilot(fixture.dir, fixture.meshConfig ? { meshConfig: fixture.meshConfig } : {});
}

describe('live Envoy over ADS holds exactly what meshpilot sent each workload of every fixture', { concurrency: true }, () => {
  for (const fixture of fixtures()) {
    for (const delta of [false, true]) {
      const mode = delta ? 'Delta (DELTA_GRPC)' : 'SotW (GRPC)';
      it(`${fixture.name}, ${mode}: every sidecar ACKs everything, rejects nothing, and holds what /debug/config_dump shows`, async (t) => {
        const bin = await requireEnvoy(t);
        if (!bin) return;
        const workloads = await fixtureWorkloads(fixture);
        assert.ok(workloads.length > 0, `${fixture.name} has no Pod or WorkloadEntry to run a sidecar for`);
        const meshpilot = await serveFixture(fixture);
        t.after(() => meshpilot.close());
        // Sidecars that take mTLS secrets over SDS get them from a stand-in for the agent.
        const sds = await startSdsServer(await (await createTestRoot()).issue('spiffe://cluster.local/ns/default/sa/default'));
        t.after(() => sds.close());
        const results = await Promise.all(workloads.map((workload) => live(() => runWorkload(meshpilot, workload, delta, sds.port))));
        assert.deepEqual(results.flatMap((r) => r.problems), []);
        const total = (type: Exclude<ShortType, 'sds'>): number => results.reduce((n, r) => n + r.counts[type], 0);
        t.diagnostic(`accepted by ${workloads.length} Envoys: clusters=${total('cds')} endpoints=${total('eds')} listeners=${total('lds')} routes=${total('rds')}`);
      });
    }
  }
});
