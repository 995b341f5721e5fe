// Gateway API Gateways of meshpilot's class: a platform team writes a GatewayClass, a Gateway and
// routes, and sees its gateway proxies programmed, routes attached where the listeners allow them,
// and every refusal as the status condition and reason the API defines.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { buildPushContext } from '../src/model/push-context.ts';
import { parseProxy } from '../src/model/proxy.ts';
import type { GatewayApiCondition, GatewayObjectStatus } from '../src/model/route-status.ts';
import { MESH_CONTROLLER_NAME } from '../src/model/route-status.ts';
import type { VirtualService } from '../src/model/rules.ts';
import { assembleObjects, convertObjects, parseObject, type ConvertedObjects } from '../src/sources/kube-objects.ts';
import { ISTIO_GATEWAY_CONTROLLER } from '../src/sources/gateway-api-listeners.ts';
import { MESH_SUPPORTED_FEATURES } from '../src/sources/gateway-api-ingress.ts';
import { UNRESOLVED_BACKEND_HOST } from '../src/sources/gateway-api-rules.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { FIXTURE_CREDENTIAL } from './support/fixture-credential.ts';
import { MeshDir, tlsSecret } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';

type Spec = Record<string, unknown>;
/** A key of another certificate than the fixture credential's. */
const BROKEN_KEY = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const GROUP = 'gateway.networking.k8s.io';
const X_GROUP = 'gateway.networking.x-k8s.io';
const ROUTER = 'router~10.244.9.9~edge-0.infra~infra.svc.cluster.local';

