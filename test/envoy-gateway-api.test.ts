// A real Envoy started as the gateway of a Gateway API Gateway (node id `router~...`, its pod
// labelled gateway.networking.k8s.io/gateway-name) and fed by meshpilot routes HTTPRoutes by Host
// and path to loopback backends; a route from a namespace the listener does not admit gets
// NotAllowedByListeners and no traffic; a GRPCRoute routes a real gRPC call by method; a TCPRoute on
// a TCP listener proxies connections.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startBackend, WHOAMI_PATH, type Whoami } from './support/backends.ts';
import { adsBootstrap, requireEnvoy, startEnvoy } from './support/envoy.ts';
import { backend, freePort, get } from './support/gateway-http.ts';
import { endpointSlice, MeshDir, pod, service, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot } from './support/meshpilot.ts';

const GROUP = 'gateway.networking.k8s.io';
const NODE_ID = 'router~10.244.7.7~edge-0.infra~infra.svc.cluster.local';

/** One Whoami call to the gateway, with the authority (Host) the GRPCRoute matches. */
function whoami(port: number, authority: string): Promise<Whoami> {
  const client = new grpc.Client(`127.0.0.1:${String(port)}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
  return new Promise<Whoami>((resolve, reject) => {
    client.makeUnaryRequest(WHOAMI_PATH, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (error, answer) => {
      client.close();
      if (error || !answer) reject(error ?? new Error('no answer'));
      else resolve(JSON.parse(answer.toString()) as Whoami);
    });
  });
}

const httpRoute = (name: string, namespace: string, hostnames: string[], rules: unknown[]): K8sObject => ({
  apiVersion: `${GROUP}/v1`,
  kind: 'HTTPRoute',
  metadata: { name, namespace },
  spec: { parentRefs: [{ name: 'edge', namespace: 'infra' }], hostnames, rules },
});

describe('a real Envoy as the gateway of a Gateway API Gateway', () => {
  it('routes HTTPRoutes by Host and path to the backends, and gives a route from a namespace not admitted no traffic', async (t) => {
    if (!(await requireEnvoy(t))) return;
    const [frontend, cart, catalog] = await Promise.all([backend('frontend'), backend('cart'), startBackend('catalog', '127.0.0.1')]);
    t.after(async () => {
      frontend.server.close();
      cart.server.close();
      await catalog.close();
    });
    const [port, tcpPort] = [await freePort(), await freePort()];
    const dir = await MeshDir.create();
    t.after(() => dir.remove());
    await dir.write('gateway.yaml', [
      { apiVersion: `${GROUP}/v1`, kind: 'GatewayClass', metadata: { name: 'meshpilot' }, spec: { controllerName: 'meshpilot.io/gateway-controller' } },
      {
        apiVersion: `${GROUP}/v1`,
        kind: 'Gateway',
        metadata: { name: 'edge', namespace: 'infra' },
        spec: {
          gatewayClassName: 'meshpilot',
          listeners: [
            { name: 'http', port, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Selector', selector: { matchLabels: { shared: 'yes' } } } } },
            { name: 'tcp', port: tcpPort, protocol: 'TCP', allowedRoutes: { namespaces: { from: 'All' } } },
          ],
        },
      },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { shared: 'yes' } } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sandbox' } },
      // The gateway's pod, labelled as Istio labels a Gateway's pods, behind its <gateway>-<class> Service.
      pod('edge-0', 'infra', '10.244.7.7', { 'gateway.networking.k8s.io/gateway-name': 'edge' }),
      service('edge-meshpilot', 'infra', [{ name: 'http', port: 80, targetPort: port }], '10.96.8.1'),
      endpointSlice('edge-meshpilot', 'infra', { name: 'http', port }, [{ name: 'edge-0', ip: '10.244.7.7' }]),
      service('frontend', 'shop', [{ name: 'http', port: 80, targetPort: frontend.port }], '10.96.8.2'),
      endpointSlice('frontend', 'shop', { name: 'http', port: frontend.port }, [{ name: 'frontend-0', ip: '127.0.0.1' }]),
      service('cart', 'shop', [{ name: 'http', port: 80, targetPort: cart.port }], '10.96.8.3'),
      endpointSlice('cart', 'shop', { name: 'http', port: cart.port }, [{ name: 'cart-0', ip: '127.0.0.1' }]),
      service('cart', 'sandbox', [{ name: 'http', port: 80, targetPort: cart.port }], '10.96.8.4'),
      endpointSlice('cart', 'sandbox', { name: 'http', port: cart.port }, [{ name: 'cart-1', ip: '127.0.0.1' }]),
      httpRoute('storefront', 'shop', ['shop.example.com'], [
        { matches: [{ path: { type: 'PathPrefix', value: '/cart' } }], backendRefs: [{ name: 'cart', port: 80 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/basket' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 301, path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/cart' } } }] },
        { backendRefs: [{ name: 'frontend', port: 80 }] },
      ]),
      httpRoute('lab', 'sandbox', ['lab.example.com'], [{ backendRefs: [{ name: 'cart', port: 80 }] }]),
      service('catalog', 'shop', [{ name: 'grpc', port: 9090, targetPort: catalog.port }], '10.96.8.5'),
      endpointSlice('catalog', 'shop', { name: 'grpc', port: catalog.port }, [{ name: 'catalog-0', ip: '127.0.0.1' }]),
      {
        apiVersion: `${GROUP}/v1`,
        kind: 'GRPCRoute',
        metadata: { name: 'catalog', namespace: 'shop' },
        spec: { parentRefs: [{ name: 'edge', namespace: 'infra', sectionName: 'http' }], hostnames: ['grpc.example.com'], rules: [{ matches: [{ method: { service: 'meshpilot.test.Echo' } }], backendRefs: [{ name: 'catalog', port: 9090 }] }] },
      },
      { apiVersion: `${GROUP}/v1alpha2`, kind: 'TCPRoute', metadata: { name: 'raw', namespace: 'sandbox' }, spec: { parentRefs: [{ name: 'edge', namespace: 'infra', sectionName: 'tcp' }], rules: [{ backendRefs: [{ name: 'cart', port: 80 }] }] } },
    ]);
    const meshpilot = await startMeshpilot(dir.path);
    t.after(() => meshpilot.close());
    const envoy = await startEnvoy({ bootstrap: adsBootstrap({ nodeId: NODE_ID, xdsHost: '127.0.0.1', xdsPort: meshpilot.xdsPort }) });
    t.after(() => envoy.stop());

    const home = await envoy.waitFor('the gateway to answer for shop.example.com', async () => {
      const answer = await get(port, 'shop.example.com', '/').catch(() => undefined);
      return answer?.status === 200 ? answer : undefined;
    });
    assert.deepEqual(JSON.parse(home.body), { backend: 'frontend', path: '/', host: 'shop.example.com' });
    const table: [string, string, string][] = [
      ['/cart', 'cart', 'the prefix itself'],
      ['/cart/items?id=7', 'cart', 'under the prefix'],
      ['/cartoon', 'frontend', 'a prefix matches whole path elements'],
    ];
    for (const [path, want, why] of table) assert.equal((JSON.parse((await get(port, 'shop.example.com', path)).body) as { backend: string }).backend, want, why);
    // A redirect's ReplacePrefixMatch swaps whole path elements: /basket/x is /cart/x, /basket is /cart.
    const redirects: [string, string][] = [['/basket/items?id=7', '/cart/items?id=7'], ['/basket', '/cart'], ['/basket/', '/cart/']];
    for (const [path, location] of redirects) {
      const answer = await get(port, 'shop.example.com', path);
      assert.deepEqual([answer.status, answer.headers['location']], [301, `http://shop.example.com${location}`], path);
    }
    assert.equal((JSON.parse((await get(port, 'shop.example.com', '/basketball')).body) as { backend: string }).backend, 'frontend', 'a prefix redirect matches whole path elements');
    assert.equal((await get(port, 'lab.example.com', '/')).status, 404, 'the sandbox route serves nothing');
    // gRPC over the same HTTP listener (h2c), routed by its method's service.
    assert.equal((await whoami(port, 'grpc.example.com')).name, 'catalog');
    // Any Host over the TCP listener reaches the TCPRoute's backend: the gateway proxies bytes, not requests.
    const raw = await envoy.waitFor('the TCP listener to proxy', async () => {
      const answer = await get(tcpPort, 'anything.example.org', '/raw').catch(() => undefined);
      return answer?.status === 200 ? answer : undefined;
    });
    assert.deepEqual(JSON.parse(raw.body), { backend: 'cart', path: '/raw', host: 'anything.example.org' });

    type Conditions = { type: string; status: string; reason: string }[];
    const configz = (await (await meshpilot.admin('/debug/configz')).json()) as {
      routeStatuses: { name: string; parents: { conditions: Conditions }[] }[];
      gatewayStatuses: { kind: string; name: string; status: { conditions: Conditions; addresses?: { value: string }[]; listeners?: { name: string; attachedRoutes: number }[] } }[];
    };
    const lab = configz.routeStatuses.find((s) => s.name === 'lab')?.parents[0]?.conditions.find((c) => c.type === 'Accepted');
    assert.deepEqual([lab?.status, lab?.reason], ['False', 'NotAllowedByListeners']);
    // Without Kubernetes the Gateway's status is shown, not written: its address is its Service's clusterIP.
    const edge = configz.gatewayStatuses.find((s) => s.kind === 'Gateway' && s.name === 'edge')?.status;
    assert.deepEqual(edge?.conditions.map((c) => `${c.type}=${c.status}`), ['Accepted=True', 'Programmed=True']);
    assert.deepEqual(edge.addresses?.map((a) => a.value), ['10.96.8.1']);
    assert.deepEqual(edge.listeners?.map((l) => [l.name, l.attachedRoutes]), [['http', 2], ['tcp', 1]]);
    assert.deepEqual(await envoy.rejectedUpdates(), {});
  });
});
