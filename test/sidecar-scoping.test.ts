// Istio's Sidecar resource limits what each proxy is sent: which egress hosts import which
// services, which Sidecar applies to which proxy, what a scoped proxy is generated (still valid
// for Envoy), and which changes a scoped proxy is spared.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../src/model/mesh-config.ts';
import { parseProxy, type Proxy } from '../src/model/proxy.ts';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import { scopedPush } from '../src/model/sidecar-scope.ts';
import type { SourceSnapshot } from '../src/model/store.ts';
import { computeChangeScope } from '../src/push/change-scope.ts';
import { diffSnapshots } from '../src/model/config-changes.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import { readMeshConfig } from '../src/sources/mesh-config-file.ts';
import { loadDirectory } from '../src/sources/yaml-source.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import type { PushChange } from '../src/push/proxy-scope.ts';
import { scopeForProxy, widestScope } from '../src/push/proxy-scope.ts';
import { renderForProxy } from '../src/xds/render.ts';
import type { PushScope } from '../src/xds/server/push-scope.ts';
import { describeScope } from '../src/xds/server/push-scope.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { endpointSlice, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { FIXTURES, violations } from './support/rendered.ts';

const http = (port: number, name = 'http'): { name: string; port: number; targetPort: number } => ({ name, port, targetPort: port });

/** Two applications (bookinfo, shop) and the mesh's own namespace, with one pod behind each service. */
const MESH: K8sObject[] = [
  service('productpage', 'bookinfo', [http(9080)], '10.96.1.1'),
  service('reviews', 'bookinfo', [http(9080)], '10.96.1.2'),
  service('cart', 'shop', [http(8080)], '10.96.2.1'),
  service('payments', 'shop', [http(9080), http(9090, 'grpc')], '10.96.2.2'),
  service('zipkin', 'istio-system', [http(9411)], '10.96.3.1'),
  pod('productpage-0', 'bookinfo', '10.244.1.1', { app: 'productpage' }),
  pod('reviews-0', 'bookinfo', '10.244.1.2', { app: 'reviews', version: 'v1' }),
  pod('cart-0', 'shop', '10.244.2.1', { app: 'cart' }),
  pod('payments-0', 'shop', '10.244.2.2', { app: 'payments' }),
  pod('zipkin-0', 'istio-system', '10.244.3.1', { app: 'zipkin' }),
  endpointSlice('productpage', 'bookinfo', { name: 'http', port: 9080 }, [{ name: 'productpage-0', ip: '10.244.1.1' }]),
  endpointSlice('reviews', 'bookinfo', { name: 'http', port: 9080 }, [{ name: 'reviews-0', ip: '10.244.1.2' }]),
  endpointSlice('cart', 'shop', { name: 'http', port: 8080 }, [{ name: 'cart-0', ip: '10.244.2.1' }]),
  endpointSlice('payments', 'shop', { name: 'grpc', port: 9090 }, [{ name: 'payments-0', ip: '10.244.2.2' }]),
  endpointSlice('zipkin', 'istio-system', { name: 'http', port: 9411 }, [{ name: 'zipkin-0', ip: '10.244.3.1' }]),
];

const PRODUCTPAGE = parseProxy('sidecar~10.244.1.1~productpage-0.bookinfo~bookinfo.svc.cluster.local', { LABELS: { app: 'productpage' } });
const REVIEWS = parseProxy('sidecar~10.244.1.2~reviews-0.bookinfo~bookinfo.svc.cluster.local', { LABELS: { app: 'reviews', version: 'v1' } });
const CART = parseProxy('sidecar~10.244.2.1~cart-0.shop~shop.svc.cluster.local', { LABELS: { app: 'cart' } });
const GATEWAY = parseProxy('router~10.244.1.9~ingress-0.bookinfo~bookinfo.svc.cluster.local');
const NO_NAMESPACE = parseProxy('some-client');

function snapshot(objects: readonly K8sObject[]): SourceSnapshot {
  const converted = convertObjects(objects.map((object) => ({ object, source: { origin: 'file', location: 'mesh.yaml' } })));
  assert.deepEqual(converted.rejected.map((r) => r.issues), [], 'every object is accepted');
  return converted;
}

