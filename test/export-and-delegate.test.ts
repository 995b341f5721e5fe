// exportTo and delegate VirtualServices as Istio reads them: who sees a Service, ServiceEntry,
// VirtualService or DestinationRule, which DestinationRule a proxy applies, and how a root
// VirtualService takes its delegate's routes, shown in what each proxy is rendered.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeHttpRoute } from '../src/model/delegation.ts';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../src/model/mesh-config.ts';
import { parseProxy, type Proxy } from '../src/model/proxy.ts';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import type { HttpRoute, ValidationIssue } from '../src/model/rules.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import { readMeshConfig } from '../src/sources/mesh-config-file.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { grpcDegradations } from '../src/xds/generate/grpc-degradation.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { generate } from '../src/xds/generate/index.ts';
import { computeChangeScope } from '../src/push/change-scope.ts';
import { diffSnapshots } from '../src/model/config-changes.ts';
import { scopeForProxy } from '../src/push/proxy-scope.ts';
import { endpointSlice, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { loadFixture, violations } from './support/rendered.ts';

const REVIEWS = 'reviews.shop.svc.cluster.local';
const port = [{ name: 'http', port: 9080, targetPort: 9080 }];

const shop: K8sObject[] = [
  service('reviews', 'shop', port, '10.96.40.1'),
  ...['v1', 'v2'].map((v, i) => pod(`reviews-${v}-0`, 'shop', `10.244.6.${i + 1}`, { app: 'reviews', version: v })),
  endpointSlice('reviews', 'shop', { name: 'http', port: 9080 }, [{ name: 'reviews-v1-0', ip: '10.244.6.1' }, { name: 'reviews-v2-0', ip: '10.244.6.2' }]),
  rule('DestinationRule', 'reviews', 'shop', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
];

function push(objects: readonly K8sObject[], mesh: Partial<MeshConfig> = {}): PushContext {
  const converted = convertObjects(objects.map((object) => ({ object, source: { origin: 'file', location: 'mesh.yaml' } })));
  assert.deepEqual(converted.rejected.map((r) => r.issues), []);
  return buildPushContext(converted, { ...DEFAULT_MESH_CONFIG, ...mesh });
}

const proxyIn = (namespace: string, generator?: 'grpc'): Proxy =>
  parseProxy(`sidecar~10.244.9.9~client-0.${namespace}~${namespace}.svc.cluster.local`, generator ? { GENERATOR: generator } : {});

/** The clusters the routes of a sidecar in `namespace` send `host`'s traffic to, in order. */
function routedTo(mesh: PushContext, namespace: string, host = REVIEWS, routeConfig = '9080'): string[] {
  const config = renderForProxy(mesh, proxyIn(namespace))[ROUTE_TYPE].find((r) => r.name === routeConfig);
  const vhost = (config?.json['virtual_hosts'] as JsonObject[] | undefined)?.find((v) => v['name'] === `${host}:${routeConfig}`);
  return ((vhost?.['routes'] as JsonObject[] | undefined) ?? []).map((r) => ((r['route'] as JsonObject | undefined)?.['cluster'] as string | undefined) ?? '');
}

function clustersOf(mesh: PushContext, namespace: string): string[] {
  return renderForProxy(mesh, proxyIn(namespace))[CLUSTER_TYPE].map((c) => c.name);
}

function statusOf(mesh: PushContext, kind: string, namespace: string, name: string): { issues: readonly ValidationIssue[]; applied: boolean } {
  const status = mesh.ruleStatus.get(`${kind}/${namespace}/${name}`);
  assert.ok(status, `${kind} ${namespace}/${name} is not known`);
  return status;
}

const V2 = `outbound|9080|v2|${REVIEWS}`;
const ALL = `outbound|9080||${REVIEWS}`;
const canary = (exportTo?: string[]): K8sObject =>
  rule('VirtualService', 'reviews-canary', 'a', { hosts: [REVIEWS], ...(exportTo ? { exportTo } : {}), http: [{ route: [{ destination: { host: REVIEWS, subset: 'v2' } }] }] });

describe('a VirtualService reaches the namespaces its exportTo names', () => {
  const ROWS: readonly { what: string; exportTo?: string[]; mesh?: Partial<MeshConfig>; v2: readonly string[] }[] = [
    { what: 'no exportTo: every namespace', v2: ['a', 'b', 'shop'] },
    { what: '"*": every namespace', exportTo: ['*'], v2: ['a', 'b', 'shop'] },
    { what: '".": its own namespace only', exportTo: ['.'], v2: ['a'] },
    { what: 'a namespace name: that namespace only', exportTo: ['b'], v2: ['b'] },
    { what: '"." and a name: both', exportTo: ['.', 'b'], v2: ['a', 'b'] },
    { what: 'no exportTo under defaultVirtualServiceExportTo ["."]', mesh: { defaultExportTo: { virtualService: ['.'] } }, v2: ['a'] },
  ];
  for (const row of ROWS) {
    it(`${row.what}: a proxy there gets the route, the others the default route`, () => {
      const mesh = push([...shop, canary(row.exportTo)], row.mesh);
      for (const namespace of ['a', 'b', 'shop']) {
        assert.deepEqual(routedTo(mesh, namespace), [row.v2.includes(namespace) ? V2 : ALL], `proxy in ${namespace}`);
      }
      assert.equal(statusOf(mesh, 'VirtualService', 'a', 'reviews-canary').applied, true);
    });
  }

  it('a namespace\'s own rule overrides a public one for its proxies, with no conflict reported', () => {
    const publicRule = rule('VirtualService', 'reviews', 'shop', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] });
    const mesh = push([...shop, publicRule, canary(['.'])]);
    assert.deepEqual(routedTo(mesh, 'a'), [V2]);
    assert.deepEqual(routedTo(mesh, 'b'), [`outbound|9080|v1|${REVIEWS}`]);
    assert.deepEqual(statusOf(mesh, 'VirtualService', 'shop', 'reviews').issues, []);
    assert.deepEqual(statusOf(mesh, 'VirtualService', 'a', 'reviews-canary').issues, []);
  });

  it('two private rules for one host in two namespaces do not conflict; two public ones do', () => {
    const inB = rule('VirtualService', 'reviews-canary', 'b', { hosts: [REVIEWS], exportTo: ['.'], http: [{ route: [{ destination: { host: REVIEWS, subset: 'v1' } }] }] });
    const privateOnes = push([...shop, canary(['.']), inB]);
    assert.deepEqual([routedTo(privateOnes, 'a'), routedTo(privateOnes, 'b')], [[V2], [`outbound|9080|v1|${REVIEWS}`]]);
    assert.deepEqual(statusOf(privateOnes, 'VirtualService', 'b', 'reviews-canary').issues, []);
    const publicOnes = push([...shop, canary(), { ...inB, spec: { ...(inB['spec'] as object), exportTo: ['*'] } }]);
    assert.ok(statusOf(publicOnes, 'VirtualService', 'b', 'reviews-canary').issues.some((i) => i.code === 'MP_RULE_CONFLICT'));
  });

  it('proxyless gRPC sees the same: a client in b is not given a rule exported to a', () => {
    const mesh = push([...shop, canary(['.'])]);
    const target = `${REVIEWS}:9080`;
    const routes = (namespace: string): string[] => {
      const config = renderForProxy(mesh, proxyIn(namespace, 'grpc'), [target])[ROUTE_TYPE].find((r) => r.name === target);
      return ((config?.json['virtual_hosts'] as JsonObject[])[0]?.['routes'] as JsonObject[]).map((r) => (r['route'] as JsonObject)['cluster'] as string);
    };
    assert.deepEqual([routes('a'), routes('b')], [[V2], [ALL]]);
  });
});

