// The reviews service of BookInfo with three versions on real backends, as Kubernetes objects.
import type { Backend } from './backends.ts';
import { endpointSlice, pod, rule, service } from './mesh-dir.ts';

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

