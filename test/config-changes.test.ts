// A push carries the config keys that changed, as the store saw them: which keys a file edit,
// a Kubernetes event and a re-publish of the same objects produce, and that an empty set pushes nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { ConfigChanges, ChangeEvent } from '../src/model/config-changes.ts';
import { mergeChanges } from '../src/model/config-changes.ts';
import type { SourceSnapshot } from '../src/model/store.ts';
import { ConfigStore } from '../src/model/store.ts';
import { PushController } from '../src/push/push-controller.ts';
import type { PushChange } from '../src/push/proxy-scope.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import { YamlSource } from '../src/sources/yaml-source.ts';
import { startClusterMesh } from './support/fake-kube-api-meshpilot.ts';
import { MeshDir, endpointSlice, eventually, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';

const REVIEWS = 'reviews.default.svc.cluster.local';
const quiet = pino({ level: 'silent' });

/** An object and the file it was read from. */
interface Placed {
  readonly object: K8sObject;
  readonly file: string;
}
const isPlaced = (o: K8sObject | Placed): o is Placed => typeof o['file'] === 'string' && 'object' in o;

const reviewsRoutes = (v1: number, file = 'mesh.yaml'): Placed => ({
  object: rule('VirtualService', 'reviews', 'default', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: v1 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 100 - v1 }] }] }),
  file,
});
const reviewsSubsets = rule('DestinationRule', 'reviews', 'default', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] });
const reviewsPods = (ips: readonly string[]): K8sObject[] => [
  ...ips.map((ip, i) => pod(`reviews-${i}`, 'default', ip, { app: 'reviews', version: `v${(i % 2) + 1}` })),
  endpointSlice('reviews', 'default', { name: 'http', port: 9080 }, ips.map((ip, i) => ({ name: `reviews-${i}`, ip }))),
];
const reviews = service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.20');
const ratings = service('ratings', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.21');

/** A mesh as one source publishes it: every object read fresh, as a reload does. */
function snapshot(objects: readonly (K8sObject | Placed)[]): SourceSnapshot {
  const sourced = objects.map((o) => (isPlaced(o) ? o : { object: o, file: 'mesh.yaml' }));
  const converted = convertObjects(sourced.map(({ object, file }) => ({ object: structuredClone(object), source: { origin: 'file', location: file } })));
  assert.deepEqual(converted.rejected.map((r) => r.issues), [], 'every object is accepted');
  return converted;
}

const BASE = [reviews, ratings, reviewsSubsets, reviewsRoutes(50), ...reviewsPods(['10.244.0.1', '10.244.0.2'])];

function changesOf(changes: ConfigChanges): Record<string, ChangeEvent> {
  return Object.fromEntries([...changes].map(([key, change]) => [key, change.event]));
}

/** What the store tells its listeners when a source publishes `after` over `before`. */
function published(before: SourceSnapshot, after: SourceSnapshot): Record<string, ChangeEvent> {
  const store = new ConfigStore();
  store.publish('file', before, 'first read');
  let seen: ConfigChanges | undefined;
  store.onChange((change) => {
    seen = change.changes;
  });
  store.publish('file', after, 'reload');
  assert.ok(seen, 'every publish is told to the listeners');
  return changesOf(seen);
}

describe('which config keys a publish changes', () => {
  const cases: { name: string; after: readonly (K8sObject | Placed)[]; expected: Record<string, ChangeEvent> }[] = [
    { name: 'the same objects read again', after: BASE, expected: {} },
    { name: 'a VirtualService with new weights', after: BASE.map((o) => (o === BASE[3] ? reviewsRoutes(80) : o)), expected: { 'VirtualService/default/reviews': 'update' } },
    { name: 'the same VirtualService moved to another file', after: BASE.map((o) => (o === BASE[3] ? reviewsRoutes(50, 'routes.yaml') : o)), expected: {} },
    { name: 'a third reviews pod', after: [...BASE.slice(0, 4), ...reviewsPods(['10.244.0.1', '10.244.0.2', '10.244.0.3'])], expected: { 'Endpoints//reviews.default.svc.cluster.local': 'update' } },
    { name: 'the same pods listed in another order', after: [...BASE.slice(0, 4), ...reviewsPods(['10.244.0.1', '10.244.0.2']).reverse()], expected: {} },
    {
      name: 'the reviews Service deleted (its endpoints go with it)',
      after: BASE.filter((o) => o !== reviews && !('kind' in o && o['kind'] === 'EndpointSlice')),
      expected: { 'Service/default/reviews.default.svc.cluster.local': 'delete', 'Endpoints//reviews.default.svc.cluster.local': 'delete' },
    },
    { name: 'a new AuthorizationPolicy', after: [...BASE, rule('AuthorizationPolicy', 'deny-all', 'default', {})], expected: { 'AuthorizationPolicy/default/deny-all': 'add' } },
    { name: 'a Service with a new port', after: BASE.map((o) => (o === ratings ? service('ratings', 'default', [{ name: 'http', port: 9081, targetPort: 9080 }], '10.96.0.21') : o)), expected: { 'Service/default/ratings.default.svc.cluster.local': 'update' } },
  ];
  for (const { name, after, expected } of cases) {
    it(`${name}: ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(published(snapshot(BASE), snapshot(after)), expected);
    });
  }

  it('several publishes before a push: what differs from before the first to after the last', () => {
    const change = (event: ChangeEvent): ConfigChanges => new Map([['VirtualService/default/reviews', { kind: 'VirtualService', namespace: 'default', name: 'reviews', event }]]);
    const merged = (...events: ChangeEvent[]): Record<string, ChangeEvent> => changesOf(mergeChanges(events.map(change)));
    assert.deepEqual(merged('add', 'delete'), {}, 'created and deleted within one push: never there');
    assert.deepEqual(merged('delete', 'add'), { 'VirtualService/default/reviews': 'update' });
    assert.deepEqual(merged('add', 'update'), { 'VirtualService/default/reviews': 'add' });
    assert.deepEqual(merged('update', 'delete'), { 'VirtualService/default/reviews': 'delete' });
    assert.deepEqual(merged('update', 'update'), { 'VirtualService/default/reviews': 'update' });
  });

  it('a source re-publishing the objects it holds, one pod moved at a time: only that host, publish after publish', () => {
    const base = snapshot(BASE);
    const [first, second] = base.endpoints;
    assert.ok(first && second);
    const moved = { ...first, address: '10.244.0.9' };
    const store = new ConfigStore();
    const seen: Record<string, ChangeEvent>[] = [];
    store.onChange((change) => seen.push(changesOf(change.changes)));
    const publish = (endpoints: SourceSnapshot['endpoints'], services = base.services): void => {
      store.publish('kube', { ...base, services, endpoints }, 'event');
    };
    const reviewsEndpoints = 'Endpoints//reviews.default.svc.cluster.local';
    publish(base.endpoints);
    publish(base.endpoints);
    publish([moved, second]);
    publish([moved, second]);
    publish([second, moved]);
    publish([first, second, moved]);
    publish([first]);
    publish([]);
    publish([first, second]);
    publish([first, second], base.services.filter((s) => s.hostname !== REVIEWS));
    assert.equal(seen.length, 10);
    assert.equal(Object.keys(seen[0] ?? {}).length, base.services.length + base.rules.length + 1, 'the first publish adds everything');
    assert.deepEqual(seen.slice(1), [
      {},
      { [reviewsEndpoints]: 'update' },
      {},
      {},
      { [reviewsEndpoints]: 'update' },
      { [reviewsEndpoints]: 'update' },
      { [reviewsEndpoints]: 'delete' },
      { [reviewsEndpoints]: 'add' },
      { [`Service/default/${REVIEWS}`]: 'delete' },
    ]);
  });

  it('an empty config directory beside a source with objects: the merged view is that source, and its changes are told as they are', () => {
    const store = new ConfigStore();
    store.publish('file', { services: [], endpoints: [], rules: [], rejected: [] }, 'empty directory');
    const kube = snapshot(BASE);
    store.publish('kube', kube, 'initial list');
    assert.equal(store.current(), kube, 'nothing to merge: the snapshot as published');
    const seen: Record<string, ChangeEvent>[] = [];
    store.onChange((change) => seen.push(changesOf(change.changes)));
    store.publish('file', snapshot([ratings]), 'a file names ratings');
    assert.deepEqual(store.current().services.map((s) => s.hostname).sort(), [`ratings.default.svc.cluster.local`, REVIEWS], 'both sources, merged');
    assert.deepEqual(seen, [{}], 'the file repeats a service the cluster has: nothing changed');
    store.publish('file', { services: [], endpoints: [], rules: [], rejected: [] }, 'file emptied');
    assert.equal(store.current(), kube);
  });

  it('a re-publish of the same objects pushes nothing', () => {
    const store = new ConfigStore();
    store.publish('file', snapshot(BASE), 'first read');
    const pushed: PushChange[] = [];
    const controller = new PushController({
      store,
      target: { pushAll: () => assert.fail('no full push'), pushScoped: (change) => pushed.push(change), connections: () => [] },
      log: quiet,
      debounce: { quietMs: 60_000, maxMs: 60_000 },
    });
    const first = controller.start();
    assert.equal(pushed.length, 1, 'the first push compares everything');
    store.publish('file', snapshot(BASE), 'reload');
    controller.flush();
    assert.equal(controller.current()?.sequence, first.sequence + 1, 'the model is rebuilt');
    assert.deepEqual(controller.lastPush()?.scope, {});
    assert.equal(pushed.length, 1, 'nothing sent for the re-publish');
    store.publish('file', snapshot(BASE.map((o) => (o === BASE[3] ? reviewsRoutes(80) : o))), 'edit');
    controller.flush();
    assert.deepEqual(controller.lastPush()?.scope, { Cluster: 'all', ClusterLoadAssignment: 2, Listener: 'all', RouteConfiguration: 'all' });
    assert.equal(pushed.length, 2);
    controller.stop();
  });
});

describe('the keys a source reports', () => {
  it('a file edit: the VirtualService in it', async () => {
    const dir = await MeshDir.create();
    const store = new ConfigStore();
    const source = new YamlSource({ dir: dir.path, store, log: quiet, quietMs: 10 });
    try {
      await dir.write('mesh.yaml', [reviews, ratings, reviewsSubsets, ...reviewsPods(['10.244.0.1', '10.244.0.2'])]);
      await dir.write('routes.yaml', [reviewsRoutes(50).object]);
      await source.start();
      const seen: Record<string, ChangeEvent>[] = [];
      store.onChange((change) => seen.push(changesOf(change.changes)));
      await dir.write('routes.yaml', [reviewsRoutes(90).object]);
      await eventually(() => seen[0], 5000, 'the edit published');
      assert.deepEqual(seen, [{ 'VirtualService/default/reviews': 'update' }]);
    } finally {
      await source.stop();
      await dir.remove();
    }
  });

  it('a Kubernetes event: a new pod in the reviews EndpointSlice changes the endpoints of reviews only', async () => {
    const { api, meshpilot } = await startClusterMesh([reviews, ratings, reviewsSubsets, reviewsRoutes(50).object, ...reviewsPods(['10.244.0.1'])]);
    try {
      const seen: Record<string, ChangeEvent>[] = [];
      meshpilot.store.onChange((change) => seen.push(changesOf(change.changes)));
      const grown = reviewsPods(['10.244.0.1', '10.244.0.2']);
      for (const object of grown.slice(1)) api.apply(object);
      const changes = await eventually(() => seen.find((c) => Object.keys(c).length > 0), 5000, 'the new endpoint published');
      assert.deepEqual(changes, { 'Endpoints//reviews.default.svc.cluster.local': 'update' });
      assert.ok(meshpilot.store.current().endpoints.some((e) => e.serviceHostname === REVIEWS && e.address === '10.244.0.2'));
    } finally {
      await meshpilot.close();
      await api.close();
    }
  });
});
