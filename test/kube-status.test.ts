// Two meshpilot replicas watch one (fake) cluster. The one that wins the Lease writes each Istio
// object's problems into its status as Istio's validationMessages, clears them once the object is
// fixed, writes nothing when the status already says it, and the other replica takes over when it
// stops. Every status write is counted per replica on the API server's side.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { PushContext } from '../src/model/push-context.ts';
import type { ValidationIssue } from '../src/model/rules.ts';
import { connect } from '../src/sources/kube/kube-api.ts';
import type { StatusTarget } from '../src/sources/kube/kube-source.ts';
import { StatusWriter, type StatusWriterTuning } from '../src/sources/kube/status-writer.ts';
import { istioMessageType, statusToWrite, validationMessage } from '../src/sources/kube/validation-messages.ts';
import type { KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { objectsFromDirectory, startMeshpilotOnKube } from './support/fake-kube-api-meshpilot.ts';
import { FakeKubeApi, ISTIO_SECURITY_CRDS, istioCrds, type KubeObject } from './support/fake-kube-api.ts';
import { eventually } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const NS = 'default';
// The leader hands over by releasing the Lease, so only the retry period sets the pace.
const FAST_ELECTION = { leaseDurationMs: 5000, renewDeadlineMs: 3000, retryPeriodMs: 100 };
const STATUS = '/status';

function virtualService(name: string, host: string, subset: string): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: NS },
    spec: { hosts: [host], http: [{ route: [{ destination: { host, subset } }] }] },
  };
}

const ratingsRule: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'ratings', namespace: NS }, spec: { host: 'ratings', subsets: [{ name: 'v1', labels: { version: 'v1' } }] } };
const brokenDetailsRule: KubeObject = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'details', namespace: NS },
  spec: { host: 'details', trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } },
};

interface LeaderZ {
  election: { identity: string; leader: string | null; leading: boolean } | null;
  status: { written: number; pending: number } | null;
  why: string | null;
}

