// A platform team applies meshpilot's GatewayClass, a Gateway and routes to a (fake) cluster; the
// leader writes the class's Accepted, the Gateway's conditions, address (from the <gateway>-<class>
// Service's load balancer) and per-listener status with attachedRoutes, and each route's parent
// status, NotAllowedByListeners for a namespace the listener does not admit, and the XMesh naming
// meshpilot's mesh controller its Accepted and supportedFeatures; then only what changes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startMeshpilotOnKube, type KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { FakeKubeApi, GATEWAY_API_GATEWAY_CRDS, GATEWAY_API_MESH_CRD, GATEWAY_API_ROUTE_CRDS, type KubeObject } from './support/fake-kube-api.ts';
import { MESH_CONTROLLER_NAME } from '../src/model/route-status.ts';
import { MESH_SUPPORTED_FEATURES } from '../src/sources/gateway-api-ingress.ts';
import { eventually } from './support/mesh-dir.ts';

const GROUP = 'gateway.networking.k8s.io';
const X_GROUP = 'gateway.networking.x-k8s.io';
const STATUS = '/status';

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime: string;
}
interface Listener {
  readonly name: string;
  readonly attachedRoutes: number;
  readonly supportedKinds: { kind: string }[];
  readonly conditions: Condition[];
}
interface GatewayStatus {
  readonly conditions?: Condition[];
  readonly addresses?: { type: string; value: string }[];
  readonly listeners?: Listener[];
  readonly supportedFeatures?: { name: string }[];
}

const service = (name: string, namespace: string, status?: Record<string, unknown>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { clusterIP: '10.96.40.1', ports: [{ name: 'http', port: 80 }] },
  ...(status ? { status } : {}),
});
const route = (name: string, namespace: string, backend = 'web'): KubeObject => ({
  apiVersion: `${GROUP}/v1`,
  kind: 'HTTPRoute',
  metadata: { name, namespace },
  spec: { parentRefs: [{ name: 'edge', namespace: 'infra' }], hostnames: ['shop.example.com'], rules: [{ backendRefs: [{ name: backend, port: 80 }] }] },
});