function meshWith(objects: readonly K8sObject[], meshConfig: MeshConfig = DEFAULT_MESH_CONFIG): PushContext {
  return buildPushContext(snapshot([...MESH, ...objects]), meshConfig);
}

function sidecar(name: string, namespace: string, spec: Record<string, unknown>, createdAt = '2024-01-01T00:00:00Z'): K8sObject {
  return { ...rule('Sidecar', name, namespace, spec), metadata: { name, namespace, creationTimestamp: createdAt } };
}

/** `name.namespace:port` of every service port the proxy is given. */
function visible(push: PushContext, proxy: Proxy): string[] {
  return scopedPush(push, proxy).services.flatMap((s) => s.ports.map((p) => `${s.name}.${s.namespace}:${p.port}`));
}

function names(push: PushContext, proxy: Proxy, typeUrl: typeof CLUSTER_TYPE | typeof LISTENER_TYPE | typeof ROUTE_TYPE | typeof ENDPOINT_TYPE): string[] {
  return renderForProxy(push, proxy)[typeUrl].map((r) => r.name);
}

describe('egress hosts import services as Istio reads namespace/dnsName', () => {
  const ALL = ['cart.shop:8080', 'payments.shop:9080', 'payments.shop:9090', 'productpage.bookinfo:9080', 'reviews.bookinfo:9080', 'zipkin.istio-system:9411'];
  const cases: { hosts: string[]; port?: number; sees: string[] }[] = [
    { hosts: ['./*'], sees: ['productpage.bookinfo:9080', 'reviews.bookinfo:9080'] },
    { hosts: ['*/*'], sees: ALL },
    { hosts: ['shop/*'], sees: ['cart.shop:8080', 'payments.shop:9080', 'payments.shop:9090'] },
    { hosts: ['shop/cart.shop.svc.cluster.local'], sees: ['cart.shop:8080'] },
    { hosts: ['*/*.shop.svc.cluster.local'], sees: ['cart.shop:8080', 'payments.shop:9080', 'payments.shop:9090'] },
    { hosts: ['~/*'], sees: [] },
    { hosts: ['./*', 'istio-system/*'], sees: ['productpage.bookinfo:9080', 'reviews.bookinfo:9080', 'zipkin.istio-system:9411'] },
    // Hosts written for a namespace decide alone for it: */* does not bring payments back.
    { hosts: ['shop/cart.shop.svc.cluster.local', '*/*'], sees: ['cart.shop:8080', 'productpage.bookinfo:9080', 'reviews.bookinfo:9080', 'zipkin.istio-system:9411'] },
    { hosts: ['*/*'], port: 9080, sees: ['payments.shop:9080', 'productpage.bookinfo:9080', 'reviews.bookinfo:9080'] },
    { hosts: ['shop/*'], port: 9090, sees: ['payments.shop:9090'] },
  ];
  for (const { hosts, port, sees } of cases) {
    it(`${hosts.join(' + ')}${port ? ` on port ${port}` : ''}: ${sees.length === 0 ? 'nothing' : sees.join(', ')}`, () => {
      const egress = [{ hosts, ...(port ? { port: { number: port, protocol: 'HTTP', name: 'http' } } : {}) }];
      const push = meshWith([sidecar('default', 'bookinfo', { egress })]);
      assert.deepEqual(visible(push, PRODUCTPAGE).sort(), [...sees].sort());
    });
  }
});