describe('status written back by the leader, as Istio writes validationMessages', () => {
  let api: FakeKubeApi;
  const replicas = new Map<string, KubeMeshpilot>();

  const leaderz = async (replica: Pick<KubeMeshpilot, 'admin'>): Promise<LeaderZ> => (await (await replica.admin('/debug/leaderz')).json()) as LeaderZ;
  const statusOf = (kind: string, name: string): Record<string, unknown> | undefined => api.get(kind, NS, name)?.['status'] as Record<string, unknown> | undefined;
  const statusWrites = (user: string): number => api.writesBy(user, STATUS).length;
  const leaderUser = async (): Promise<string> =>
    eventually(async () => {
      for (const [user, replica] of replicas) if ((await leaderz(replica)).election?.leading) return user;
      return undefined;
    }, 10_000, 'a leader');
  /** Waits until nothing is queued for a write and the status is as expected. */
  const settled = async (user: string, check: () => boolean, what: string): Promise<void> => {
    const replica = replicas.get(user);
    assert.ok(replica);
    await eventually(async () => ((await leaderz(replica)).status?.pending === 0 && check() ? true : undefined), 10_000, what);
  };

  before(async () => {
    api = await FakeKubeApi.start();
    for (const crd of [...istioCrds(), ...ISTIO_SECURITY_CRDS]) api.installCrd(crd);
    const bookinfo = await objectsFromDirectory(join(ROOT, 'fixtures/bookinfo'));
    api.applyAll(bookinfo.filter((object) => !String(object['apiVersion']).includes('istio.io')));
    api.applyAll([ratingsRule, virtualService('ratings', 'ratings', 'v9'), brokenDetailsRule]);
    for (const user of ['meshpilot-a', 'meshpilot-b']) {
      replicas.set(user, await startMeshpilotOnKube(api, { user, serve: { podName: user, systemNamespace: 'meshpilot-system', leaderElection: FAST_ELECTION } }));
    }
  });

  after(async () => {
    await Promise.all([...replicas.values()].map((replica) => replica.close()));
    await api.close();
  });

  it('the leader writes each problem as an Istio analysis message, with the generation it is about', async () => {
    const leader = await leaderUser();
    await settled(leader, () => statusOf('DestinationRule', 'details') !== undefined && statusOf('VirtualService', 'ratings') !== undefined, 'statuses written');
    assert.deepEqual(statusOf('VirtualService', 'ratings'), {
      observedGeneration: 1,
      validationMessages: [{ documentationUrl: 'https://istio.io/latest/docs/reference/config/analysis/ist0101/', level: 'ERROR', type: { code: 'IST0101', name: 'ReferencedResourceNotFound' } }],
    });
    assert.deepEqual(statusOf('DestinationRule', 'details'), {
      observedGeneration: 1,
      validationMessages: [{ documentationUrl: 'https://istio.io/latest/docs/reference/config/analysis/ist0106/', level: 'ERROR', type: { code: 'IST0106', name: 'SchemaValidationError' } }],
    });
    assert.equal(statusOf('DestinationRule', 'ratings'), undefined, 'an object without problems gets no status write');
    const follower = [...replicas.keys()].find((user) => user !== leader) ?? '';
    assert.equal(statusWrites(follower), 0, 'the follower wrote no status');
    assert.equal(statusWrites(leader), 2, 'one write per object with problems');
    const gauge = async (user: string): Promise<string | undefined> => /^leader_election_master_status\{name="meshpilot-status-leader"\} (\d)$/m.exec(await (await replicas.get(user)?.admin('/metrics'))?.text() ?? '')?.[1];
    assert.deepEqual([await gauge(leader), await gauge(follower)], ['1', '0']);
    // The spec was not touched by the status writes.
    assert.equal((api.get('VirtualService', NS, 'ratings')?.['metadata'] as { generation: number }).generation, 1);
  });

  it('a fix clears the messages, and a push that changes nothing writes nothing', async () => {
    const leader = await leaderUser();
    api.apply(virtualService('ratings', 'ratings', 'v1'));
    await settled(leader, () => statusOf('VirtualService', 'ratings')?.['validationMessages'] === undefined, 'messages cleared');
    assert.deepEqual(statusOf('VirtualService', 'ratings'), { observedGeneration: 2 });
    const writes = statusWrites(leader);
    const replica = replicas.get(leader);
    assert.ok(replica);
    const pushBefore = ((await (await replica.admin('/debug/push_status')).json()) as { pushSequence: number }).pushSequence;
    api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'extra', namespace: NS }, spec: { ports: [{ name: 'http', port: 80 }] } });
    await eventually(async () => (((await (await replica.admin('/debug/push_status')).json()) as { pushSequence: number }).pushSequence > pushBefore ? true : undefined), 10_000, 'a push');
    await settled(leader, () => true, 'nothing pending');
    assert.equal(statusWrites(leader), writes, 'no status write for a push that changes no object\'s messages');
  });

  it('when the leader stops, the other replica takes over and writes from then on; never both', async () => {
    const leader = await leaderUser();
    const follower = [...replicas.keys()].find((user) => user !== leader) ?? '';
    await replicas.get(leader)?.close();
    replicas.delete(leader);
    const writesBeforeHandover = statusWrites(leader);
    assert.equal(await leaderUser(), follower);
    api.apply(virtualService('reviews', 'reviews', 'v7'));
    await settled(follower, () => statusOf('VirtualService', 'reviews') !== undefined, 'the new leader writes');
    assert.deepEqual((statusOf('VirtualService', 'reviews')?.['validationMessages'] as { type: { code: string } }[]).map((m) => m.type.code), ['IST0101']);
    assert.equal(statusWrites(leader), writesBeforeHandover, 'the stopped replica wrote nothing more');
    assert.equal(statusWrites(follower), 1, 'the new leader wrote only what changed');
    // Only users that made writes: never a third party, and never the follower before it led.
    assert.deepEqual(new Set(api.requests.filter((r) => r.path.endsWith(STATUS) && r.method !== 'GET').map((r) => r.user)), new Set([leader, follower]));
  });

  it('without Kubernetes nothing is elected, and the problems stay in /debug/configz', async () => {
    const meshpilot = await startMeshpilot(join(ROOT, 'fixtures/bookinfo'));
    try {
      const body = await leaderz(meshpilot);
      assert.equal(body.election, null);
      assert.equal(body.status, null);
      assert.match(body.why ?? '', /no Kubernetes source/);
    } finally {
      await meshpilot.close();
    }
  });
});