describe('a Service or ServiceEntry is visible where its exportTo says', () => {
  const ledger = (annotation?: string): K8sObject => {
    const object = service('ledger', 'shop', port, '10.96.40.2');
    const metadata = object['metadata'] as Record<string, unknown>;
    return annotation === undefined ? object : { ...object, metadata: { ...metadata, annotations: { 'networking.istio.io/exportTo': annotation } } };
  };
  const entry = (exportTo: string[]): K8sObject =>
    rule('ServiceEntry', 'ledger', 'shop', { hosts: ['ledger.example.com'], exportTo, resolution: 'DNS', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] });
  const ROWS: readonly { what: string; object: K8sObject; host: string; mesh?: Partial<MeshConfig>; seenBy: readonly string[] }[] = [
    { what: 'a Service without the annotation', object: ledger(), host: 'ledger.shop.svc.cluster.local', seenBy: ['a', 'shop'] },
    { what: 'a Service annotated "."', object: ledger('.'), host: 'ledger.shop.svc.cluster.local', seenBy: ['shop'] },
    { what: 'a Service annotated "a" (not even its own namespace)', object: ledger('a'), host: 'ledger.shop.svc.cluster.local', seenBy: ['a'] },
    { what: 'a Service annotated ". , a"', object: ledger('. , a'), host: 'ledger.shop.svc.cluster.local', seenBy: ['a', 'shop'] },
    { what: 'a Service annotated "~"', object: ledger('~'), host: 'ledger.shop.svc.cluster.local', seenBy: [] },
    { what: 'a Service annotated "~,a" (Istio still reads the name)', object: ledger('~,a'), host: 'ledger.shop.svc.cluster.local', seenBy: ['a'] },
    { what: 'a Service under defaultServiceExportTo ["."]', object: ledger(), host: 'ledger.shop.svc.cluster.local', mesh: { defaultExportTo: { service: ['.'] } }, seenBy: ['shop'] },
    { what: 'a ServiceEntry exported to "."', object: entry(['.']), host: 'ledger.example.com', seenBy: ['shop'] },
    { what: 'a ServiceEntry exported to "*"', object: entry(['*']), host: 'ledger.example.com', seenBy: ['a', 'shop'] },
    { what: 'a ServiceEntry exported to "~"', object: entry(['~']), host: 'ledger.example.com', seenBy: [] },
  ];
  for (const row of ROWS) {
    it(`${row.what}: clusters for ${row.seenBy.length > 0 ? row.seenBy.join(' and ') : 'no namespace'}`, () => {
      const mesh = push([...shop, row.object], row.mesh);
      for (const namespace of ['a', 'shop']) {
        const has = clustersOf(mesh, namespace).some((name) => name.endsWith(`|${row.host}`));
        assert.equal(has, row.seenBy.includes(namespace), `proxy in ${namespace}`);
      }
    });
  }

  it('a Sidecar importing */* does not bring back a service hidden from its namespace', () => {
    const everything = rule('Sidecar', 'default', 'a', { egress: [{ hosts: ['*/*'] }] });
    const mesh = push([...shop, ledger('.'), everything]);
    assert.ok(!clustersOf(mesh, 'a').some((name) => name.includes('ledger')));
    assert.ok(clustersOf(mesh, 'a').includes(ALL));
  });

  it('a change to a service hidden from a namespace does not wake that namespace\'s proxies', () => {
    const convert = (objects: K8sObject[]) => convertObjects(objects.map((object) => ({ object, source: { origin: 'file', location: 'mesh.yaml' } })));
    const ledgerPods = (ips: string[]): K8sObject[] => [
      ...ips.map((ip, i) => pod(`ledger-${i}`, 'shop', ip, { app: 'ledger' })),
      endpointSlice('ledger', 'shop', { name: 'http', port: 9080 }, ips.map((ip, i) => ({ name: `ledger-${i}`, ip }))),
    ];
    const [beforeSnapshot, afterSnapshot] = [convert([...shop, ledger('.'), ...ledgerPods(['10.244.6.9'])]), convert([...shop, ledger('.'), ...ledgerPods(['10.244.6.9', '10.244.6.10'])])];
    const [before, after] = [buildPushContext(beforeSnapshot), buildPushContext(afterSnapshot)];
    const { change } = computeChangeScope(before, after, diffSnapshots(beforeSnapshot, afterSnapshot));
    assert.ok(change.scope.size > 0, 'the change is a push');
    assert.deepEqual([...scopeForProxy(change, after, proxyIn('a'))], []);
    assert.ok(scopeForProxy(change, after, proxyIn('shop')).size > 0);
  });

  it('a hidden service gives proxyless gRPC no listener, and its own namespace still calls it', () => {
    const mesh = push([...shop, ledger('.')]);
    const target = 'ledger.shop.svc.cluster.local:9080';
    assert.deepEqual(renderForProxy(mesh, proxyIn('a', 'grpc'), [target])[LISTENER_TYPE].map((l) => l.name), []);
    assert.deepEqual(renderForProxy(mesh, proxyIn('shop', 'grpc'), [target])[LISTENER_TYPE].map((l) => l.name), [target]);
  });
});

