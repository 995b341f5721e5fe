// Three meshpilot replicas elect a status writer on a Lease in the fake API server, through the
// real client-node: exactly one leads, it keeps the Lease while it renews, a dead leader is
// replaced once its Lease runs out, a leader cut off from the API steps down before anyone else
// takes over, and a leader that stops hands over at once. First, the fake answers Lease and
// status writes as the real API server does, so what the electors and the writer rely on is real.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiException, CoordinationV1Api, CustomObjectsApi, KubeConfig, V1Lease, V1LeaseSpec, V1MicroTime, V1ObjectMeta } from '@kubernetes/client-node';
import { pino } from 'pino';
import { connect } from '../src/sources/kube/kube-api.ts';
import { checkTiming, LeaderElector, type LeaderElectionTiming } from '../src/sources/kube/leader-election.ts';
import { STATUS_LEADER_LEASE } from '../src/sources/kube/resources.ts';
import { FakeKubeApi, istioCrds } from './support/fake-kube-api.ts';
import { eventually } from './support/mesh-dir.ts';

const NAMESPACE = 'meshpilot-system';
// Short, with room for a busy machine's event-loop stalls: a leader renews 15 times per lease duration.
const FAST: LeaderElectionTiming = { leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 100 };
const LEASE_PATH = `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${STATUS_LEADER_LEASE}`;

interface Replica {
  readonly user: string;
  readonly elector: LeaderElector;
  /** Each start and stop of leading, with when it happened. */
  readonly changes: { leading: boolean; at: number }[];
}

async function refusal(call: Promise<unknown>): Promise<number> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
  throw new Error('the call succeeded');
}

type Json = Record<string, unknown>;
const LEASE_NAMESPACE = 'meshpilot-system';
/** client-node hands custom objects back as `any`. */
const asJson = (value: unknown): Json => value as Json;

function leaseBody(resourceVersion: string | undefined, spec: Record<string, unknown>): V1Lease {
  return Object.assign(new V1Lease(), {
    metadata: Object.assign(new V1ObjectMeta(), { name: 'held', namespace: LEASE_NAMESPACE, ...(resourceVersion !== undefined ? { resourceVersion } : {}) }),
    spec: Object.assign(new V1LeaseSpec(), spec),
  });
}

