// A broken reference never reroutes traffic: an edit that names a subset or port that does not
// exist keeps the rule's last good version (from files and from the Kubernetes API alike), and a
// reference broken by another object's change fails that route closed, as in Istio, with the
// reason in /debug/configz and the log.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { buildPushContext } from '../src/model/push-context.ts';
import { loadDirectory } from '../src/sources/config-dir.ts';
import { CLUSTER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { renderForProxy } from '../src/xds/render.ts';
import type { FakeKubeApi } from './support/fake-kube-api.ts';
import { startClusterMesh } from './support/fake-kube-api-meshpilot.ts';
import { MeshDir, endpointSlice, eventually, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { SIDECAR, servedVersions } from './support/rendered.ts';

const NS = 'default';
const V2 = 'outbound|9080|v2|reviews.default.svc.cluster.local';
const subsets = (names: string[]): K8sObject => rule('DestinationRule', 'reviews', NS, { host: 'reviews', subsets: names.map((name) => ({ name, labels: { version: name } })) });
const jasonTo = (subset: string): K8sObject =>
  rule('VirtualService', 'reviews', NS, {
    hosts: ['reviews'],
    http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset } }] }, { route: [{ destination: { host: 'reviews', subset: 'v1' } }] }],
  });
const MESH: K8sObject[] = [
  service('reviews', NS, [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.30'),
  ...['v1', 'v2'].map((v, i) => pod(`reviews-${v}-0`, NS, `10.244.0.${10 + i}`, { app: 'reviews', version: v })),
  endpointSlice('reviews', NS, { name: 'http', port: 9080 }, [{ name: 'reviews-v1-0', ip: '10.244.0.10' }, { name: 'reviews-v2-0', ip: '10.244.0.11' }]),
];

interface Issue {
  code: string;
  path: string;
  message: string;
}
interface Configz {
  rules: { kind: string; name: string; applied: boolean; errors: Issue[] }[];
  rejected: { object: string; keptLastGood: boolean; errors: Issue[] }[];
}

async function configz(meshpilot: TestMeshpilot): Promise<Configz> {
  return (await (await meshpilot.admin('/debug/configz')).json()) as Configz;
}

/** The clusters jason's route and everyone else's route go to, as the sidecar's route configuration says. */
function jasonRoute(meshpilot: TestMeshpilot): { jason: unknown; clusters: string[] } {
  const rendered = renderForProxy(buildPushContext(meshpilot.store.current()), SIDECAR);
  const config = rendered[ROUTE_TYPE].find((r) => r.name === '9080')?.json as { virtual_hosts: { name: string; routes: { match: { headers?: unknown[] }; route?: { cluster?: string } }[] }[] };
  const host = config.virtual_hosts.find((h) => h.name.startsWith('reviews.default.svc.cluster.local'));
  return { jason: host?.routes.find((r) => r.match.headers !== undefined)?.route?.cluster, clusters: rendered[CLUSTER_TYPE].map((c) => c.name) };
}

function captureLog(): { log: pino.Logger; lines: { msg: string; code?: string }[] } {
  const lines: { msg: string; code?: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { msg: string; code?: string });
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('a broken reference in the config directory', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  const captured = captureLog();

  before(async () => {
    dir = await MeshDir.create();
    await dir.write('mesh.yaml', MESH);
    await dir.write('dr.yaml', [subsets(['v1', 'v2'])]);
    await dir.write('vs.yaml', [jasonTo('v2')]);
    meshpilot = await startMeshpilot(dir.path, { log: captured.log });
  });
  after(async () => {
    await meshpilot.close();
    await dir.remove();
  });

  it('an edit to subset v9 is not applied: jason still goes to v2, and configz says why', async () => {
    const before = servedVersions(buildPushContext(meshpilot.store.current()), []);
    await dir.write('vs.yaml', [jasonTo('v9')]);
    const body = await eventually(async () => {
      const current = await configz(meshpilot);
      return current.rejected.length > 0 ? current : undefined;
    }, 10_000, 'the edit reported');
    assert.deepEqual(body.rejected.map((r) => [r.object, r.keptLastGood, r.errors[0]?.code, r.errors[0]?.path]), [['VirtualService default/reviews', true, 'MP_REF_UNKNOWN', 'spec.http[0].route[0].destination.subset']]);
    assert.equal(jasonRoute(meshpilot).jason, V2);
    assert.deepEqual(servedVersions(buildPushContext(meshpilot.store.current()), []), before);
  });

  it('a new VirtualService naming a port reviews lacks is not applied at all', async () => {
    await dir.write('other.yaml', [rule('VirtualService', 'reviews-port', NS, { hosts: ['reviews.other'], http: [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local', port: { number: 9999 } } }] }] })]);
    const body = await eventually(async () => {
      const current = await configz(meshpilot);
      return current.rejected.some((r) => r.object === 'VirtualService default/reviews-port') ? current : undefined;
    }, 10_000, 'the new rule reported');
    const rejected = body.rejected.find((r) => r.object === 'VirtualService default/reviews-port');
    assert.deepEqual([rejected?.keptLastGood, rejected?.errors[0]?.path], [false, 'spec.http[0].route[0].destination.port.number']);
    assert.ok(!body.rules.some((r) => r.name === 'reviews-port'));
  });

  it('removing subset v2 from the DestinationRule fails jason\'s route closed instead of sending him to every version, and the log says so', async () => {
    await dir.write('vs.yaml', [jasonTo('v2')]);
    await dir.write('dr.yaml', [subsets(['v1'])]);
    const body = await eventually(async () => {
      const current = await configz(meshpilot);
      const reviews = current.rules.find((r) => r.kind === 'VirtualService' && r.name === 'reviews');
      return reviews?.errors.some((e) => e.code === 'MP_REF_UNKNOWN') ? current : undefined;
    }, 10_000, 'the broken reference in configz');
    const reviews = body.rules.find((r) => r.kind === 'VirtualService' && r.name === 'reviews');
    assert.equal(reviews?.applied, true);
    assert.equal(reviews.errors[0]?.path, 'spec.http[0].route[0].destination.subset');
    const { jason, clusters } = jasonRoute(meshpilot);
    assert.equal(jason, V2, 'jason is still routed to v2, which no longer exists: Envoy answers 503');
    assert.ok(!clusters.includes(V2));
    const line = await eventually(() => captured.lines.find((l) => l.code === 'MP_REF_UNKNOWN' && l.msg.includes('VirtualService default/reviews') && l.msg.includes('subset "v2"')), 10_000, 'a log line');
    assert.match(line.msg, /subset "v2".*fail with 503/);
  });

  it('read fresh, a rule whose subset is missing is applied and fails closed, as Istio would after a restart', async () => {
    const fresh = buildPushContext(await loadDirectory(dir.path));
    const status = [...fresh.ruleStatus.values()].find((s) => s.rule.meta.name === 'reviews' && s.rule.meta.kind === 'VirtualService');
    assert.equal(status?.applied, true);
    assert.ok(status.issues.some((i) => i.code === 'MP_REF_UNKNOWN' && i.severity === 'error'));
  });
});

describe('a broken reference from the Kubernetes API', () => {
  let api: FakeKubeApi;
  let meshpilot: TestMeshpilot;
  before(async () => {
    ({ api, meshpilot } = await startClusterMesh([...MESH, subsets(['v1', 'v2']), jasonTo('v2')]));
  });
  after(async () => {
    await meshpilot.close();
    await api.close();
  });

  it('an update to subset v9 keeps the last good VirtualService', async () => {
    const current = api.get('VirtualService', NS, 'reviews');
    assert.ok(current);
    api.apply({ ...current, spec: (jasonTo('v9') as { spec: unknown }).spec });
    const body = await eventually(async () => {
      const now = await configz(meshpilot);
      return now.rejected.length > 0 ? now : undefined;
    }, 10_000, 'the update reported');
    assert.deepEqual(body.rejected.map((r) => [r.object, r.keptLastGood, r.errors[0]?.code]), [['VirtualService default/reviews', true, 'MP_REF_UNKNOWN']]);
    assert.equal(jasonRoute(meshpilot).jason, V2);
  });
});
