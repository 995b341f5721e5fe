// Two meshpilot replicas watch one (fake) cluster with HTTPRoutes whose parent is a Service. The
// leader writes each route's `status.parents` (Accepted, ResolvedRefs, observedGeneration, under
// meshpilot's controller name) and only when it changes; the follower writes nothing.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GATEWAY_CONTROLLER_NAME } from '../src/model/route-status.ts';
import type { StatusTarget } from '../src/sources/kube/kube-source.ts';
import { routeStatusToWrite } from '../src/sources/kube/route-status.ts';
import type { KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { objectsFromDirectory, startMeshpilotOnKube } from './support/fake-kube-api-meshpilot.ts';
import { FakeKubeApi, GATEWAY_API_ROUTE_CRDS, type KubeObject } from './support/fake-kube-api.ts';
import { eventually } from './support/mesh-dir.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const NS = 'default';
const FAST_ELECTION = { leaseDurationMs: 5000, renewDeadlineMs: 3000, retryPeriodMs: 100 };
const STATUS = '/status';

function route(name: string, backend: string, parent: Record<string, unknown> = { group: '', kind: 'Service', name: 'reviews' }): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: NS },
    spec: { parentRefs: [parent], rules: [{ backendRefs: [{ name: backend, port: 9080 }] }] },
  };
}

interface Condition {
  type: string;
  status: string;
  reason: string;
  observedGeneration: number;
  lastTransitionTime: string;
}
interface ParentStatus {
  parentRef: Record<string, unknown>;
  controllerName: string;
  conditions: Condition[];
}

describe('Gateway API route status, written by the leader only', () => {
  let api: FakeKubeApi;
  const replicas = new Map<string, KubeMeshpilot>();
  const parentsOf = (name: string): ParentStatus[] | undefined => (api.get('HTTPRoute', NS, name)?.['status'] as { parents?: ParentStatus[] } | undefined)?.parents;
  const condition = (name: string, type: string): Condition | undefined => parentsOf(name)?.[0]?.conditions.find((c) => c.type === type);
  const statusWrites = (user: string): number => api.writesBy(user, STATUS).length;
  const leading = async (replica: KubeMeshpilot): Promise<boolean> => ((await (await replica.admin('/debug/leaderz')).json()) as { election: { leading: boolean } | null }).election?.leading === true;

  before(async () => {
    api = await FakeKubeApi.start();
    for (const crd of GATEWAY_API_ROUTE_CRDS) api.installCrd(crd);
    const bookinfo = await objectsFromDirectory(join(ROOT, 'fixtures/bookinfo'));
    api.applyAll(bookinfo.filter((object) => !String(object['apiVersion']).includes('istio.io')));
    api.applyAll([route('reviews', 'reviews'), route('broken', 'nowhere'), route('ingress', 'reviews', { name: 'shop-gateway' })]);
    for (const user of ['meshpilot-a', 'meshpilot-b']) {
      replicas.set(user, await startMeshpilotOnKube(api, { user, serve: { podName: user, systemNamespace: 'meshpilot-system', leaderElection: FAST_ELECTION } }));
    }
  });

  after(async () => {
    await Promise.all([...replicas.values()].map((replica) => replica.close()));
    await api.close();
  });

  it('the leader writes Accepted and ResolvedRefs per Service parent, with the spec\'s reasons', async () => {
    await eventually(() => (parentsOf('reviews') && parentsOf('broken') ? true : undefined), 15_000, 'route statuses written');
    const [parent] = parentsOf('reviews') ?? [];
    assert.deepEqual(parent?.parentRef, { group: '', kind: 'Service', name: 'reviews' });
    assert.equal(parent.controllerName, GATEWAY_CONTROLLER_NAME);
    assert.deepEqual(parent.conditions.map((c) => [c.type, c.status, c.reason, c.observedGeneration]), [
      ['Accepted', 'True', 'Accepted', 1],
      ['ResolvedRefs', 'True', 'ResolvedRefs', 1],
    ]);
    assert.ok(parent.conditions.every((c) => !Number.isNaN(Date.parse(c.lastTransitionTime))), 'every condition has a lastTransitionTime');
    assert.deepEqual([condition('broken', 'ResolvedRefs')?.status, condition('broken', 'ResolvedRefs')?.reason], ['False', 'BackendNotFound']);
    assert.equal(api.get('HTTPRoute', NS, 'ingress')?.['status'], undefined, 'a route whose parent is a Gateway is left to the gateway controller');
    const leaders = await Promise.all([...replicas.values()].map(leading));
    const [leader, follower] = leaders[0] ? ['meshpilot-a', 'meshpilot-b'] : ['meshpilot-b', 'meshpilot-a'];
    assert.equal(statusWrites(follower), 0, 'the follower wrote no status');
    assert.equal(statusWrites(leader), 2, 'one write per route meshpilot is a parent controller of');
  });

  it('a fix moves the condition and observedGeneration on, keeps the unchanged condition\'s time, and writes once', async () => {
    const acceptedAt = condition('broken', 'Accepted')?.lastTransitionTime;
    const before = api.writesBy('meshpilot-a', STATUS).length + api.writesBy('meshpilot-b', STATUS).length;
    api.apply(route('broken', 'reviews'));
    await eventually(() => (condition('broken', 'ResolvedRefs')?.status === 'True' ? true : undefined), 15_000, 'ResolvedRefs True');
    assert.deepEqual(condition('broken', 'ResolvedRefs'), { ...condition('broken', 'ResolvedRefs'), reason: 'ResolvedRefs', observedGeneration: 2 });
    assert.equal(condition('broken', 'Accepted')?.lastTransitionTime, acceptedAt);
    assert.equal(api.writesBy('meshpilot-a', STATUS).length + api.writesBy('meshpilot-b', STATUS).length, before + 1);
  });
});

describe('route status to write, without a server', () => {
  const target = (status: Record<string, unknown> | undefined, generation = 2): StatusTarget => ({
    key: 'HTTPRoute/default/r',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'httproutes',
    kind: 'HTTPRoute',
    namespace: 'default',
    name: 'r',
    path: '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/r',
    generation,
    resourceVersion: '9',
    status,
  });
  const parentRef = { group: '', kind: 'Service', name: 'echo' };
  const accepted = { type: 'Accepted' as const, status: 'True' as const, reason: 'Accepted', message: 'Route was valid', observedGeneration: 2 };
  const ours = { kind: 'HTTPRoute', namespace: 'default', name: 'r', source: { origin: 'kube' as const, location: '', generation: 2 }, parents: [{ parentRef, controllerName: GATEWAY_CONTROLLER_NAME, conditions: [accepted] }] };
  const now = new Date('2026-12-01T06:00:00Z');

  it('keeps other controllers\' parents and the time of a condition that did not change', () => {
    const other = { parentRef: { name: 'gw' }, controllerName: 'example.com/gateway', conditions: [] };
    const written = routeStatusToWrite(target({ parents: [other] }), ours, now);
    assert.deepEqual(written, { parents: [other, { parentRef, controllerName: GATEWAY_CONTROLLER_NAME, conditions: [{ ...accepted, lastTransitionTime: now.toISOString() }] }] });
    assert.equal(routeStatusToWrite(target(written), ours, new Date('2026-12-01T07:00:00Z')), undefined, 'the same status an hour later is not written again');
    assert.equal(routeStatusToWrite(target(undefined, 3), ours, now), undefined, 'a status about another generation waits for the next push');
  });
});
