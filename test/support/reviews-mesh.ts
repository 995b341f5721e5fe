// The reviews service of BookInfo with three versions on real backends, as Kubernetes objects.
import type { ServeOptions } from '../../src/main.ts';
import type { Backend } from './backends.ts';
import { startBackends } from './backends.ts';
import { GrpcXdsCaller } from './grpc-xds-client.ts';
import { MeshDir, endpointSlice, pod, rule, service } from './mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './meshpilot.ts';

export const NS = 'default';
export const TARGET = 'xds:///reviews.default.svc.cluster.local:9080';
export const PRODUCTPAGE = 'sidecar~127.0.0.20~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local';

export function workloads(backends: Backend[]) {
  const versions = ['v1', 'v2', 'v3'];
  return [
    service('reviews', NS, [{ name: 'grpc', port: 9080, targetPort: backends[0]?.port ?? 0 }], '10.96.0.30'),
    ...backends.map((b, i) => pod(`reviews-${versions[i] ?? 'v'}-0`, NS, b.host, { app: 'reviews', version: versions[i] ?? '' })),
    endpointSlice(
      'reviews',
      NS,
      { name: 'grpc', port: backends[0]?.port ?? 0 },
      backends.map((b, i) => ({ name: `reviews-${versions[i] ?? 'v'}-0`, ip: b.host })),
    ),
  ];
}

export const subsets = rule('DestinationRule', 'reviews', NS, {
  host: 'reviews',
  subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })),
});

export function reviewsRoutes(split: { v1: number; v3: number }) {
  const route = [
    { destination: { host: 'reviews', subset: 'v1' }, weight: split.v1 },
    { destination: { host: 'reviews', subset: 'v3' }, weight: split.v3 },
  ].filter((r) => r.weight > 0);
  return rule('VirtualService', 'reviews', NS, {
    hosts: ['reviews'],
    http: [
      { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
      { route },
    ],
  });
}


/** A running reviews mesh: three real backends, meshpilot serving them, and productpage's gRPC client. */
export interface ReviewsMesh {
  readonly dir: MeshDir;
  readonly backends: Backend[];
  readonly meshpilot: TestMeshpilot;
  readonly client: GrpcXdsCaller;
  close(): Promise<void>;
}

export async function startReviewsMesh(split: { v1: number; v3: number }, overrides: Partial<ServeOptions> = {}): Promise<ReviewsMesh> {
  const backends = await startBackends(['reviews-v1', 'reviews-v2', 'reviews-v3']);
  const dir = await MeshDir.create();
  await dir.write('workloads.yaml', workloads(backends));
  await dir.write('destination-rules.yaml', [subsets]);
  await dir.write('virtual-services.yaml', [reviewsRoutes(split)]);
  const meshpilot = await startMeshpilot(dir.path, overrides);
  const client = new GrpcXdsCaller(TARGET, { xdsPort: meshpilot.xdsPort, nodeId: PRODUCTPAGE, metadata: { GENERATOR: 'grpc', NAMESPACE: NS } });
  await client.whoami();
  return {
    dir,
    backends,
    meshpilot,
    client,
    async close() {
      client.close();
      await meshpilot.close();
      await Promise.all(backends.map((b) => b.close()));
      await dir.remove();
    },
  };
}