describe('the DestinationRule a proxy applies: its namespace, then what the service\'s and the root namespace export to it', () => {
  const dr = (name: string, namespace: string, exportTo?: string[]): K8sObject =>
    rule('DestinationRule', name, namespace, { host: REVIEWS, ...(exportTo ? { exportTo } : {}), trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } });
  const serviceRule = (exportTo?: string[]): K8sObject =>
    rule('DestinationRule', 'reviews', 'shop', { host: 'reviews', ...(exportTo ? { exportTo } : {}), subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] });
  const withoutServiceRule = shop.filter((o) => o['kind'] !== 'DestinationRule');
  /** Which rule configures reviews' cluster for a proxy in `namespace`, from the path Istio's metadata records. */
  const ruleFor = (mesh: PushContext, namespace: string): string => {
    const cluster = renderForProxy(mesh, proxyIn(namespace))[CLUSTER_TYPE].find((c) => c.name === ALL)?.json;
    const config = (((cluster?.['metadata'] as JsonObject)['filter_metadata'] as JsonObject)['istio'] as JsonObject)['config'];
    return typeof config === 'string' ? config.replace(/^.*\/namespaces\/([^/]+)\/destination-rule\/([^/]+)$/, '$1/$2') : 'none';
  };
  const ROWS: readonly { what: string; rules: K8sObject[]; mesh?: Partial<MeshConfig>; expected: Readonly<Record<string, string>> }[] = [
    {
      what: 'each namespace\'s own first, then the service\'s',
      rules: [dr('own', 'a', ['.']), serviceRule(), dr('mesh', 'istio-system')],
      expected: { a: 'a/own', b: 'shop/reviews', shop: 'shop/reviews' },
    },
    {
      what: 'a service\'s rule exported to "." leaves other namespaces to the root namespace\'s',
      rules: [serviceRule(['.']), dr('mesh', 'istio-system')],
      expected: { b: 'istio-system/mesh', shop: 'shop/reviews' },
    },
    { what: 'a rule exported to b reaches b, not c', rules: [serviceRule(['b']), dr('mesh', 'istio-system')], expected: { b: 'shop/reviews', c: 'istio-system/mesh' } },
    {
      what: 'a root-namespace rule exported to "." serves the root namespace only',
      rules: [serviceRule(['.']), dr('mesh', 'istio-system', ['.'])],
      expected: { b: 'none', 'istio-system': 'istio-system/mesh' },
    },
    { what: 'a rule in a exported only to b is not a\'s own', rules: [dr('elsewhere', 'a', ['b']), serviceRule()], expected: { a: 'shop/reviews', b: 'shop/reviews' } },
    {
      what: 'defaultDestinationRuleExportTo ["."] keeps a rule without exportTo home',
      rules: [serviceRule(), dr('mesh', 'istio-system', ['*'])],
      mesh: { defaultExportTo: { destinationRule: ['.'] } },
      expected: { b: 'istio-system/mesh', shop: 'shop/reviews' },
    },
    { what: 'the root namespace is MeshConfig\'s rootNamespace', rules: [serviceRule(['.']), dr('mesh', 'mesh-root')], mesh: { rootNamespace: 'mesh-root' }, expected: { b: 'mesh-root/mesh' } },
  ];
  for (const row of ROWS) {
    it(row.what, () => {
      const mesh = push([...withoutServiceRule, ...row.rules], row.mesh);
      assert.deepEqual(Object.fromEntries(Object.keys(row.expected).map((namespace) => [namespace, ruleFor(mesh, namespace)])), row.expected);
    });
  }

  it('a namespace\'s own rule for another namespace\'s service gives its proxies that rule\'s subsets', () => {
    const own = rule('DestinationRule', 'reviews-canary', 'a', { host: REVIEWS, subsets: [{ name: 'canary', labels: { version: 'v2' } }] });
    const mesh = push([...shop, own]);
    const subsets = (namespace: string): string[] => clustersOf(mesh, namespace).filter((n) => n.endsWith(`|${REVIEWS}`) && !n.startsWith('outbound|9080||'));
    assert.deepEqual(subsets('a'), [`outbound|9080|canary|${REVIEWS}`]);
    assert.deepEqual(subsets('b'), [`outbound|9080|v1|${REVIEWS}`, V2]);
  });

  it('a new endpoint of such a subset is pushed to that namespace\'s proxies', () => {
    const own = rule('DestinationRule', 'reviews-canary', 'a', { host: REVIEWS, subsets: [{ name: 'canary', labels: { version: 'v2' } }] });
    const convert = (objects: K8sObject[]) => convertObjects(objects.map((object) => ({ object, source: { origin: 'file', location: 'mesh.yaml' } })));
    const grown = [
      ...shop.filter((o) => o['kind'] !== 'EndpointSlice'),
      pod('reviews-v2-1', 'shop', '10.244.6.3', { app: 'reviews', version: 'v2' }),
      endpointSlice('reviews', 'shop', { name: 'http', port: 9080 }, [{ name: 'reviews-v1-0', ip: '10.244.6.1' }, { name: 'reviews-v2-0', ip: '10.244.6.2' }, { name: 'reviews-v2-1', ip: '10.244.6.3' }]),
    ];
    const [beforeSnapshot, afterSnapshot] = [convert([...shop, own]), convert([...grown, own])];
    const [before, after] = [buildPushContext(beforeSnapshot), buildPushContext(afterSnapshot)];
    const canaryCluster = `outbound|9080|canary|${REVIEWS}`;
    const eds = computeChangeScope(before, after, diffSnapshots(beforeSnapshot, afterSnapshot)).change.scope.get(ENDPOINT_TYPE);
    assert.ok(eds !== undefined && eds !== 'all' && eds.has(canaryCluster), JSON.stringify(eds));
    const [assignment] = generate(ENDPOINT_TYPE, after, proxyIn('a'), [canaryCluster]);
    assert.match(JSON.stringify(assignment?.json), /10\.244\.6\.3/);
  });

  it('subset clusters come from the rule the proxy sees: a private rule\'s subsets stay in its namespace', () => {
    const mesh = push([...withoutServiceRule, serviceRule(['.'])]);
    assert.ok(clustersOf(mesh, 'shop').includes(V2));
    assert.ok(!clustersOf(mesh, 'b').includes(V2));
  });
});