describe('the fake API server writes Leases and status as the real one, to client-node', () => {
  let api: FakeKubeApi;
  let leases: CoordinationV1Api;
  let objects: CustomObjectsApi;
  const vs = { group: 'networking.istio.io', version: 'v1', namespace: 'default', plural: 'virtualservices', name: 'reviews' };
  const statusUrl = (): string => `${api.url}/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews/status`;
  const meta = (object: Json): { resourceVersion: string; generation?: number } => object['metadata'] as { resourceVersion: string; generation?: number };
  const json = async (path: string): Promise<{ resources: { name: string; verbs: string[] }[] }> =>
    (await (await fetch(`${api.url}${path}`, { headers: { authorization: 'Bearer fake-token' } })).json()) as { resources: { name: string; verbs: string[] }[] };

  before(async () => {
    api = await FakeKubeApi.start();
    for (const crd of istioCrds()) api.installCrd(crd);
    const config = new KubeConfig();
    config.loadFromString(api.kubeconfig());
    leases = config.makeApiClient(CoordinationV1Api);
    objects = config.makeApiClient(CustomObjectsApi);
  });

  after(() => api.close());

  it("serves coordination.k8s.io/v1 leases and the Istio kinds' status subresource in discovery", async () => {
    assert.ok((await json('/apis/coordination.k8s.io/v1')).resources.some((r) => r.name === 'leases' && r.verbs.includes('update')));
    assert.deepEqual((await json('/apis/networking.istio.io/v1')).resources.find((r) => r.name === 'virtualservices/status')?.verbs, ['get', 'patch', 'update']);
  });

  it('creates a Lease once, updates it only at its current resourceVersion, and refuses what the API server refuses', async () => {
    const now = new V1MicroTime();
    const spec = { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: now, renewTime: now };
    const created = await leases.createNamespacedLease({ namespace: LEASE_NAMESPACE, body: leaseBody(undefined, spec) });
    assert.equal(await refusal(leases.createNamespacedLease({ namespace: LEASE_NAMESPACE, body: leaseBody(undefined, spec) })), 409, 'AlreadyExists');
    const renewed = await leases.replaceNamespacedLease({ name: 'held', namespace: LEASE_NAMESPACE, body: leaseBody(created.metadata?.resourceVersion, { ...spec, renewTime: new V1MicroTime() }) });
    assert.notEqual(renewed.metadata?.resourceVersion, created.metadata?.resourceVersion);
    const stale = leaseBody(created.metadata?.resourceVersion, { ...spec, holderIdentity: 'b' });
    assert.equal(await refusal(leases.replaceNamespacedLease({ name: 'held', namespace: LEASE_NAMESPACE, body: stale })), 409, 'a stale resourceVersion is a Conflict');
    // A plain Date serialises with milliseconds, which metav1.MicroTime does not parse.
    const milliseconds = leaseBody(renewed.metadata?.resourceVersion, { ...spec, renewTime: new Date() });
    assert.equal(await refusal(leases.replaceNamespacedLease({ name: 'held', namespace: LEASE_NAMESPACE, body: milliseconds })), 400);
    const zero = leaseBody(renewed.metadata?.resourceVersion, { ...spec, leaseDurationSeconds: 0 });
    assert.equal(await refusal(leases.replaceNamespacedLease({ name: 'held', namespace: LEASE_NAMESPACE, body: zero })), 422);
    assert.equal((await leases.readNamespacedLease({ name: 'held', namespace: LEASE_NAMESPACE })).spec?.holderIdentity, 'a');
  });

  it('changes only status through /status, bumps metadata.generation only for spec changes, and writes nothing for a no-op', async () => {
    api.apply({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' }, spec: { hosts: ['reviews'] } });
    const read = asJson(await objects.getNamespacedCustomObject(vs));
    assert.equal(meta(read).generation, 1);
    const status = { observedGeneration: 1, validationMessages: [{ level: 'ERROR', type: { code: 'IST0101' } }] };
    const written = asJson(await objects.replaceNamespacedCustomObjectStatus({ ...vs, body: { ...read, spec: { hosts: ['ignored'] }, status } }));
    assert.deepEqual(written['spec'], { hosts: ['reviews'] }, 'the spec in a status write is ignored');
    assert.deepEqual(written['status'], status);
    assert.equal(meta(written).generation, 1, 'status writes keep the generation');
    assert.notEqual(meta(written).resourceVersion, meta(read).resourceVersion);
    const again = asJson(await objects.replaceNamespacedCustomObjectStatus({ ...vs, body: written }));
    assert.equal(meta(again).resourceVersion, meta(written).resourceVersion, 'an unchanged status is not written');
    assert.equal(await refusal(objects.replaceNamespacedCustomObjectStatus({ ...vs, body: { ...read, status: {} } })), 409, 'a stale resourceVersion is a Conflict');
    const unconditional = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, status: {} };
    assert.equal(await refusal(objects.replaceNamespacedCustomObjectStatus({ ...vs, body: unconditional })), 422, 'custom resources allow no unconditional update');
    const edited = asJson(await objects.replaceNamespacedCustomObject({ ...vs, body: { ...written, spec: { hosts: ['reviews', 'reviews.default'] }, status: { observedGeneration: 9 } } }));
    assert.equal(meta(edited).generation, 2, 'a spec change bumps the generation');
    assert.deepEqual(edited['status'], status, 'a write to the object leaves its status');
    const patched = asJson(await objects.patchNamespacedCustomObjectStatus({ ...vs, body: [{ op: 'replace', path: '/status/observedGeneration', value: 2 }] }));
    assert.deepEqual(patched['status'], { ...status, observedGeneration: 2 }, 'a JSON patch, as client-node sends it');
    const merge = { spec: { hosts: [] }, status: { validationMessages: null } };
    const merged = await fetch(statusUrl(), { method: 'PATCH', headers: { authorization: 'Bearer fake-token', 'content-type': 'application/merge-patch+json' }, body: JSON.stringify(merge) });
    const afterMerge = (await merged.json()) as Json;
    assert.deepEqual([afterMerge['spec'], afterMerge['status'], meta(afterMerge).generation], [{ hosts: ['reviews', 'reviews.default'] }, { observedGeneration: 2 }, 2]);
    const strategic = await fetch(statusUrl(), { method: 'PATCH', headers: { authorization: 'Bearer fake-token', 'content-type': 'application/strategic-merge-patch+json' }, body: '{}' });
    assert.equal(strategic.status, 415, 'custom resources take no strategic merge patch');
  });
});

describe('leader election on a Lease', () => {
  let api: FakeKubeApi;
  let dir: string;
  const replicas: Replica[] = [];
  /** Replicas stopped the hard way (no release); they take no further part. */
  const dead = new Set<Replica>();

  async function replica(user: string, timing: LeaderElectionTiming = FAST): Promise<Replica> {
    const kubeconfig = join(dir, `${user}.kubeconfig`);
    await api.writeKubeconfig(kubeconfig, user);
    const elector = new LeaderElector({ connection: connect(kubeconfig), namespace: NAMESPACE, identity: `${user}_test`, timing, log: pino({ level: 'silent' }) });
    const changes: Replica['changes'] = [];
    elector.onLeadingChange((leading) => changes.push({ leading, at: performance.now() }));
    const started = { user, elector, changes };
    replicas.push(started);
    elector.start();
    return started;
  }

  type LeaseSpec = { holderIdentity?: string; leaseTransitions?: number; renewTime?: string };
  const lease = (): LeaseSpec => api.get('Lease', NAMESPACE, STATUS_LEADER_LEASE)?.['spec'] ?? {};
  const leaders = (among: readonly Replica[]): Replica[] => among.filter((r) => r.elector.leading);
  const oneLeader = (among: readonly Replica[], what: string): Promise<Replica> =>
    eventually(() => {
      const leading = leaders(among);
      return leading.length === 1 ? leading[0] : undefined;
    }, 5000, what);

  before(async () => {
    api = await FakeKubeApi.start();
    dir = await mkdtemp(join(tmpdir(), 'meshpilot-election-'));
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.elector.stop()));
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses timings where a leader could not step down before a follower takes over', () => {
    assert.throws(() => checkTiming({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 }), /MP_CONFIG/);
    assert.throws(() => checkTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 2000, retryPeriodMs: 2000 }), /MP_CONFIG/);
    assert.doesNotThrow(() => checkTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 }));
  });

  it('three replicas elect exactly one, which keeps the Lease while it renews', async () => {
    const group = await Promise.all(['replica-a', 'replica-b', 'replica-c'].map((user) => replica(user)));
    const leader = await oneLeader(group, 'a leader');
    assert.equal(lease().holderIdentity, leader.elector.identity);
    assert.equal(lease().leaseTransitions, 0);
    assert.match(lease().renewTime ?? '', /\.\d{6}Z$/, 'MicroTime with six fractional digits, as the API server requires');
    // Five renewals by the leader, then nobody else ever led and the Lease never changed hands.
    const renewalsBefore = api.writesBy(leader.user, LEASE_PATH).length;
    await eventually(() => (api.writesBy(leader.user, LEASE_PATH).length >= renewalsBefore + 5 ? true : undefined), 5000, 'five renewals');
    for (const other of group.filter((r) => r !== leader)) {
      assert.deepEqual(other.changes, [], `${other.user} never led`);
      assert.equal(other.elector.state().leader, leader.elector.identity, `${other.user} sees the leader`);
      assert.ok(api.writesBy(other.user, LEASE_PATH).every((w) => w.method !== 'PUT'), `${other.user} never wrote the Lease while it was held`);
    }
    assert.equal(lease().leaseTransitions, 0);
    assert.equal(lease().holderIdentity, leader.elector.identity);
  });

  it('when the leader dies, another takes over once the Lease runs out, and only one leads', async (t) => {
    const group = replicas.slice(0, 3);
    const victim = await oneLeader(group, 'the leader');
    const diedAt = performance.now();
    victim.elector.abandon();
    dead.add(victim);
    const successor = await oneLeader(group.filter((r) => r !== victim), 'a new leader');
    const tookOverAt = successor.changes.at(-1)?.at ?? 0;
    t.diagnostic(`took over ${Math.round(tookOverAt - diedAt)} ms after the leader died (lease duration ${FAST.leaseDurationMs} ms, retry period ${FAST.retryPeriodMs} ms)`);
    assert.equal(lease().holderIdentity, successor.elector.identity);
    assert.equal(lease().leaseTransitions, 1);
    assert.equal(leaders(group).length, 1);
  });

  it('a leader cut off from the API server stops leading before another replica starts', async (t) => {
    const alive = replicas.slice(0, 3).filter((r) => !dead.has(r));
    const cutOff = await oneLeader(alive, 'the leader');
    api.refuseUser(cutOff.user);
    const successor = await oneLeader(alive.filter((r) => r !== cutOff), 'a new leader');
    const steppedDown = cutOff.changes.at(-1);
    const started = successor.changes.at(-1);
    assert.equal(steppedDown?.leading, false, 'the cut-off leader stepped down');
    assert.ok(steppedDown.at < (started?.at ?? 0), 'it stepped down before the successor started: never two leaders');
    t.diagnostic(`stepped down ${Math.round((started?.at ?? 0) - steppedDown.at)} ms before the successor started`);
    api.refuseUser(cutOff.user, false);
    await eventually(() => (cutOff.elector.state().leader === successor.elector.identity ? true : undefined), 5000, 'the old leader sees the new one');
    assert.equal(cutOff.elector.leading, false);
    assert.equal(lease().leaseTransitions, 2);
  });

  it('a leader that stops releases the Lease, and a follower takes it without waiting the lease out', async () => {
    // A lease far longer than this test's patience: only a release lets the follower in.
    const slow: LeaderElectionTiming = { leaseDurationMs: 60_000, renewDeadlineMs: 40_000, retryPeriodMs: 100 };
    for (const r of replicas.splice(0)) await r.elector.stop();
    const first = await replica('replica-d', slow);
    await oneLeader([first], 'replica-d leads');
    const second = await replica('replica-e', slow);
    await eventually(() => (second.elector.state().leader === first.elector.identity ? true : undefined), 5000, 'replica-e sees replica-d lead');
    const transitions = lease().leaseTransitions ?? 0;
    await first.elector.stop();
    assert.equal(lease().holderIdentity, '', 'released');
    await oneLeader([first, second], 'replica-e takes over');
    assert.equal(lease().holderIdentity, second.elector.identity);
    assert.equal(lease().leaseTransitions, transitions + 1);
  });
});