describe("meshpilot's problems as Istio's analysis messages", () => {
  const issue = (code: ValidationIssue['code'], path = 'spec', severity: ValidationIssue['severity'] = 'warning'): ValidationIssue => ({ code, path, severity, message: 'm' });
  const target = (status: Record<string, unknown> | undefined, generation = 3): StatusTarget => ({
    key: 'VirtualService/default/reviews',
    group: 'networking.istio.io',
    version: 'v1',
    plural: 'virtualservices',
    kind: 'VirtualService',
    namespace: 'default',
    name: 'reviews',
    path: '/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews',
    generation,
    resourceVersion: '7',
    status,
  });
  const ist0101 = validationMessage('VirtualService', issue('MP_REF_UNKNOWN', 'spec.http[0].route[0].destination.subset', 'error'));

  it('maps each code to the message Istio gives, or keeps meshpilot\'s own where Istio has none', () => {
    const table: [string, ValidationIssue, string | undefined][] = [
      ['VirtualService', issue('MP_REF_UNKNOWN'), 'IST0101'],
      ['DestinationRule', issue('MP_RULE_INVALID', 'spec.trafficPolicy', 'error'), 'IST0106'],
      ['Sidecar', issue('MP_OBJECT_INVALID', 'metadata.name', 'error'), 'IST0106'],
      ['VirtualService', issue('MP_RULE_CONFLICT', 'spec.hosts[0]'), 'IST0109'],
      ['DestinationRule', issue('MP_RULE_CONFLICT', 'spec.subsets[0].name'), undefined],
      ['Sidecar', issue('MP_SIDECAR_CONFLICT', 'spec.workloadSelector.labels'), 'IST0110'],
      ['Sidecar', issue('MP_SIDECAR_CONFLICT', 'spec.workloadSelector'), 'IST0111'],
      ['DestinationRule', issue('MP_MTLS_CONFLICT', 'spec.trafficPolicy.tls.mode'), 'IST0113'],
      ['VirtualService', issue('MP_RULE_WARNING', 'spec.http[0].mirrorPercent'), 'IST0133'],
      ['AuthorizationPolicy', issue('MP_RULE_INEFFECTIVE', 'spec.rules'), 'IST0167'],
      ['DestinationRule', issue('MP_RULE_INEFFECTIVE', 'spec.subsets[1].labels'), 'IST0173'],
      ['VirtualService', issue('MP_RULE_INEFFECTIVE', 'spec.gateways[0]'), 'IST0132'],
      ['Gateway', issue('MP_RULE_CONFLICT', 'spec.servers[1]'), 'IST0145'],
      ['VirtualService', issue('MP_UNSUPPORTED', 'spec.http[0].retries.backoff'), undefined],
    ];
    for (const [kind, problem, code] of table) assert.equal(istioMessageType(kind, problem)?.code, code, `${kind} ${problem.code} ${problem.path}`);
    assert.deepEqual(validationMessage('VirtualService', issue('MP_UNSUPPORTED')), { level: 'WARNING', type: { code: 'MP_UNSUPPORTED' } });
  });

  it('writes only what changes the status, for the generation the findings are about, keeping other fields', () => {
    const findings = { generation: 3, messages: [ist0101] };
    assert.deepEqual(statusToWrite(target(undefined), findings), { observedGeneration: 3, validationMessages: [ist0101] });
    assert.equal(statusToWrite(target(undefined, 4), findings), undefined, 'findings about another generation wait for the next push');
    assert.equal(statusToWrite(target({ observedGeneration: '3', validationMessages: [{ type: { name: ist0101.type.name, code: 'IST0101' }, level: 'ERROR', documentationUrl: ist0101.documentationUrl }] }), findings), undefined, 'the same messages in another key order, observedGeneration as a string');
    assert.equal(statusToWrite(target(undefined), { generation: 3, messages: [] }), undefined, 'no messages and none shown: nothing to write');
    assert.deepEqual(statusToWrite(target({ conditions: [{ type: 'Reconciled' }], observedGeneration: 2, validationMessages: [ist0101] }), { generation: 3, messages: [] }), { conditions: [{ type: 'Reconciled' }], observedGeneration: 3 });
    assert.deepEqual(statusToWrite(target({ validationMessages: [ist0101] }), undefined), { observedGeneration: 3 }, 'an object the model no longer speaks of is cleared');
  });
});