describe('a delegate\'s route under its root\'s match (Istio\'s mergeHTTPRoute)', () => {
  const to = (subset: string): HttpRoute['route'] => [{ destination: { host: REVIEWS, subset } }];
  const ROWS: readonly { what: string; root: HttpRoute; leaf: HttpRoute; match?: HttpRoute['match'] | 'conflict' }[] = [
    { what: 'a longer prefix inside the root\'s', root: { match: [{ uri: { prefix: '/api' } }] }, leaf: { match: [{ uri: { prefix: '/api/v2' } }], route: to('v2') }, match: [{ uri: { prefix: '/api/v2' } }] },
    { what: 'a prefix outside the root\'s', root: { match: [{ uri: { prefix: '/api' } }] }, leaf: { match: [{ uri: { prefix: '/web' } }], route: to('v2') }, match: 'conflict' },
    { what: 'the same exact path', root: { match: [{ uri: { exact: '/a' } }] }, leaf: { match: [{ uri: { exact: '/a' } }], route: to('v2') }, match: [{ uri: { exact: '/a' } }] },
    { what: 'a prefix under an exact root', root: { match: [{ uri: { exact: '/a' } }] }, leaf: { match: [{ uri: { prefix: '/a' } }], route: to('v2') }, match: 'conflict' },
    { what: 'a regex under a prefix root', root: { match: [{ uri: { prefix: '/a' } }] }, leaf: { match: [{ uri: { regex: '/a.*' } }], route: to('v2') }, match: 'conflict' },
    {
      what: 'the root\'s header and the delegate\'s path, combined',
      root: { match: [{ headers: { 'end-user': { exact: 'jason' } } }] },
      leaf: { match: [{ uri: { prefix: '/x' } }], route: to('v2') },
      match: [{ uri: { prefix: '/x' }, headers: { 'end-user': { exact: 'jason' } } }],
    },
    { what: 'a header value the root excludes', root: { match: [{ headers: { x: { exact: '1' } } }] }, leaf: { match: [{ headers: { x: { exact: '2' } } }], route: to('v2') }, match: 'conflict' },
    { what: 'a different ignoreUriCase', root: { match: [{ uri: { prefix: '/a' }, ignoreUriCase: true }] }, leaf: { match: [{ uri: { prefix: '/a' } }], route: to('v2') }, match: 'conflict' },
    { what: 'another port', root: { match: [{ port: 9080 }] }, leaf: { match: [{ port: 9090 }], route: to('v2') }, match: 'conflict' },
    { what: 'no root match: the delegate\'s own', root: {}, leaf: { match: [{ uri: { prefix: '/x' } }], route: to('v2') }, match: [{ uri: { prefix: '/x' } }] },
    { what: 'no delegate match: the root\'s', root: { match: [{ uri: { prefix: '/api' } }] }, leaf: { route: to('v1') }, match: [{ uri: { prefix: '/api' } }] },
    {
      what: 'the root matches it fits, out of several',
      root: { match: [{ uri: { prefix: '/api' } }, { uri: { prefix: '/web' } }] },
      leaf: { match: [{ uri: { prefix: '/api/v1' } }], route: to('v1') },
      match: [{ uri: { prefix: '/api/v1' } }],
    },
  ];
  for (const row of ROWS) {
    it(`${row.what}: ${row.match === 'conflict' ? 'left out' : 'merged'}`, () => {
      const merged = mergeHttpRoute(row.root, row.leaf);
      if (row.match === 'conflict') assert.equal(merged, undefined);
      else assert.deepEqual(merged?.match, row.match);
    });
  }

  it('names join root-delegate, and the root\'s policies apply where the delegate sets none', () => {
    const root: HttpRoute = { name: 'api', timeout: '5s', retries: { attempts: 1 }, match: [{ name: 'm', uri: { prefix: '/api' } }] };
    const merged = mergeHttpRoute(root, { name: 'v2', timeout: '2s', match: [{ name: 'n', uri: { prefix: '/api/v2' } }], route: to('v2') });
    assert.deepEqual(merged, { name: 'api-v2', timeout: '2s', retries: { attempts: 1 }, match: [{ name: 'm-n', uri: { prefix: '/api/v2' } }], route: to('v2') });
  });
});

