// Which workload a proxy is, for every selector that picks workloads (Sidecar, PeerAuthentication,
// AuthorizationPolicy, a gRPC server's mTLS mode, whether it holds an identity): one answer, from
// one index built per push. Each case is a way a proxy and the endpoints at its address can differ.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MESH_CONFIG } from '../src/model/mesh-config.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { buildPushContext } from '../src/model/push-context.ts';
import type { Endpoint } from '../src/model/service.ts';
import { indexWorkloads } from '../src/model/workload-labels.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import { grpcServerMode } from '../src/xds/generate/grpc-server-listener.ts';
import { proxyHasIdentity, workloadMtls } from '../src/xds/generate/mtls.ts';
import { endpointSlice, pod, service, type K8sObject } from './support/mesh-dir.ts';

function endpoint(address: string, labels: Record<string, string>, workload?: string): Endpoint {
  return { serviceHostname: 'x.shop.svc.cluster.local', servicePortName: 'http', address, port: 8080, labels, ready: true, ...(workload ? { workload } : {}) };
}

const proxyAt = (namespace: string | undefined, ip: string, labels: Record<string, string> = {}) => ({ namespace, ipAddresses: [ip], labels });

describe('the workload behind a proxy', () => {
  const index = indexWorkloads([
    endpoint('10.244.0.1', { app: 'reviews' }, 'shop/reviews-v1'),
    endpoint('10.244.0.1', { app: 'imposter' }, 'other/reused-ip'),
    endpoint('10.244.0.9', { app: 'inline', 'security.istio.io/tlsMode': 'istio' }),
  ]);

  it("is known by its node metadata's LABELS first", () => {
    assert.deepEqual(index.labelsOf(proxyAt('shop', '10.244.0.1', { app: 'from-node' })), { app: 'from-node' });
  });

  it("is known by its pod's labels when the node has none, in the proxy's own namespace only", () => {
    assert.deepEqual(index.labelsOf(proxyAt('shop', '10.244.0.1')), { app: 'reviews' });
    assert.deepEqual(index.labelsOf(proxyAt('other', '10.244.0.1')), { app: 'imposter' });
  });

  it("is not a ServiceEntry's inline endpoint, labels or not: an address is not a workload", () => {
    assert.deepEqual(index.labelsOf(proxyAt('shop', '10.244.0.9')), {});
  });

  it('is never picked by address when the proxy names no namespace', () => {
    assert.deepEqual(index.labelsOf(proxyAt(undefined, '10.244.0.1')), {});
  });

  it('lists the workloads of a namespace, for selectors that overlap', () => {
    assert.deepEqual([...index.inNamespace('shop').keys()], ['shop/reviews-v1']);
    assert.equal(index.inNamespace('nowhere').size, 0);
  });
});

describe('every selector agrees on the workload', () => {
  const source = { origin: 'file', location: 'mesh.yaml' } as const;
  const objects: K8sObject[] = [
    // A gRPC server whose pod carries the tlsMode label, serving two ports from one Service.
    service('greeter', 'shop', [{ name: 'grpc', port: 50051, targetPort: 50051 }, { name: 'grpc-admin', port: 50052, targetPort: 50052 }], '10.96.0.7'),
    pod('greeter-0', 'shop', '10.244.0.7', { app: 'greeter', 'security.istio.io/tlsMode': 'istio' }),
    endpointSlice('greeter', 'shop', { name: 'grpc', port: 50051 }, [{ name: 'greeter-0', ip: '10.244.0.7' }]),
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'greeter', namespace: 'shop', creationTimestamp: '2024-01-01T00:00:00Z' },
      spec: { selector: { matchLabels: { app: 'greeter' } }, mtls: { mode: 'STRICT' } },
    },
  ];
  const converted = convertObjects(objects.map((object) => ({ object, source })));
  const push = buildPushContext(converted, DEFAULT_MESH_CONFIG);
  // A proxyless gRPC server, without LABELS in its node metadata.
  const proxy = parseProxy('sidecar~10.244.0.7~greeter-0.shop~shop.svc.cluster.local', { GENERATOR: 'grpc' });

  it("finds the pod by the proxy's address: identity, its PeerAuthentication, and each gRPC port's mode", () => {
    assert.deepEqual(push.workloadLabels(proxy), { app: 'greeter', 'security.istio.io/tlsMode': 'istio' });
    assert.equal(proxyHasIdentity(push, proxy), true);
    assert.equal(workloadMtls(push, proxy).mode, 'STRICT');
    // A port without an endpoint of its own is judged by the same pod, not by the endpoint on that port.
    assert.deepEqual(grpcServerMode(push, proxy, 50051), { requested: 'STRICT', served: 'STRICT' });
    assert.deepEqual(grpcServerMode(push, proxy, 50052), { requested: 'STRICT', served: 'STRICT' });
  });
});