const gatewayClass = (name = 'meshpilot', controllerName = 'meshpilot.io/gateway-controller'): Spec => ({ apiVersion: `${GROUP}/v1`, kind: 'GatewayClass', metadata: { name, generation: 1 }, spec: { controllerName } });
const xmesh = (name: string, controllerName: string): Spec => ({ apiVersion: `${X_GROUP}/v1alpha1`, kind: 'XMesh', metadata: { name, generation: 3 }, spec: { controllerName } });
const gateway = (listeners: Spec[], extra: Spec = {}, className = 'meshpilot'): Spec => ({
  apiVersion: `${GROUP}/v1`,
  kind: 'Gateway',
  metadata: { name: 'edge', namespace: 'infra', generation: 2 },
  spec: { gatewayClassName: className, listeners, ...extra },
});
const http = (extra: Spec = {}): Spec => ({ name: 'http', port: 8080, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } }, ...extra });
const service = (name: string, namespace: string, spec: Spec = {}, status?: Spec): Spec => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { clusterIP: '10.96.0.9', ports: [{ name: 'http', port: 80 }], ...spec },
  ...(status ? { status } : {}),
});
const route = (name: string, namespace: string, spec: Spec, kind = 'HTTPRoute'): Spec => ({
  apiVersion: `${GROUP}/v1`,
  kind,
  metadata: { name, namespace, generation: 4 },
  spec: { parentRefs: [{ name: 'edge', namespace: 'infra' }], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }], ...spec },
});
const namespace = (name: string, labels: Record<string, string> = {}): Spec => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
/** The gateway's pod behind the Service Istio's automated deployment would create for it. */
const gatewayPod: Spec[] = [
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'edge-0', namespace: 'infra', labels: { 'gateway.networking.k8s.io/gateway-name': 'edge' } }, status: { phase: 'Running', podIP: '10.244.9.9' } },
  service('edge-meshpilot', 'infra', { ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'edge-meshpilot-1', namespace: 'infra', labels: { 'kubernetes.io/service-name': 'edge-meshpilot' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [{ addresses: ['10.244.9.9'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'edge-0', namespace: 'infra' } }],
  },
];

function convert(objects: Spec[], controllerNames?: string[]): ConvertedObjects {
  const parsed = objects.map((object, i) => parseObject({ object, source: { origin: 'file', location: 'gw.yaml' }, position: `document ${i + 1}` }));
  return assembleObjects(parsed, controllerNames ? { gatewayApi: { controllerNames } } : {});
}

function gatewayStatus(converted: ConvertedObjects): GatewayObjectStatus['status'] {
  const status = converted.gatewayStatuses?.find((s) => s.kind === 'Gateway');
  assert.ok(status, `a Gateway status (rejected: ${JSON.stringify(converted.rejected.map((r) => r.issues))})`);
  return status.status;
}

/** `type: status/reason` for each condition, the way `kubectl describe` reads. */
function brief(conditions: readonly GatewayApiCondition[] | undefined): Record<string, string> {
  return Object.fromEntries((conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));
}

function routeParent(converted: ConvertedObjects, name: string): Record<string, string> {
  const parent = converted.routeStatuses?.find((s) => s.name === name)?.parents[0];
  assert.ok(parent, `a parent status for ${name}`);
  return brief(parent.conditions);
}

const WEB = [service('web', 'shop'), service('web', 'infra')];

describe('a Gateway of meshpilot\'s class programs the router proxies labelled with its name, in its namespace', () => {
  it('listens on the listener port, routes by host and path, and leaves other namespaces\' routers alone', () => {
    const converted = convert([
      gatewayClass(),
      gateway([http({ hostname: '*.example.com' })]),
      ...gatewayPod,
      ...WEB,
      route('shop', 'shop', { hostnames: ['shop.example.com', 'shop.other.org'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/cart' } }], backendRefs: [{ name: 'web', port: 80 }] }] }),
    ]);
    assert.deepEqual(converted.rejected, []);
    const push = buildPushContext(converted);
    const rendered = renderForProxy(push, parseProxy(ROUTER));
    assert.deepEqual(rendered[LISTENER_TYPE].map((l) => l.name), ['0.0.0.0_8080']);
    const [routes] = rendered[ROUTE_TYPE];
    const hosts = (routes?.json['virtual_hosts'] as { domains: string[] }[]).map((v) => v.domains);
    // Only the hostname both the listener and the route name is served.
    assert.deepEqual(hosts, [['shop.example.com']]);
    const vs = converted.rules.find((r): r is VirtualService => r.meta.kind === 'VirtualService');
    assert.deepEqual(vs?.spec.gateways, ['infra/edge~istio-autogenerated-k8s-gateway~http']);
    // The same label in another namespace is another Gateway's pod.
    const elsewhere = renderForProxy(push, parseProxy('router~10.244.9.8~edge-0.shop~shop.svc.cluster.local'));
    assert.deepEqual(elsewhere[LISTENER_TYPE], []);
  });

  it('two Gateways of one name in two namespaces never share a proxy, so HTTP and TCP on one port do not conflict', () => {
    const other = { ...gateway([{ name: 'db', port: 8080, protocol: 'TCP' }]), metadata: { name: 'edge', namespace: 'shop' } };
    const otherPod = { ...gatewayPod[0], metadata: { name: 'edge-0', namespace: 'shop', labels: { 'gateway.networking.k8s.io/gateway-name': 'edge' } }, status: { phase: 'Running', podIP: '10.244.9.8' } };
    const push = buildPushContext(convert([gatewayClass(), gateway([http()]), other, ...gatewayPod, otherPod, service('edge-meshpilot', 'shop', { ports: [{ name: 'http', port: 80, targetPort: 8080 }] }), {
      ...(gatewayPod[2] ?? {}),
      metadata: { name: 'edge-meshpilot-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'edge-meshpilot' } },
      endpoints: [{ addresses: ['10.244.9.8'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'edge-0', namespace: 'shop' } }],
    }]));
    assert.deepEqual([...push.ruleStatus.values()].flatMap((s) => s.issues).filter((i) => i.code === 'MP_RULE_CONFLICT'), []);
    assert.deepEqual(renderForProxy(push, parseProxy(ROUTER))[LISTENER_TYPE].map((l) => l.name), ['0.0.0.0_8080']);
  });

  it('ignores Gateways of other classes, and serves istio.io/gateway-controller classes only when asked', () => {
    const objects = [gatewayClass('istio', ISTIO_GATEWAY_CONTROLLER), gateway([http()], {}, 'istio'), ...gatewayPod, ...WEB];
    const plain = convert(objects);
    assert.deepEqual(plain.gatewayStatuses, []);
    assert.ok(!plain.rules.some((r) => r.meta.kind === 'Gateway'));
    const asked = convert(objects, ['meshpilot.io/gateway-controller', ISTIO_GATEWAY_CONTROLLER]);
    assert.deepEqual(brief(asked.gatewayStatuses?.find((s) => s.kind === 'GatewayClass')?.status.conditions), { Accepted: 'True/Accepted' });
    assert.deepEqual(renderForProxy(buildPushContext(asked), parseProxy(ROUTER))[LISTENER_TYPE].map((l) => l.name), ['0.0.0.0_8080']);
  });

  it('terminates HTTPS with the certificateRef as the SDS secret kubernetes://<name>', () => {
    const converted = convert([gatewayClass(), gateway([{ name: 'https', port: 8443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'shop-cert' }] } }]), ...gatewayPod, tlsSecret('shop-cert', 'infra', FIXTURE_CREDENTIAL)]);
    const text = JSON.stringify(renderForProxy(buildPushContext(converted), parseProxy(ROUTER))[LISTENER_TYPE].map((l) => l.json));
    assert.ok(text.includes('"kubernetes://shop-cert"'), text);
    assert.ok(text.includes('https.8443.default.edge~istio-autogenerated-k8s-gateway~https.infra'), text);
  });
});

describe('listener status: each refusal with the reason the API defines', () => {
  const cases: { story: string; listeners: Spec[]; extra?: Spec[]; want: Record<string, string>; kinds?: string[] }[] = [
    { story: 'a plain HTTP listener is accepted and programmed', listeners: [http()], want: { Accepted: 'True/Accepted', Programmed: 'True/Programmed', ResolvedRefs: 'True/ResolvedRefs', Conflicted: 'False/NoConflicts' }, kinds: ['HTTPRoute', 'GRPCRoute'] },
    { story: 'UDP is not served', listeners: [{ name: 'dns', port: 53, protocol: 'UDP' }], want: { Accepted: 'False/UnsupportedProtocol', Programmed: 'False/Invalid', ResolvedRefs: 'True/ResolvedRefs', Conflicted: 'False/NoConflicts' }, kinds: [] },
    { story: 'a TLSRoute cannot attach to HTTP', listeners: [http({ allowedRoutes: { kinds: [{ kind: 'TLSRoute' }] } })], want: { Accepted: 'True/Accepted', Programmed: 'True/Programmed', ResolvedRefs: 'False/InvalidRouteKinds', Conflicted: 'False/NoConflicts' }, kinds: [] },
    {
      story: 'a certificate that is not a Secret',
      listeners: [{ name: 'https', port: 8443, protocol: 'HTTPS', tls: { certificateRefs: [{ kind: 'ConfigMap', name: 'cert' }] } }],
      want: { Accepted: 'True/Accepted', Programmed: 'False/Invalid', ResolvedRefs: 'False/InvalidCertificateRef', Conflicted: 'False/NoConflicts' },
    },
    {
      story: "another namespace's Secret without a ReferenceGrant",
      listeners: [{ name: 'https', port: 8443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'cert', namespace: 'certs' }] } }],
      want: { Accepted: 'True/Accepted', Programmed: 'False/Invalid', ResolvedRefs: 'False/RefNotPermitted', Conflicted: 'False/NoConflicts' },
    },
    {
      story: "another namespace's Secret its ReferenceGrant allows",
      listeners: [{ name: 'https', port: 8443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'cert', namespace: 'certs' }] } }],
      extra: [{ apiVersion: `${GROUP}/v1beta1`, kind: 'ReferenceGrant', metadata: { name: 'gateways', namespace: 'certs' }, spec: { from: [{ group: GROUP, kind: 'Gateway', namespace: 'infra' }], to: [{ group: '', kind: 'Secret' }] } }, tlsSecret('cert', 'certs', FIXTURE_CREDENTIAL)],
      want: { Accepted: 'True/Accepted', Programmed: 'True/Programmed', ResolvedRefs: 'True/ResolvedRefs', Conflicted: 'False/NoConflicts' },
    },
    {
      story: 'a TLS listener that would terminate for TLSRoutes (an extended feature not claimed) is refused',
      listeners: [{ name: 'tls', port: 8443, protocol: 'TLS', tls: { mode: 'Terminate', certificateRefs: [{ name: 'shop-cert' }] } }],
      extra: [tlsSecret('shop-cert', 'infra', FIXTURE_CREDENTIAL)],
      want: { Accepted: 'False/UnsupportedValue', Programmed: 'False/Invalid', ResolvedRefs: 'True/ResolvedRefs', Conflicted: 'False/NoConflicts' },
      kinds: [],
    },
    {
      story: 'a Secret that does not exist',
      listeners: [{ name: 'https', port: 8443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'missing-cert' }] } }],
      want: { Accepted: 'True/Accepted', Programmed: 'False/Invalid', ResolvedRefs: 'False/InvalidCertificateRef', Conflicted: 'False/NoConflicts' },
    },
    {
      story: 'a Secret whose key is not its certificate\'s',
      listeners: [{ name: 'https', port: 8443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'broken-cert' }] } }],
      extra: [tlsSecret('broken-cert', 'infra', { cert: FIXTURE_CREDENTIAL.cert, key: BROKEN_KEY })],
      want: { Accepted: 'True/Accepted', Programmed: 'False/Invalid', ResolvedRefs: 'False/InvalidCertificateRef', Conflicted: 'False/NoConflicts' },
    },
  ];
  for (const { story, listeners, extra = [], want, kinds } of cases) {
    it(story, () => {
      const status = gatewayStatus(convert([gatewayClass(), gateway(listeners), ...extra]));
      const [listener] = status.listeners ?? [];
      assert.deepEqual(brief(listener?.conditions), want);
      if (kinds) assert.deepEqual(listener?.supportedKinds.map((k) => k.kind), kinds);
    });
  }

  it('a listener with unusable route kinds is still served, so the Gateway stays Accepted (as Istio)', () => {
    const converted = convert([gatewayClass(), gateway([http({ allowedRoutes: { kinds: [{ kind: 'TLSRoute' }] } })])]);
    assert.equal(brief(gatewayStatus(converted).conditions)['Accepted'], 'True/Accepted');
    const internal = converted.rules.find((r) => r.meta.kind === 'Gateway');
    assert.deepEqual(internal?.meta.origin?.http, [{ kind: 'Gateway', namespace: 'infra', name: 'edge', rule: 0 }], 'the internal Gateway names the Gateway and listener it came from');
  });

  it('two listeners on one port: ProtocolConflict across protocols, HostnameConflict for one hostname twice; neither is served', () => {
    const protocols = gatewayStatus(convert([gatewayClass(), gateway([http(), { name: 'tls', port: 8080, protocol: 'TLS', tls: { mode: 'Passthrough' } }])]));
    assert.deepEqual(protocols.listeners?.map((l) => brief(l.conditions)['Conflicted']), ['True/ProtocolConflict', 'True/ProtocolConflict']);
    const hostnames = convert([gatewayClass(), gateway([http({ name: 'a', hostname: 'a.example.com' }), http({ name: 'b', hostname: 'a.example.com' }), http({ name: 'c', hostname: 'c.example.com' })])]);
    assert.deepEqual(gatewayStatus(hostnames).listeners?.map((l) => brief(l.conditions)['Conflicted']), ['True/HostnameConflict', 'True/HostnameConflict', 'False/NoConflicts']);
    assert.deepEqual(hostnames.rules.filter((r) => r.meta.kind === 'Gateway').map((r) => r.meta.name), ['edge~istio-autogenerated-k8s-gateway~c']);
    assert.deepEqual(brief(gatewayStatus(hostnames).conditions)['Accepted'], 'True/ListenersNotValid');
  });
});