describe('a root VirtualService serves its delegates\' routes', () => {
  const root = (name: string, namespace: string, delegate: Record<string, string>): K8sObject =>
    rule('VirtualService', name, namespace, {
      hosts: [REVIEWS],
      exportTo: ['.'],
      http: [{ name: 'api', match: [{ uri: { prefix: '/api' } }], timeout: '5s', delegate }, { route: [{ destination: { host: REVIEWS, subset: 'v1' } }] }],
    });
  const delegateIn = (namespace: string, exportTo?: string[], http?: unknown[]): K8sObject =>
    rule('VirtualService', 'reviews-api', namespace, {
      ...(exportTo ? { exportTo } : {}),
      http: http ?? [
        { match: [{ uri: { prefix: '/api/v2' } }], route: [{ destination: { host: 'reviews.shop.svc.cluster.local', subset: 'v2' } }] },
        { match: [{ uri: { prefix: '/web' } }], route: [{ destination: { host: 'reviews.shop.svc.cluster.local', subset: 'v2' } }] },
        { route: [{ destination: { host: 'reviews.shop.svc.cluster.local', subset: 'v1' } }], timeout: '2s' },
      ],
    });
  const routes = (mesh: PushContext, namespace: string): { name: unknown; prefix: unknown; cluster: unknown; timeout: unknown }[] => {
    const config = renderForProxy(mesh, proxyIn(namespace))[ROUTE_TYPE].find((r) => r.name === '9080');
    const vhost = (config?.json['virtual_hosts'] as JsonObject[]).find((v) => v['name'] === `${REVIEWS}:9080`);
    return (vhost?.['routes'] as JsonObject[]).map((r) => {
      const action = r['route'] as JsonObject;
      return { name: r['name'], prefix: (r['match'] as JsonObject)['prefix'], cluster: action['cluster'], timeout: action['timeout'] };
    });
  };

  it('matches combined in order, the root\'s timeout inherited, a conflicting delegate route left out with a warning', () => {
    const mesh = push([...shop, root('reviews', 'a', { name: 'reviews-api', namespace: 'ops' }), delegateIn('ops', ['a'])]);
    assert.deepEqual(routes(mesh, 'a'), [
      { name: 'api', prefix: '/api/v2', cluster: V2, timeout: '5s' },
      { name: 'api', prefix: '/api', cluster: `outbound|9080|v1|${REVIEWS}`, timeout: '2s' },
      { name: 'a/reviews/http[1]', prefix: '/', cluster: `outbound|9080|v1|${REVIEWS}`, timeout: '0s' },
    ]);
    const issues = statusOf(mesh, 'VirtualService', 'a', 'reviews').issues;
    assert.deepEqual(issues.map((i) => [i.code, i.path]), [['MP_RULE_CONFLICT', 'spec.http[0].delegate']]);
    assert.match(issues[0]?.message ?? '', /http\[1\] of VirtualService ops\/reviews-api/);
    assert.equal(statusOf(mesh, 'VirtualService', 'ops', 'reviews-api').applied, true);
    assert.deepEqual(violations(renderForProxy(mesh, proxyIn('a'))), []);
  });

  it('a delegated route is attributed to the delegate that wrote it', () => {
    const mesh = push([...shop, root('reviews', 'a', { name: 'reviews-api', namespace: 'ops' }), delegateIn('ops', ['a'])]);
    const config = renderForProxy(mesh, proxyIn('a'))[ROUTE_TYPE].find((r) => r.name === '9080');
    const vhost = (config?.json['virtual_hosts'] as JsonObject[]).find((v) => v['name'] === `${REVIEWS}:9080`);
    const istio = ((vhost?.['routes'] as JsonObject[])[0]?.['metadata'] as JsonObject)['filter_metadata'] as JsonObject;
    assert.deepEqual(istio['istio'], { config: '/apis/networking.istio.io/v1/namespaces/ops/virtual-service/reviews-api', http_route: 0 });
  });

  const defaultOnly = [{ name: 'a/reviews/http[1]', prefix: '/', cluster: `outbound|9080|v1|${REVIEWS}`, timeout: '0s' }];
  const WARNINGS: readonly { what: string; objects: K8sObject[]; message: RegExp }[] = [
    { what: 'a missing delegate', objects: [root('reviews', 'a', { name: 'nowhere' })], message: /VirtualService a\/nowhere does not exist/ },
    { what: 'a delegate not exported to the root\'s namespace', objects: [root('reviews', 'a', { name: 'reviews-api', namespace: 'ops' }), delegateIn('ops', ['.'])], message: /is not exported to namespace a/ },
    {
      what: 'a "delegate" that has hosts',
      objects: [root('reviews', 'a', { name: 'other', namespace: 'a' }), rule('VirtualService', 'other', 'a', { hosts: ['other'], http: [{ route: [{ destination: { host: REVIEWS } }] }] })],
      message: /has hosts, so it is a root/,
    },
  ];
  for (const row of WARNINGS) {
    it(`${row.what}: the route contributes nothing, with MP_REF_UNKNOWN`, () => {
      const mesh = push([...shop, ...row.objects]);
      assert.deepEqual(routes(mesh, 'a'), defaultOnly);
      const issues = statusOf(mesh, 'VirtualService', 'a', 'reviews').issues;
      assert.ok(issues.some((i) => i.code === 'MP_REF_UNKNOWN' && i.path === 'spec.http[0].delegate' && row.message.test(i.message)), JSON.stringify(issues));
    });
  }

  it('one delegate serves two roots, in their own namespaces', () => {
    const mesh = push([...shop, root('reviews', 'a', { name: 'reviews-api', namespace: 'ops' }), root('reviews', 'b', { name: 'reviews-api', namespace: 'ops' }), delegateIn('ops')]);
    for (const namespace of ['a', 'b']) assert.deepEqual(routes(mesh, namespace).map((r) => r.prefix), ['/api/v2', '/api', '/']);
    assert.deepEqual(routes(mesh, 'shop').map((r) => r.prefix), ['/']);
  });

  it('what proxyless gRPC does not get of a delegated route is reported on the delegate, not the root', () => {
    const delegate = delegateIn('ops', ['a'], [{ match: [{ uri: { prefix: '/api/old' } }], redirect: { uri: '/api/new' } }, { route: [{ destination: { host: REVIEWS, subset: 'v2' } }] }]);
    const mesh = push([...shop, root('reviews', 'a', { name: 'reviews-api', namespace: 'ops' }), delegate]);
    const paths = (namespace: string, name: string): string[] => {
      const status = mesh.ruleStatus.get(`VirtualService/${namespace}/${name}`);
      assert.ok(status);
      return grpcDegradations(mesh, status.rule).map((i) => i.path);
    };
    assert.deepEqual(paths('ops', 'reviews-api'), ['spec.http[0].redirect']);
    assert.deepEqual(paths('a', 'reviews'), []);
  });

  it('a delegate no root names is ineffective, and serves nothing alone', () => {
    const mesh = push([...shop, delegateIn('ops')]);
    const status = statusOf(mesh, 'VirtualService', 'ops', 'reviews-api');
    assert.equal(status.applied, false);
    assert.deepEqual(status.issues.map((i) => [i.code, i.path]), [['MP_RULE_INEFFECTIVE', 'spec.hosts']]);
  });
});