describe('Gateway, GatewayClass, XMesh and Gateway-parented route status, written by the leader', () => {
  let api: FakeKubeApi;
  let meshpilot: KubeMeshpilot;
  const statusOf = (kind: string, namespace: string | undefined, name: string): Record<string, unknown> | undefined => api.get(kind, namespace, name)?.['status'] as Record<string, unknown> | undefined;
  const brief = (conditions: readonly Condition[] | undefined): string[] => (conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}`);
  const routeConditions = (namespace: string, name: string): string[] => brief((statusOf('HTTPRoute', namespace, name)?.['parents'] as { conditions: Condition[] }[] | undefined)?.[0]?.conditions);
  const writesTo = (path: string): number => api.writesBy('meshpilot-a', STATUS).filter((r) => r.path.includes(path)).length;

  before(async () => {
    api = await FakeKubeApi.start();
    for (const crd of [...GATEWAY_API_ROUTE_CRDS, ...GATEWAY_API_GATEWAY_CRDS, GATEWAY_API_MESH_CRD]) api.installCrd(crd);
    api.applyAll([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'infra' } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { shared: 'yes' } } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sandbox' } },
      { apiVersion: `${GROUP}/v1`, kind: 'GatewayClass', metadata: { name: 'meshpilot' }, spec: { controllerName: 'meshpilot.io/gateway-controller' } },
      { apiVersion: `${GROUP}/v1`, kind: 'GatewayClass', metadata: { name: 'other' }, spec: { controllerName: 'example.com/gateway' } },
      { apiVersion: `${X_GROUP}/v1alpha1`, kind: 'XMesh', metadata: { name: 'meshpilot' }, spec: { controllerName: MESH_CONTROLLER_NAME } },
      { apiVersion: `${X_GROUP}/v1alpha1`, kind: 'XMesh', metadata: { name: 'other' }, spec: { controllerName: 'example.com/mesh' } },
      {
        apiVersion: `${GROUP}/v1`,
        kind: 'Gateway',
        metadata: { name: 'edge', namespace: 'infra' },
        spec: {
          gatewayClassName: 'meshpilot',
          listeners: [
            { name: 'http', port: 8080, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { shared: 'yes' } } } } },
            { name: 'dns', port: 53, protocol: 'UDP' },
          ],
        },
      },
      { apiVersion: `${GROUP}/v1`, kind: 'Gateway', metadata: { name: 'theirs', namespace: 'infra' }, spec: { gatewayClassName: 'other', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } },
      service('edge-meshpilot', 'infra', { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } }),
      service('web', 'shop'),
      service('lab', 'sandbox'),
      route('storefront', 'shop'),
      route('experiments', 'sandbox', 'lab'),
      route('pending', 'shop', 'checkout'),
    ]);
    meshpilot = await startMeshpilotOnKube(api, { user: 'meshpilot-a', serve: { podName: 'meshpilot-a', systemNamespace: 'meshpilot-system', leaderElection: { leaseDurationMs: 5000, renewDeadlineMs: 3000, retryPeriodMs: 100 } } });
  });

  after(async () => {
    await meshpilot.close();
    await api.close();
  });

  it('writes the class Accepted, the Gateway Accepted/Programmed with its address, each listener, and each route parent', async () => {
    const gateway = await eventually(() => {
      const status = statusOf('Gateway', 'infra', 'edge') as GatewayStatus | undefined;
      return status?.listeners && routeConditions('sandbox', 'experiments').length > 0 && routeConditions('shop', 'pending').length > 0 && statusOf('GatewayClass', undefined, 'meshpilot') ? status : undefined;
    }, 15_000, 'Gateway, class and route status written');
    assert.deepEqual(brief((statusOf('GatewayClass', undefined, 'meshpilot') as GatewayStatus).conditions), ['Accepted=True/Accepted']);
    assert.deepEqual(brief(gateway.conditions), ['Accepted=True/ListenersNotValid', 'Programmed=True/Programmed']);
    assert.deepEqual(gateway.addresses, [{ type: 'IPAddress', value: '203.0.113.7' }]);
    assert.deepEqual(
      gateway.listeners?.map((l) => [l.name, l.attachedRoutes, l.supportedKinds.map((k) => k.kind).join(','), brief(l.conditions).join(' ')]),
      [
        ['http', 2, 'HTTPRoute,GRPCRoute', 'Accepted=True/Accepted Programmed=True/Programmed ResolvedRefs=True/ResolvedRefs Conflicted=False/NoConflicts'],
        ['dns', 0, '', 'Accepted=False/UnsupportedProtocol Programmed=False/Invalid ResolvedRefs=True/ResolvedRefs Conflicted=False/NoConflicts'],
      ],
    );
    assert.deepEqual(routeConditions('shop', 'storefront'), ['Accepted=True/Accepted', 'ResolvedRefs=True/ResolvedRefs']);
    assert.deepEqual(routeConditions('sandbox', 'experiments'), ['Accepted=False/NotAllowedByListeners', 'ResolvedRefs=True/ResolvedRefs']);
    assert.deepEqual(routeConditions('shop', 'pending'), ['Accepted=True/Accepted', 'ResolvedRefs=False/BackendNotFound']);
    // Another controller's class and Gateway are left to it.
    assert.equal(statusOf('GatewayClass', undefined, 'other'), undefined);
    assert.equal(statusOf('Gateway', 'infra', 'theirs'), undefined);
  });

  it("writes meshpilot's XMesh Accepted with the mesh's supportedFeatures, sorted by name; another controller's XMesh is left alone", async () => {
    const mesh = await eventually(() => statusOf('XMesh', undefined, 'meshpilot') as GatewayStatus | undefined, 15_000, 'XMesh status written');
    assert.deepEqual(brief(mesh.conditions), ['Accepted=True/Accepted']);
    assert.equal(mesh.conditions?.[0]?.observedGeneration, (api.get('XMesh', undefined, 'meshpilot')?.['metadata'] as { generation: number }).generation);
    assert.deepEqual(mesh.supportedFeatures?.map((f) => f.name), [...MESH_SUPPORTED_FEATURES].sort());
    assert.equal(statusOf('XMesh', undefined, 'other'), undefined);
  });

  it('writes again only what changes: a new backend moves one route, the Gateway, class and mesh are not rewritten', async () => {
    const before = { gateway: writesTo('/gateways/edge/'), gatewayClass: writesTo('/gatewayclasses/meshpilot/'), mesh: writesTo('/xmeshes/meshpilot/'), storefront: writesTo('/httproutes/storefront/') };
    const acceptedAt = (statusOf('Gateway', 'infra', 'edge') as GatewayStatus).conditions?.[0]?.lastTransitionTime;
    api.apply(service('checkout', 'shop'));
    await eventually(() => (routeConditions('shop', 'pending').includes('ResolvedRefs=True/ResolvedRefs') ? true : undefined), 15_000, 'the pending route resolved');
    assert.deepEqual({ gateway: writesTo('/gateways/edge/'), gatewayClass: writesTo('/gatewayclasses/meshpilot/'), mesh: writesTo('/xmeshes/meshpilot/'), storefront: writesTo('/httproutes/storefront/') }, before);
    assert.equal((statusOf('Gateway', 'infra', 'edge') as GatewayStatus).conditions?.[0]?.lastTransitionTime, acceptedAt);
  });

  it('the load balancer losing its address leaves the clusterIP; a Gateway without any is not programmed', async () => {
    api.apply(service('edge-meshpilot', 'infra', { loadBalancer: {} }));
    const status = await eventually(() => {
      const current = statusOf('Gateway', 'infra', 'edge') as GatewayStatus | undefined;
      return current?.addresses?.[0]?.value === '10.96.40.1' ? current : undefined;
    }, 15_000, 'the clusterIP as the address');
    assert.deepEqual(brief(status.conditions), ['Accepted=True/ListenersNotValid', 'Programmed=True/Programmed']);
    api.delete('Service', 'infra', 'edge-meshpilot');
    const unassigned = await eventually(() => {
      const current = statusOf('Gateway', 'infra', 'edge') as GatewayStatus | undefined;
      return brief(current?.conditions).includes('Programmed=False/AddressNotAssigned') ? current : undefined;
    }, 15_000, 'AddressNotAssigned');
    assert.deepEqual(brief(unassigned.conditions), ['Accepted=True/ListenersNotValid', 'Programmed=False/AddressNotAssigned']);
  });
});