describe('Gateway addresses: spec.addresses, else the <gateway>-<class> Service', () => {
  const cases: { story: string; objects: Spec[]; extra?: Spec; addresses: string[]; programmed: string }[] = [
    { story: 'the load balancer address of edge-meshpilot', objects: [service('edge-meshpilot', 'infra', {}, { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } })], addresses: ['203.0.113.7'], programmed: 'True/Programmed' },
    { story: 'its clusterIP while the load balancer has none', objects: [service('edge-meshpilot', 'infra', { clusterIP: '10.96.5.5' })], addresses: ['10.96.5.5'], programmed: 'True/Programmed' },
    { story: 'spec.addresses when given', objects: [], extra: { addresses: [{ type: 'IPAddress', value: '198.51.100.9' }] }, addresses: ['198.51.100.9'], programmed: 'True/Programmed' },
    { story: 'none without the Service: not programmed yet', objects: [service('edge-other', 'infra')], addresses: [], programmed: 'False/AddressNotAssigned' },
  ];
  for (const { story, objects, extra = {}, addresses, programmed } of cases) {
    it(story, () => {
      const status = gatewayStatus(convert([gatewayClass(), gateway([http()], extra), ...objects]));
      assert.deepEqual((status.addresses ?? []).map((a) => a.value), addresses);
      assert.equal(brief(status.conditions)['Programmed'], programmed);
    });
  }
});