describe('exportTo and delegate as written', () => {
  const issuesOf = (object: K8sObject): string[] =>
    convertObjects([{ object, source: { origin: 'file', location: 'x.yaml' } }]).rejected.flatMap((r) => r.issues.map((i) => `${i.path}: ${i.message}`));
  it('"~" is for ServiceEntries only, and never with other entries', () => {
    const se = (exportTo: string[]): K8sObject => rule('ServiceEntry', 'x', 'shop', { hosts: ['x.example.com'], exportTo, ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] });
    assert.deepEqual(issuesOf(se(['~'])), []);
    assert.match(issuesOf(se(['~', 'a'])).join('\n'), /spec.exportTo: "~" \(visible to no namespace\) cannot be listed with other entries/);
    assert.match(issuesOf(canary(['~'])).join('\n'), /spec.exportTo: "~" .* is only allowed for ServiceEntries/);
  });

  it('a MeshConfig default exportTo is checked as Istio checks exportTo', () => {
    assert.deepEqual(readMeshConfig({ defaultVirtualServiceExportTo: ['.'], defaultServiceExportTo: ['~'] }, 'mesh.yaml').issues, []);
    const { issues } = readMeshConfig({ defaultDestinationRuleExportTo: ['*', 'Bad'] }, 'mesh.yaml');
    assert.deepEqual(issues.map((i) => i.path), ['defaultDestinationRuleExportTo', 'defaultDestinationRuleExportTo']);
  });
});