describe('which Sidecar applies: workload selector, then the namespace, then the root namespace', () => {
  const root = sidecar('default', 'istio-system', { egress: [{ hosts: ['istio-system/*'] }] });
  const namespaceWide = sidecar('default', 'bookinfo', { egress: [{ hosts: ['./*'] }] });
  const forProductpage = sidecar('productpage', 'bookinfo', { workloadSelector: { labels: { app: 'productpage' } }, egress: [{ hosts: ['shop/*'] }] });
  const applied = (push: PushContext, proxy: Proxy): string | undefined => {
    const found = push.sidecarFor(proxy);
    return found && `${found.meta.namespace}/${found.meta.name}`;
  };

  it('a selector Sidecar beats its namespace Sidecar, which beats the root namespace default', () => {
    const push = meshWith([root, namespaceWide, forProductpage]);
    assert.equal(applied(push, PRODUCTPAGE), 'bookinfo/productpage');
    assert.equal(applied(push, REVIEWS), 'bookinfo/default');
    assert.equal(applied(push, CART), 'istio-system/default');
  });

  it('a proxy whose node metadata carries no labels is matched by the labels of the pod at its IP', () => {
    const push = meshWith([namespaceWide, forProductpage]);
    const bootstrapped = parseProxy('sidecar~10.244.1.1~productpage-0.bookinfo~bookinfo.svc.cluster.local');
    assert.equal(applied(push, bootstrapped), 'bookinfo/productpage');
    assert.equal(applied(push, parseProxy('sidecar~10.244.1.99~other-0.bookinfo~bookinfo.svc.cluster.local')), 'bookinfo/default');
  });

  it('without a namespace Sidecar, the root namespace default applies; with a different rootNamespace it does not', () => {
    assert.equal(applied(meshWith([root, forProductpage]), REVIEWS), 'istio-system/default');
    assert.equal(applied(meshWith([root], { ...DEFAULT_MESH_CONFIG, rootNamespace: 'mesh-admin' }), REVIEWS), undefined);
  });

  it('reads rootNamespace from the MeshConfig file, and refuses one that is not a namespace name', () => {
    assert.equal(readMeshConfig({ rootNamespace: 'mesh-admin' }, 'mesh.yaml').meshConfig?.rootNamespace, 'mesh-admin');
    const bad = readMeshConfig({ rootNamespace: 'Mesh_Admin' }, 'mesh.yaml');
    assert.equal(bad.meshConfig, undefined);
    assert.deepEqual(bad.issues.map((i) => [i.code, i.path]), [['MP_MESH_CONFIG_INVALID', 'rootNamespace']]);
  });

  it('gateways and proxies without a namespace are not scoped', () => {
    const push = meshWith([root, namespaceWide]);
    assert.equal(applied(push, GATEWAY), undefined);
    assert.equal(applied(push, NO_NAMESPACE), undefined);
    assert.equal(scopedPush(push, GATEWAY), push);
  });

  it('a second Sidecar without selector in a namespace is not applied, and says which older one wins', () => {
    const newer = sidecar('also-default', 'bookinfo', { egress: [{ hosts: ['*/*'] }] }, '2024-06-01T00:00:00Z');
    const push = meshWith([namespaceWide, newer]);
    assert.equal(applied(push, REVIEWS), 'bookinfo/default');
    const status = push.ruleStatus.get('Sidecar/bookinfo/also-default');
    assert.equal(status?.applied, false);
    assert.deepEqual(status.issues.map((i) => [i.code, i.path]), [['MP_SIDECAR_CONFLICT', 'spec.workloadSelector']]);
    assert.match(status.issues[0]?.message ?? '', /Sidecar bookinfo\/default .* is older/);
  });

  it('two selectors that pick the same pod: the older scopes it, the newer is reported naming the pod', () => {
    const newer = sidecar('pages', 'bookinfo', { workloadSelector: { labels: { app: 'productpage' } }, egress: [{ hosts: ['*/*'] }] }, '2024-06-01T00:00:00Z');
    const push = meshWith([forProductpage, newer]);
    assert.equal(applied(push, PRODUCTPAGE), 'bookinfo/productpage');
    const issues = push.ruleStatus.get('Sidecar/bookinfo/pages')?.issues ?? [];
    assert.deepEqual(issues.map((i) => [i.code, i.path]), [['MP_SIDECAR_CONFLICT', 'spec.workloadSelector.labels']]);
    assert.match(issues[0]?.message ?? '', /workload bookinfo\/productpage-0/);
    assert.deepEqual(push.ruleStatus.get('Sidecar/bookinfo/productpage')?.issues, []);
  });
});

