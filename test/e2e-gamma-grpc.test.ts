// End to end, GAMMA: real proxyless gRPC clients (@grpc/grpc-js-xds) calling reviews follow a
// GRPCRoute, then an HTTPRoute, whose parent is the reviews Service; each version is its own
// Service, as the Gateway API routes to Services.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBackends, type Backend } from './support/backends.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { MeshDir, endpointSlice, eventually, pod, service, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { NS, PRODUCTPAGE, TARGET } from './support/reviews-mesh.ts';

const VERSIONS = ['v1', 'v2', 'v3'] as const;

/** reviews (the parent) and reviews-v1..v3 (the backends), one real gRPC server per version. */
function versionedServices(backends: readonly Backend[]): K8sObject[] {
  const port = backends[0]?.port ?? 0;
  const pods = backends.map((b, i) => ({ name: `reviews-${VERSIONS[i] ?? ''}-0`, ip: b.host }));
  return [
    service('reviews', NS, [{ name: 'grpc', port: 9080, targetPort: port }], '10.96.0.30'),
    endpointSlice('reviews', NS, { name: 'grpc', port }, pods),
    ...pods.flatMap((p, i) => [
      pod(p.name, NS, p.ip, { app: 'reviews', version: VERSIONS[i] ?? '' }),
      service(`reviews-${VERSIONS[i] ?? ''}`, NS, [{ name: 'grpc', port: 9080, targetPort: port }], `10.96.0.3${i + 1}`),
      endpointSlice(`reviews-${VERSIONS[i] ?? ''}`, NS, { name: 'grpc', port }, [p]),
    ]),
  ];
}

const toReviews = { parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }] };
const backend = (version: string, weight?: number): Record<string, unknown> => ({ name: `reviews-${version}`, port: 9080, ...(weight !== undefined ? { weight } : {}) });

const grpcRoute: K8sObject = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'GRPCRoute',
  metadata: { name: 'reviews', namespace: NS },
  spec: {
    ...toReviews,
    rules: [
      // A service match outranks headers alone (the spec's order), so jason's rule names the service too.
      { matches: [{ method: { service: 'meshpilot.test.Echo' }, headers: [{ name: 'end-user', value: 'jason' }] }], backendRefs: [backend('v2')] },
      { matches: [{ method: { service: 'meshpilot.test.Echo' } }], backendRefs: [backend('v1', 80), backend('v3', 20)] },
    ],
  },
};

const httpRoute: K8sObject = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'reviews', namespace: NS },
  spec: { ...toReviews, rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/meshpilot.test.Echo' } }], backendRefs: [backend('v3')] }] },
};

describe('proxyless gRPC clients follow Gateway API routes whose parent is their Service (GAMMA)', () => {
  let dir: MeshDir;
  let backends: Backend[];
  let meshpilot: TestMeshpilot;
  let client: GrpcXdsCaller;

  before(async () => {
    backends = await startBackends(['reviews-v1', 'reviews-v2', 'reviews-v3']);
    dir = await MeshDir.create();
    await dir.write('services.yaml', versionedServices(backends));
    await dir.write('routes.yaml', [grpcRoute]);
    meshpilot = await startMeshpilot(dir.path);
    client = new GrpcXdsCaller(TARGET, { xdsPort: meshpilot.xdsPort, nodeId: PRODUCTPAGE, metadata: { GENERATOR: 'grpc', NAMESPACE: NS } });
  });

  after(async () => {
    client.close();
    await meshpilot.close();
    await Promise.all(backends.map((b) => b.close()));
    await dir.remove();
  });

  it('a GRPCRoute header match sends jason to reviews-v2', async () => {
    assert.deepEqual([...(await client.tally(20, { 'end-user': 'jason' }))], [['reviews-v2', 20]]);
  });

  it('a GRPCRoute method match splits everyone else 80/20 between reviews-v1 and reviews-v3', async () => {
    const total = 400;
    const counts = await client.tally(total);
    const v1 = counts.get('reviews-v1') ?? 0;
    assert.equal(counts.get('reviews-v2'), undefined, 'no one but jason reaches v2');
    assert.equal(v1 + (counts.get('reviews-v3') ?? 0), total);
    // Binomial(400, 0.8): sd = 8 calls; 4 sd either side.
    assert.ok(v1 >= 288 && v1 <= 352, `v1 got ${v1}/${total}, expected about 320`);
  });

  it('shows the route Accepted with its references resolved in /debug/configz', async () => {
    const body = (await (await meshpilot.admin('/debug/configz')).json()) as { routeStatuses: { kind: string; name: string; parents: { conditions: { type: string; status: string }[] }[] }[] };
    const status = body.routeStatuses.find((s) => s.kind === 'GRPCRoute' && s.name === 'reviews');
    assert.deepEqual(status?.parents[0]?.conditions.map((c) => `${c.type}=${c.status}`), ['Accepted=True', 'ResolvedRefs=True']);
  });

  it('an HTTPRoute put in its place is followed live: everyone, jason too, goes to reviews-v3', async () => {
    await dir.write('routes.yaml', [httpRoute]);
    await eventually(async () => ((await client.whoami({ 'end-user': 'jason' })).name === 'reviews-v3' ? true : undefined), 10_000, 'jason routed to v3');
    assert.deepEqual([...(await client.tally(20))], [['reviews-v3', 20]]);
  });
});