describe('fixtures/export-and-delegate, as each namespace\'s proxies are rendered it', () => {
  const CART = 'cart.shop.svc.cluster.local';
  const vhostRoutes = (mesh: PushContext, proxy: Proxy, routeConfig: string, vhost: string): string[] => {
    const config = renderForProxy(mesh, proxy, proxy.generator === 'grpc' ? [routeConfig] : undefined)[ROUTE_TYPE].find((r) => r.name === routeConfig);
    const host = (config?.json['virtual_hosts'] as JsonObject[] | undefined)?.find((v) => v['name'] === vhost);
    return ((host?.['routes'] as JsonObject[] | undefined) ?? []).map((r) => {
      const match = r['match'] as JsonObject;
      return `${match['prefix'] as string} -> ${(r['route'] as JsonObject)['cluster'] as string}`;
    });
  };
  const at = (ip: string, pod: string, namespace: string, generator?: 'grpc'): Proxy =>
    parseProxy(`sidecar~${ip}~${pod}.${namespace}~${namespace}.svc.cluster.local`, generator ? { GENERATOR: generator } : {});

  it('ops gets the root with its delegate merged; web its own canary; only shop sees internal-api; only ops the partner', async () => {
    const mesh = await loadFixture('export-and-delegate');
    const ops = at('10.244.5.1', 'tools-0', 'ops');
    const web = at('10.244.4.1', 'frontend-0', 'web');
    const shopProxy = at('10.244.3.1', 'cart-v1-0', 'shop');
    assert.deepEqual(vhostRoutes(mesh, ops, '8080', `${CART}:8080`), [
      `/api/v2 -> outbound|8080|v2|${CART}`,
      `/api -> outbound|8080|v1|${CART}`,
      `/ -> outbound|8080|v1|${CART}`,
    ]);
    assert.deepEqual(vhostRoutes(mesh, web, '8080', `${CART}:8080`), [`/ -> outbound|8080|v2|${CART}`]);
    const clusters = (proxy: Proxy): string[] => renderForProxy(mesh, proxy)[CLUSTER_TYPE].map((c) => c.name).filter((n) => n.startsWith('outbound|'));
    assert.deepEqual(clusters(web).filter((n) => n.includes(CART)), [`outbound|8080||${CART}`, `outbound|8080|v2|${CART}`]);
    assert.ok(clusters(shopProxy).includes('outbound|8080||internal-api.shop.svc.cluster.local'));
    assert.ok(!clusters(ops).some((n) => n.includes('internal-api')) && !clusters(web).some((n) => n.includes('internal-api')));
    assert.ok(clusters(ops).includes('outbound|80||partner.example.com') && !clusters(shopProxy).some((n) => n.includes('partner')));
    assert.equal(((renderForProxy(mesh, web)[CLUSTER_TYPE].find((c) => c.name === `outbound|8080||${CART}`)?.json ?? {})['lb_policy']), 'RANDOM');
    for (const proxy of [ops, web, shopProxy]) assert.deepEqual(violations(renderForProxy(mesh, proxy)), []);
    assert.deepEqual([...mesh.ruleStatus.values()].filter((s) => s.issues.length > 0 || !s.applied).map((s) => s.rule.meta.name), []);
  });

  it('proxyless gRPC in web and ops sees what their sidecars see', async () => {
    const mesh = await loadFixture('export-and-delegate');
    const target = `${CART}:8080`;
    assert.deepEqual(vhostRoutes(mesh, at('10.244.4.9', 'grpc-0', 'web', 'grpc'), target, target), [`/ -> outbound|8080|v2|${CART}`]);
    assert.deepEqual(vhostRoutes(mesh, at('10.244.5.9', 'grpc-0', 'ops', 'grpc'), target, target).map((r) => r.split(' ')[0]), ['/api/v2', '/api', '/']);
  });
});