describe('what a scoped proxy is generated', () => {
  const onlyOwnNamespace = sidecar('default', 'bookinfo', { egress: [{ hosts: ['./*', 'istio-system/*'] }] });

  it('productpage gets only the clusters, endpoints, listeners and virtual hosts of what it sees; without a Sidecar it gets everything', () => {
    const unscoped = meshWith([]);
    const scoped = meshWith([onlyOwnNamespace]);
    assert.ok(names(unscoped, PRODUCTPAGE, CLUSTER_TYPE).includes('outbound|8080||cart.shop.svc.cluster.local'));
    assert.deepEqual(names(scoped, PRODUCTPAGE, CLUSTER_TYPE).filter((n) => n.startsWith('outbound|')), [
      'outbound|9080||productpage.bookinfo.svc.cluster.local',
      'outbound|9080||reviews.bookinfo.svc.cluster.local',
      'outbound|9411||zipkin.istio-system.svc.cluster.local',
    ]);
    assert.deepEqual(names(scoped, PRODUCTPAGE, ENDPOINT_TYPE), names(scoped, PRODUCTPAGE, CLUSTER_TYPE).filter((n) => n.startsWith('outbound|')));
    assert.deepEqual(names(scoped, PRODUCTPAGE, LISTENER_TYPE), ['0.0.0.0_9080', '0.0.0.0_9411', 'virtualInbound', 'virtualOutbound']);
    const route9080 = renderForProxy(scoped, PRODUCTPAGE)[ROUTE_TYPE].find((r) => r.name === '9080');
    assert.deepEqual((route9080?.json['virtual_hosts'] as JsonObject[]).map((v) => v['name']), [
      'productpage.bookinfo.svc.cluster.local:9080',
      'reviews.bookinfo.svc.cluster.local:9080',
      'allow_any',
    ]);
    // Its own workload's inbound side does not depend on what it may call.
    assert.ok(names(scoped, PRODUCTPAGE, CLUSTER_TYPE).includes('inbound|9080||'));
  });

  it('a route of an imported VirtualService to a service it does not list brings that service in, as Istio infers it', () => {
    const toPayments = rule('VirtualService', 'reviews', 'bookinfo', {
      hosts: ['reviews'],
      http: [{ route: [{ destination: { host: 'payments.shop.svc.cluster.local', port: { number: 9080 } } }] }],
    });
    const push = meshWith([onlyOwnNamespace, toPayments]);
    const rendered = renderForProxy(push, PRODUCTPAGE);
    const clusters = rendered[CLUSTER_TYPE].map((c) => c.name);
    // A listener without a port imports the whole service, as Istio does.
    assert.ok(clusters.includes('outbound|9080||payments.shop.svc.cluster.local'));
    assert.ok(clusters.includes('outbound|9090||payments.shop.svc.cluster.local'));
    assert.ok(!clusters.includes('outbound|8080||cart.shop.svc.cluster.local'));
    assert.deepEqual(violations(rendered), []);
  });

  it('a port-restricted egress listener gives only that port', () => {
    const push = meshWith([sidecar('default', 'bookinfo', { egress: [{ port: { number: 9090, protocol: 'GRPC', name: 'grpc' }, hosts: ['shop/*'] }, { hosts: ['./*'] }] })]);
    const clusters = names(push, PRODUCTPAGE, CLUSTER_TYPE);
    assert.ok(clusters.includes('outbound|9090||payments.shop.svc.cluster.local'));
    assert.ok(!clusters.includes('outbound|9080||payments.shop.svc.cluster.local'));
    assert.ok(!clusters.includes('outbound|8080||cart.shop.svc.cluster.local'));
    assert.deepEqual(violations(renderForProxy(push, PRODUCTPAGE)), []);
  });

  it("the Sidecar's outboundTrafficPolicy overrides the mesh's for the proxies it scopes", () => {
    const push = meshWith([sidecar('default', 'bookinfo', { egress: [{ hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } })]);
    const catchAll = (proxy: Proxy): unknown => {
      const listener = renderForProxy(push, proxy)[LISTENER_TYPE].find((l) => l.name === 'virtualOutbound');
      return (listener?.json['filter_chains'] as JsonObject[])[0]?.['name'];
    };
    assert.equal(catchAll(PRODUCTPAGE), 'BlackHoleFilterChain');
    assert.equal(catchAll(CART), 'PassthroughFilterChain');
  });

  it('a proxyless gRPC client gets clusters and endpoints of visible services only, and no listener for a hidden target', () => {
    const grpcClient = parseProxy('sidecar~10.244.1.7~client-0.bookinfo~bookinfo.svc.cluster.local', { GENERATOR: 'grpc' });
    const push = meshWith([onlyOwnNamespace]);
    const rendered = renderForProxy(push, grpcClient, ['reviews.bookinfo.svc.cluster.local:9080', 'cart.shop.svc.cluster.local:8080']);
    assert.deepEqual(rendered[LISTENER_TYPE].map((l) => l.name), ['reviews.bookinfo.svc.cluster.local:9080']);
    assert.deepEqual(rendered[CLUSTER_TYPE].map((c) => c.name), ['outbound|9080||reviews.bookinfo.svc.cluster.local']);
    assert.deepEqual(renderForProxy(push, grpcClient)[ENDPOINT_TYPE].length, 0, 'nothing asked, nothing sent');
    assert.deepEqual(violations(rendered), []);
  });

  describe('every fixture, with a Sidecar that keeps each proxy to its own namespace, still passes Envoy validation', () => {
    const fixtures = readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    for (const fixture of fixtures) {
      it(fixture, async () => {
        const loaded = await loadDirectory(join(FIXTURES, fixture));
        const namespaces = [...new Set(loaded.services.map((s) => s.namespace))];
        const sidecars = snapshot(namespaces.map((ns) => sidecar('own-namespace', ns, { egress: [{ hosts: ['./*'] }] })));
        const push = buildPushContext({ ...loaded, rules: [...loaded.rules, ...sidecars.rules] });
        for (const namespace of namespaces) {
          const envoy = parseProxy(`sidecar~10.244.9.1~client-0.${namespace}~${namespace}.svc.cluster.local`);
          const grpcClient = parseProxy(`sidecar~10.244.9.2~client-1.${namespace}~${namespace}.svc.cluster.local`, { GENERATOR: 'grpc' });
          const targets = loaded.services.flatMap((s) => s.ports.map((p) => `${s.hostname}:${p.port}`));
          for (const rendered of [renderForProxy(push, envoy), renderForProxy(push, grpcClient, targets)]) {
            assert.deepEqual(violations(rendered), [], `${fixture}, namespace ${namespace}`);
            assert.ok(rendered[CLUSTER_TYPE].every((c) => !c.name.startsWith('outbound|') || c.name.endsWith(`.${namespace}.svc.cluster.local`) || !c.name.includes('.svc.')));
          }
        }
      });
    }
  });
});

describe('which changes wake a scoped proxy', () => {
  const hideShop = sidecar('default', 'bookinfo', { egress: [{ hosts: ['./*'] }] });
  const moreCarts = [
    pod('cart-1', 'shop', '10.244.2.9', { app: 'cart' }),
    { ...endpointSlice('cart', 'shop', { name: 'http', port: 8080 }, [{ name: 'cart-0', ip: '10.244.2.1' }, { name: 'cart-1', ip: '10.244.2.9' }]) },
  ];
  const withoutOldCartSlice = MESH.filter((o) => !(o['kind'] === 'EndpointSlice' && (o['metadata'] as { name: string }).name === 'cart-abcde'));

  /** What a push from `before` to `after` carries (`scope`: the most any proxy is sent). */
  function change(before: K8sObject[], after: K8sObject[]): { pushed: PushChange; scope: PushScope; after: PushContext } {
    const [a, b] = [snapshot(before), snapshot(after)];
    const [pa, pb] = [buildPushContext(a), buildPushContext(b)];
    const { change: pushed } = computeChangeScope(pa, pb, diffSnapshots(a, b));
    return { pushed, scope: widestScope(pushed), after: pb };
  }

  it('an endpoint change in a hidden namespace wakes only the proxies that see it', () => {
    const { pushed, scope, after } = change([...MESH, hideShop], [...withoutOldCartSlice, ...moreCarts, hideShop]);
    assert.deepEqual(describeScope(scope), { ClusterLoadAssignment: 1 });
    assert.deepEqual(describeScope(scopeForProxy(pushed, after, PRODUCTPAGE)), {});
    assert.equal(scopeForProxy(pushed, after, CART), scope, 'an unscoped proxy gets the scope as it is');
  });

  it('a new service in a hidden namespace does not make the scoped proxy regenerate anything', () => {
    const extra = service('orders', 'shop', [http(7070)], '10.96.2.3');
    const { pushed, scope, after } = change([...MESH, hideShop], [...MESH, extra, hideShop]);
    assert.deepEqual(describeScope(scope), { Cluster: 'all', ClusterLoadAssignment: 1, Listener: 'all', RouteConfiguration: 'all' });
    assert.deepEqual(describeScope(scopeForProxy(pushed, after, PRODUCTPAGE)), {});
    assert.deepEqual(describeScope(scopeForProxy(pushed, after, CART)), describeScope(scope));
  });

  it('a change in its own namespace, or to a service it sees, still wakes it', () => {
    const extra = service('ratings', 'bookinfo', [http(9080)], '10.96.1.3');
    const own = change([...MESH, hideShop], [...MESH, extra, hideShop]);
    assert.deepEqual(describeScope(scopeForProxy(own.pushed, own.after, PRODUCTPAGE)), { Cluster: 'all', ClusterLoadAssignment: 1, Listener: 'all', RouteConfiguration: 'all' });
    const seeZipkin = sidecar('default', 'bookinfo', { egress: [{ hosts: ['./*', 'istio-system/*'] }] });
    const zipkin2 = service('zipkin', 'istio-system', [http(9411), http(9412, 'http-admin')], '10.96.3.1');
    const seen = change([...MESH, seeZipkin], [...MESH.filter((o) => (o['metadata'] as { name: string }).name !== 'zipkin' || o['kind'] !== 'Service'), zipkin2, seeZipkin]);
    assert.equal(scopeForProxy(seen.pushed, seen.after, PRODUCTPAGE).get(CLUSTER_TYPE), 'all');
  });

  it('a service it saw and no longer sees (its port left the egress port) still wakes it, to remove it', () => {
    const port9080 = sidecar('default', 'bookinfo', { egress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['*/*'] }] });
    const moved = service('payments', 'shop', [http(9081), http(9090, 'grpc')], '10.96.2.2');
    const without = MESH.filter((o) => !(o['kind'] === 'Service' && (o['metadata'] as { name: string }).name === 'payments'));
    const { pushed, after } = change([...MESH, port9080], [...without, moved, port9080]);
    assert.equal(scopeForProxy(pushed, after, PRODUCTPAGE).get(CLUSTER_TYPE), 'all');
    assert.ok(!visible(after, PRODUCTPAGE).some((v) => v.startsWith('payments')));
  });

  it('a change to a Sidecar is a full push for the proxies it applies to, and nothing for the others', () => {
    // A full comparison covers every type, Secrets included (sent only to a proxy that asked for some).
    const FULL = { Cluster: 'all', ClusterLoadAssignment: 'all', Listener: 'all', RouteConfiguration: 'all', Secret: 'all' };
    const widened = sidecar('default', 'bookinfo', { egress: [{ hosts: ['*/*'] }] });
    const { pushed, scope, after } = change([...MESH, hideShop], [...MESH, widened]);
    assert.deepEqual(describeScope(scope), FULL);
    assert.deepEqual(describeScope(scopeForProxy(pushed, after, PRODUCTPAGE)), FULL);
    assert.deepEqual(describeScope(scopeForProxy(pushed, after, CART)), {}, 'no Sidecar before or after: nothing changed for cart');
    // A new Sidecar for shop scopes cart from now on, and changes nothing for productpage.
    const forShop = sidecar('default', 'shop', { egress: [{ hosts: ['./*'] }] });
    const added = change([...MESH, hideShop], [...MESH, hideShop, forShop]);
    assert.deepEqual(describeScope(scopeForProxy(added.pushed, added.after, CART)), FULL);
    assert.deepEqual(describeScope(scopeForProxy(added.pushed, added.after, PRODUCTPAGE)), {});
  });

  it('a Sidecar change together with an endpoint change: the others still get the endpoint change', () => {
    const forShop = sidecar('default', 'shop', { egress: [{ hosts: ['./*'] }] });
    const { pushed, after } = change([...MESH, hideShop], [...withoutOldCartSlice, ...moreCarts, hideShop, forShop]);
    const elsewhere = parseProxy('sidecar~10.244.9.9~client-0.other~other.svc.cluster.local');
    assert.deepEqual(describeScope(scopeForProxy(pushed, after, elsewhere)), { ClusterLoadAssignment: 1 });
    assert.deepEqual(describeScope(scopeForProxy(pushed, after, PRODUCTPAGE)), {});
  });
});
