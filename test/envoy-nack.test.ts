// A rule only real Envoy can refuse: a DestinationRule whose TLS settings name a CA file the
// sidecar does not have. meshpilot's checkers cannot see the proxy's filesystem; Envoy reads the
// file when it loads the cluster and rejects the whole CDS update. What the operator sees: the
// NACK in Envoy's own words, the rule behind it, Envoy serving the last good clusters, no resend
// loop, and SYNCED again once the rule is fixed.
import assert from 'node:assert/strict';
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { adsBootstrap, envoyBinary, requireEnvoy, startEnvoy, type RunningEnvoy } from './support/envoy.ts';
import { heldConfig } from './support/envoy-dump.ts';
import { MeshDir, eventually, rule, toYaml } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { FIXTURES } from './support/rendered.ts';

const PRODUCTPAGE = 'sidecar~10.244.2.7~productpage-v1-d5789fdfb-7kq2n.default~default.svc.cluster.local';
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';
const MISSING_CA = '/etc/meshpilot-test-absent/ca.pem';

function ratingsRule(tls?: JsonObject): string {
  return toYaml([rule('DestinationRule', 'ratings', 'default', {
    host: 'ratings',
    ...(tls ? { trafficPolicy: { tls } } : {}),
    subsets: [{ name: 'v1', labels: { version: 'v1' } }],
  })]);
}

/** The version_info Envoy's config_dump shows for one of its dynamic clusters. */
async function clusterVersion(envoy: RunningEnvoy, name: string): Promise<string | undefined> {
  const clusters = (await envoy.configDump()).configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump');
  const entries = (clusters?.['dynamic_active_clusters'] ?? []) as { version_info?: string; cluster?: { name?: string } }[];
  return entries.find((e) => e.cluster?.name === name)?.version_info;
}

interface ConfigzRule {
  kind: string;
  namespace: string;
  name: string;
  rejectedBy: { proxy: string; type: string; resource: string; message: string }[];
}