describe('the status writer, against the API server', () => {
  let api: FakeKubeApi;
  let dir: string;
  const names = ['a', 'b', 'c', 'd', 'e'];
  const path = (name: string): string => `/apis/networking.istio.io/v1/namespaces/${NS}/virtualservices/${name}`;

  before(async () => {
    api = await FakeKubeApi.start();
    for (const crd of istioCrds()) api.installCrd(crd);
    dir = await mkdtemp(join(tmpdir(), 'meshpilot-status-writer-'));
  });

  after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A writer over VirtualServices `names`, each with an IST0101 finding at generation 1; always leading. */
  async function writer(user: string, tuning: Partial<StatusWriterTuning>): Promise<StatusWriter> {
    for (const name of names) api.apply(virtualService(name, name, 'v9'));
    const kubeconfig = join(dir, `${user}.kubeconfig`);
    await api.writeKubeconfig(kubeconfig, user);
    const target = (key: string): StatusTarget | undefined => {
      const name = key.split('/')[2] ?? '';
      const object = api.get('VirtualService', NS, name);
      if (!object) return undefined;
      const meta = object.metadata as { generation: number; resourceVersion: string };
      const status = object['status'] as Record<string, unknown> | undefined;
      return { key, group: 'networking.istio.io', version: 'v1', plural: 'virtualservices', kind: 'VirtualService', namespace: NS, name, path: path(name), generation: meta.generation, resourceVersion: meta.resourceVersion, status };
    };
    const keys = names.map((name) => `VirtualService/${NS}/${name}`);
    const issue: ValidationIssue = { code: 'MP_REF_UNKNOWN', severity: 'error', path: 'spec.http[0].route[0].destination.subset', message: 'm' };
    const push = {
      sequence: 1,
      ruleStatus: new Map(names.map((name) => [name, { rule: { meta: { kind: 'VirtualService', namespace: NS, name, source: { origin: 'kube', location: path(name), generation: 1 } } }, issues: [issue], applied: true }])),
      rejected: [],
      objectWarnings: [],
      services: [],
    } as unknown as PushContext;
    const statusWriter = new StatusWriter({
      connection: connect(kubeconfig),
      source: { statusTargets: () => keys.map(target).filter((t) => t !== undefined), statusTarget: target, onStatusTarget: () => () => undefined },
      elector: { leading: true, onLeadingChange: () => () => undefined },
      currentPush: () => push,
      log: pino({ level: 'silent' }),
      tuning,
    });
    statusWriter.start();
    return statusWriter;
  }

  it('writes at most its burst at once; the rest wait for tokens', async () => {
    const statusWriter = await writer('bounded', { burst: 2, writesPerSecond: 0.5 });
    try {
      await eventually(() => (statusWriter.stats().written === 2 ? true : undefined), 5000, 'the burst');
      assert.equal(api.writesBy('bounded', STATUS).length, 2, 'two writes, then the bucket is empty');
      assert.ok(names.filter((name) => api.get('VirtualService', NS, name)?.['status'] === undefined).length === 3, 'three objects wait');
    } finally {
      await statusWriter.stop();
    }
  });

  it('retries a failed write with backoff, and succeeds once the API server answers again', async () => {
    api.refuseUser('retrying');
    const statusWriter = await writer('retrying', { backoffInitialMs: 50, backoffMaxMs: 200 });
    try {
      await eventually(() => (statusWriter.stats().failed >= names.length * 2 ? true : undefined), 5000, 'failed writes, retried');
      assert.match(statusWriter.stats().lastError ?? '', /^VirtualService default\/[a-e]: /);
      api.refuseUser('retrying', false);
      await eventually(() => (names.every((name) => api.get('VirtualService', NS, name)?.['status'] !== undefined) ? true : undefined), 5000, 'every status written');
    } finally {
      await statusWriter.stop();
    }
  });
});