describe('routes on a Gateway: attached where the listeners allow, refused with the spec\'s reason otherwise', () => {
  const listeners = [
    http({ name: 'same', port: 8080, allowedRoutes: { namespaces: { from: 'Same' } } }),
    http({ name: 'shared', port: 8081, hostname: '*.example.com', allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { shared: 'yes' } } } } }),
  ];
  const base = [gatewayClass(), gateway(listeners), namespace('shop', { shared: 'yes' }), namespace('lab'), ...WEB, service('web', 'lab'), service('pay', 'payments')];
  const cases: { story: string; route: Spec; want: Record<string, string>; attached?: number[] }[] = [
    { story: 'a route of a labelled namespace attaches to the shared listener', route: route('r', 'shop', { hostnames: ['shop.example.com'] }), want: { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }, attached: [0, 1] },
    { story: 'the Gateway\'s own namespace attaches to both', route: route('r', 'infra', { hostnames: ['shop.example.com'] }), want: { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }, attached: [1, 0] },
    { story: 'an unlabelled namespace is allowed nowhere', route: route('r', 'lab', {}), want: { Accepted: 'False/NotAllowedByListeners', ResolvedRefs: 'True/ResolvedRefs' }, attached: [0, 0] },
    { story: 'a sectionName no listener has', route: route('r', 'shop', { parentRefs: [{ name: 'edge', namespace: 'infra', sectionName: 'nope' }] }), want: { Accepted: 'False/NoMatchingParent', ResolvedRefs: 'True/ResolvedRefs' } },
    { story: 'a port no listener has', route: route('r', 'shop', { parentRefs: [{ name: 'edge', namespace: 'infra', port: 9999 }] }), want: { Accepted: 'False/NoMatchingParent', ResolvedRefs: 'True/ResolvedRefs' } },
    { story: 'hostnames the listener does not serve', route: route('r', 'shop', { hostnames: ['shop.other.org'] }), want: { Accepted: 'False/NoMatchingListenerHostname', ResolvedRefs: 'True/ResolvedRefs' } },
    { story: 'a backend in another namespace without a ReferenceGrant', route: route('r', 'shop', { rules: [{ backendRefs: [{ name: 'pay', namespace: 'payments', port: 80 }] }] }), want: { Accepted: 'True/Accepted', ResolvedRefs: 'False/RefNotPermitted' } },
    { story: 'a backend that does not exist', route: route('r', 'shop', { rules: [{ backendRefs: [{ name: 'gone', port: 80 }] }] }), want: { Accepted: 'True/Accepted', ResolvedRefs: 'False/BackendNotFound' } },
    { story: 'a backend that is not a Service', route: route('r', 'shop', { rules: [{ backendRefs: [{ group: 'example.com', kind: 'Bucket', name: 'b' }] }] }), want: { Accepted: 'True/Accepted', ResolvedRefs: 'False/InvalidKind' } },
    { story: 'a GRPCRoute attaches to an HTTP listener', route: route('g', 'shop', { hostnames: ['grpc.example.com'], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] }, 'GRPCRoute'), want: { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }, attached: [0, 1] },
  ];
  for (const { story, route: written, want, attached } of cases) {
    it(story, () => {
      const converted = convert([...base, written]);
      const name = (written['metadata'] as { name: string }).name;
      assert.deepEqual(routeParent(converted, name), want);
      const [parent] = converted.routeStatuses?.find((s) => s.name === name)?.parents ?? [];
      assert.equal(parent?.controllerName, 'meshpilot.io/gateway-controller');
      assert.equal(parent.conditions[0]?.observedGeneration, 4);
      if (attached) assert.deepEqual(gatewayStatus(converted).listeners?.map((l) => l.attachedRoutes), attached);
    });
  }

  it('one route with a Gateway and a Service parent: the Gateway needs a ReferenceGrant for another namespace\'s backend, the mesh does not (as Istio)', () => {
    const both = route('r', 'shop', { parentRefs: [{ name: 'edge', namespace: 'infra' }, { group: '', kind: 'Service', name: 'web' }], rules: [{ backendRefs: [{ name: 'pay', namespace: 'payments', port: 80 }] }] });
    const converted = convert([...base, both]);
    const parents = (converted.routeStatuses ?? []).filter((s) => s.name === 'r').flatMap((s) => s.parents);
    const resolved = (kind: string | undefined): string | undefined => {
      const condition = parents.find((p) => p.parentRef.kind === kind)?.conditions.find((c) => c.type === 'ResolvedRefs');
      return condition && `${condition.status}/${condition.reason}`;
    };
    assert.deepEqual([resolved('Gateway'), resolved('Service')], ['False/RefNotPermitted', 'True/ResolvedRefs']);
    const destinations = converted.rules.filter((r): r is VirtualService => r.meta.kind === 'VirtualService').map((r) => [r.spec.gateways?.[0], r.spec.http?.[0]?.route?.[0]?.destination.host]);
    assert.deepEqual(destinations.find(([gateway]) => gateway === 'mesh'), ['mesh', 'pay.payments.svc.cluster.local']);
    assert.ok(destinations.some(([gateway, host]) => gateway !== 'mesh' && host === UNRESOLVED_BACKEND_HOST), JSON.stringify(destinations));
  });

  it('a route refused by every listener serves nothing: no VirtualService is made for it', () => {
    const converted = convert([...base, route('r', 'lab', { hostnames: ['lab.example.com'] })]);
    assert.deepEqual(converted.rules.filter((r) => r.meta.kind === 'VirtualService'), []);
    assert.ok(converted.warnings.some((w) => w.object === 'HTTPRoute lab/r' && w.issues.some((i) => i.message.includes('NotAllowedByListeners'))));
  });

  it('routes of two namespaces for one host merge into one VirtualService in the Gateway API order', () => {
    const exact = route('exact', 'store', { hostnames: ['shop.example.com'], rules: [{ matches: [{ path: { type: 'Exact', value: '/cart' } }], backendRefs: [{ name: 'web', port: 80 }] }] });
    const longer = route('longer', 'shop', { hostnames: ['shop.example.com'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/cart/items' } }], backendRefs: [{ name: 'web', port: 80 }] }] });
    const converted = convert([...base, namespace('store', { shared: 'yes' }), service('web', 'store'), longer, exact]);
    const shared = converted.rules.filter((r): r is VirtualService => r.meta.kind === 'VirtualService').find((r) => r.spec.gateways?.[0] === 'infra/edge~istio-autogenerated-k8s-gateway~shared');
    assert.deepEqual(shared?.spec.http?.map((h) => h.match?.map((m) => m.uri)), [[{ exact: '/cart' }], [{ exact: '/cart/items' }, { prefix: '/cart/items/' }]]);
  });
});

describe('TLSRoutes and TCPRoutes on TLS-passthrough and TCP listeners', () => {
  const l4 = (kind: string, name: string, spec: Spec): Spec => ({ apiVersion: `${GROUP}/v1alpha2`, kind, metadata: { name, namespace: 'infra' }, spec: { parentRefs: [{ name: 'edge' }], ...spec } });
  const listeners = [
    { name: 'vault', port: 9443, protocol: 'TLS', hostname: '*.example.com', tls: { mode: 'Passthrough' } },
    { name: 'db', port: 5432, protocol: 'TCP' },
  ];

  it('passes TLS through by SNI to the TLSRoute\'s backend and proxies TCP to the TCPRoute\'s, each on its own listener', () => {
    const converted = convert([
      gatewayClass(),
      gateway(listeners),
      ...gatewayPod,
      service('vault', 'infra', { ports: [{ name: 'tls', port: 443 }] }),
      service('db', 'infra', { ports: [{ name: 'tcp', port: 5432 }] }),
      l4('TLSRoute', 'vault', { hostnames: ['vault.example.com', 'vault.other.org'], rules: [{ backendRefs: [{ name: 'vault', port: 443 }] }] }),
      l4('TCPRoute', 'db', { rules: [{ backendRefs: [{ name: 'db', port: 5432 }] }] }),
    ]);
    assert.deepEqual(converted.rejected, []);
    assert.deepEqual(gatewayStatus(converted).listeners?.map((l) => [l.name, l.attachedRoutes, l.supportedKinds.map((k) => k.kind).join()]), [['vault', 1, 'TLSRoute'], ['db', 1, 'TCPRoute']]);
    assert.deepEqual(routeParent(converted, 'vault'), { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' });
    const rendered = renderForProxy(buildPushContext(converted), parseProxy(ROUTER))[LISTENER_TYPE];
    const chains = (name: string): unknown => rendered.find((l) => l.name === name)?.json['filter_chains'];
    const text = JSON.stringify(chains('0.0.0.0_9443'));
    assert.ok(text.includes('"server_names":["vault.example.com"]') && text.includes('outbound|443||vault.infra.svc.cluster.local'), text);
    assert.ok(JSON.stringify(chains('0.0.0.0_5432')).includes('outbound|5432||db.infra.svc.cluster.local'));
  });

  it('an HTTPRoute is not allowed on a TCP listener, nor a TCPRoute on an HTTP one', () => {
    const converted = convert([gatewayClass(), gateway([listeners[1] ?? {}, http()]), ...WEB, service('db', 'infra'), route('web', 'infra', { parentRefs: [{ name: 'edge', sectionName: 'db' }] }), l4('TCPRoute', 'db', { parentRefs: [{ name: 'edge', sectionName: 'http' }], rules: [{ backendRefs: [{ name: 'db', port: 80 }] }] })]);
    assert.equal(routeParent(converted, 'web')['Accepted'], 'False/NotAllowedByListeners');
    assert.equal(routeParent(converted, 'db')['Accepted'], 'False/NotAllowedByListeners');
  });

  it('a TCPRoute without rules is refused as the API server refuses it', () => {
    const converted = convert([l4('TCPRoute', 'empty', {})]);
    assert.deepEqual(converted.rejected.flatMap((r) => r.issues.map((i) => i.path)), ['spec.rules']);
  });
});

describe('without Kubernetes the same status shows in the converted snapshot', () => {
  it('convertObjects, as render and analyze read a directory, carries GatewayClass and Gateway status', () => {
    const converted = convertObjects([gatewayClass(), gateway([http()])].map((object) => ({ object, source: { origin: 'file' as const, location: 'gw.yaml' } })));
    assert.deepEqual(converted.gatewayStatuses?.map((s) => `${s.kind} ${s.name}`), ['GatewayClass meshpilot', 'Gateway edge']);
    assert.ok(converted.warnings.some((w) => w.object === 'Gateway infra/edge' && w.issues.some((i) => i.message.includes('AddressNotAssigned'))));
  });

  it('shows meshpilot\'s XMesh Accepted with the mesh features, sorted, in /debug/configz; another controller\'s XMesh gets nothing', async () => {
    const dir = await MeshDir.create();
    await dir.write('mesh.yaml', [xmesh('meshpilot', MESH_CONTROLLER_NAME), xmesh('theirs', 'example.com/mesh'), gatewayClass()]);
    const meshpilot = await startMeshpilot(dir.path);
    try {
      const configz = (await (await meshpilot.admin('/debug/configz')).json()) as { gatewayStatuses: GatewayObjectStatus[] };
      assert.deepEqual(configz.gatewayStatuses.map((s) => `${s.kind} ${s.name}`), ['GatewayClass meshpilot', 'XMesh meshpilot']);
      const mesh = configz.gatewayStatuses.find((s) => s.kind === 'XMesh')?.status;
      assert.deepEqual(mesh?.conditions.map((c) => [c.type, c.status, c.reason, c.observedGeneration]), [['Accepted', 'True', 'Accepted', 3]]);
      const names = mesh.supportedFeatures?.map((f) => f.name) ?? [];
      assert.deepEqual(names, [...MESH_SUPPORTED_FEATURES].sort(), 'every claimed feature, sorted by name as the API asks');
      assert.ok(names.includes('Mesh') && names.includes('HTTPRoute') && !names.includes('Gateway'), 'mesh features, not the GatewayClass\'s');
      // The suite drops Gateway features an XMesh lists, and mesh features a GatewayClass lists.
      const gatewayClassNames = configz.gatewayStatuses.find((s) => s.kind === 'GatewayClass')?.status.supportedFeatures?.map((f) => f.name) ?? [];
      assert.deepEqual(names.filter((n) => n.startsWith('Gateway')), []);
      assert.deepEqual(gatewayClassNames.filter((n) => n.startsWith('Mesh')), []);
      assert.deepEqual(gatewayClassNames, [...gatewayClassNames].sort());
    } finally {
      await meshpilot.close();
      await dir.remove();
    }
  });

  it('an XMesh without spec.controllerName is refused as the API server refuses it', () => {
    const converted = convert([{ apiVersion: `${X_GROUP}/v1alpha1`, kind: 'XMesh', metadata: { name: 'meshpilot' }, spec: {} }]);
    assert.deepEqual(converted.rejected.flatMap((r) => r.issues.map((i) => i.path)), ['spec.controllerName']);
    assert.deepEqual(converted.gatewayStatuses, []);
  });
});