for (const delta of [false, true]) describe(`a DestinationRule that only real Envoy refuses, ${delta ? 'Delta' : 'SotW'}: a CA file the sidecar does not have`, () => {
  let dir: MeshDir | undefined;
  let meshpilot: TestMeshpilot | undefined;
  let envoy: RunningEnvoy | undefined;
  let goodVersion: string | undefined;
  const stat = async (name: string): Promise<number> => (await envoy?.stats({ filter: `^${name.replace(/\./g, '\\.')}$` }))?.get(name) ?? 0;
  const sync = async () => {
    const types = await meshpilot?.proxySync(PRODUCTPAGE);
    assert.ok(types, 'productpage is connected');
    return types;
  };

  before(async () => {
    if (!(await envoyBinary())) return;
    const mesh = await MeshDir.create();
    dir = mesh;
    for (const file of ['services.yaml', 'virtual-services.yaml']) await cp(join(FIXTURES, 'bookinfo', file), join(mesh.path, file));
    await mesh.write('ratings-rule.yaml', ratingsRule());
    const server = await startMeshpilot(mesh.path);
    meshpilot = server;
    envoy = await startEnvoy({ bootstrap: adsBootstrap({ nodeId: PRODUCTPAGE, xdsHost: '127.0.0.1', xdsPort: server.xdsPort, delta }) });
    await eventually(async () => ((await sync()).cds.status === 'SYNCED' && (await sync()).rds.status === 'SYNCED') || undefined, 15_000, 'productpage SYNCED');
  });

  after(async () => {
    await envoy?.stop();
    await meshpilot?.close();
    await dir?.remove();
  });

  it("shows ERROR for cds with Envoy's own words and names the DestinationRule", async (t) => {
    if (!(await requireEnvoy(t)) || !envoy || !dir || !meshpilot) return;
    const heldBefore = heldConfig((await envoy.configDump()) as JsonObject).clusters.get(RATINGS);
    assert.ok(heldBefore && !('transport_socket' in heldBefore), 'ratings is plain text before the change');
    goodVersion = await clusterVersion(envoy, RATINGS);

    await dir.write('ratings-rule.yaml', ratingsRule({ mode: 'SIMPLE', caCertificates: MISSING_CA }));
    const cds = await eventually(async () => ((await sync()).cds.status === 'ERROR' ? (await sync()).cds : undefined), 15_000, 'a CDS NACK');
    assert.match(cds.nack?.message ?? '', new RegExp(`Invalid path: ${MISSING_CA}`));
    assert.match(envoy.log, new RegExp(`Invalid path: ${MISSING_CA}`), "Envoy's log says the same");
    const rejected = cds.nack?.rejected?.resources ?? [];
    assert.ok(rejected.some((r) => r.name === RATINGS && r.rules.some((x) => x.kind === 'DestinationRule' && x.name === 'ratings')), JSON.stringify(rejected));

    const configz = (await (await meshpilot.admin('/debug/configz')).json()) as { rules: ConfigzRule[] };
    const ratings = configz.rules.find((r) => r.kind === 'DestinationRule' && r.name === 'ratings');
    assert.ok(ratings?.rejectedBy.some((by) => by.proxy === PRODUCTPAGE && by.type === 'cds' && by.resource === RATINGS && by.message.includes('Invalid path')));
    t.diagnostic(`NACK: ${cds.nack?.message ?? ''}`);
  });

  it('keeps serving the last good clusters and is not sent the rejected update again', async (t) => {
    if (!(await requireEnvoy(t)) || !envoy || !dir || !meshpilot) return;
    assert.equal(await stat('cluster_manager.cds.update_rejected'), 1);
    const held = heldConfig((await envoy.configDump()) as JsonObject).clusters.get(RATINGS);
    assert.ok(held && !('transport_socket' in held), 'Envoy still holds the plain-text ratings cluster');
    assert.equal(await clusterVersion(envoy, RATINGS), goodVersion, 'at the version it last accepted');
    const nackedNonce = (await sync()).cds.sent?.nonce;

    // An unrelated change is pushed and applied: routes for details. Its ACK is the signal that pushes flow.
    const rdsBefore = await stat('http.outbound_0.0.0.0_9080.rds.9080.update_success');
    // The details VirtualService edited in place (a second object of the same name would be a duplicate).
    const routes = (await readFile(join(dir.path, 'virtual-services.yaml'), 'utf8')).split(/^---$/m);
    await dir.write('virtual-services.yaml', routes.map((doc) => (/name: details\b/.test(doc) ? `\n${toYaml([rule('VirtualService', 'details', 'default', {
      hosts: ['details'],
      http: [{ route: [{ destination: { host: 'details' } }], timeout: '3s' }],
    })])}` : doc)).join('---'));
    await envoy.waitForStat('http.outbound_0.0.0.0_9080.rds.9080.update_success', rdsBefore + 1);
    await eventually(async () => ((await sync()).rds.status === 'SYNCED') || undefined, 10_000, 'the route change ACKed');

    assert.equal(await stat('cluster_manager.cds.update_rejected'), 1, 'the rejected clusters were not re-sent');
    const after = await sync();
    assert.equal(after.cds.status, 'ERROR');
    assert.equal(after.cds.sent?.nonce, nackedNonce);
  });

  it('is SYNCED again once the rule is fixed', async (t) => {
    if (!(await requireEnvoy(t)) || !envoy || !dir || !meshpilot) return;
    const accepted = await stat('cluster_manager.cds.update_success');
    await dir.write('ratings-rule.yaml', ratingsRule());
    await envoy.waitForStat('cluster_manager.cds.update_success', accepted + 1);
    await eventually(async () => ((await sync()).cds.status === 'SYNCED') || undefined, 10_000, 'cds SYNCED');
    assert.deepEqual(await envoy.rejectedUpdates(), { 'cluster_manager.cds.update_rejected': 1 });
    const configz = (await (await meshpilot.admin('/debug/configz')).json()) as { rules: ConfigzRule[] };
    assert.deepEqual(configz.rules.find((r) => r.name === 'ratings' && r.kind === 'DestinationRule')?.rejectedBy, []);
  });
});
