// What an Envoy started as a gateway (`router~`) is sent: the listeners of the ports its Gateways'
// servers declare, route configurations named as Istio names them with a virtual host per host
// where a server and a bound VirtualService meet, the clusters those routes reach; never a
// sidecar's listeners. fixtures/gateway is BookInfo behind Istio's ingress gateway.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import { parseProxy } from '../src/model/proxy.ts';
import { intersectHosts, resolveGatewayName, serverHostsFor } from '../src/model/gateways.ts';
import { convertObjects } from '../src/sources/kube-objects.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy, type RenderedResources } from '../src/xds/render.ts';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { endpointSlice, pod, rule, service, tlsSecret, type K8sObject } from './support/mesh-dir.ts';
import { FIXTURE_CREDENTIAL } from './support/fixture-credential.ts';
import { connectionManager, loadFixture, resource, violations, virtualHost } from './support/rendered.ts';

const INGRESS = parseProxy('router~10.244.9.9~istio-ingressgateway-5d9c8b7f6-k2x4p.istio-system~istio-system.svc.cluster.local');
const PRODUCTPAGE = parseProxy('sidecar~10.244.2.7~productpage-v1-d5789fdfb-7kq2n.default~default.svc.cluster.local');
const productpage = 'outbound|9080||productpage.default.svc.cluster.local';
const reviews = (subset: string): string => `outbound|9080|${subset}|reviews.default.svc.cluster.local`;

const names = (rendered: RenderedResources, type: typeof LISTENER_TYPE | typeof ROUTE_TYPE | typeof CLUSTER_TYPE): string[] => rendered[type].map((r) => r.name).sort();
const hostsOf = (routeConfig: JsonObject): string[] => (routeConfig['virtual_hosts'] as { name: string; domains: string[] }[]).map((v) => `${v.name} ${v.domains.join(',')}`);
const clustersOf = (routes: JsonObject[]): unknown[] => routes.map((r) => (r['route'] as JsonObject | undefined)?.['cluster'] ?? (r['route'] as JsonObject | undefined)?.['weighted_clusters']);
const chainsOf = (listener: JsonObject): JsonObject[] => listener['filter_chains'] as JsonObject[];

describe('BookInfo behind the ingress gateway (fixtures/gateway), as the gateway Envoy gets it', () => {
  const rendered = async (proxy = INGRESS): Promise<RenderedResources> => renderForProxy(await loadFixture('gateway'), proxy);

  it('listens on the pod ports the Service ports 80 and 443 reach, and on nothing a sidecar has', async () => {
    const gateway = await rendered();
    assert.deepEqual(names(gateway, LISTENER_TYPE), ['0.0.0.0_8080', '0.0.0.0_8443']);
    assert.deepEqual(names(gateway, ROUTE_TYPE), ['http.8080', 'https.443.https.bookinfo-gateway.default']);
    const http = resource(gateway, LISTENER_TYPE, '0.0.0.0_8080');
    assert.deepEqual(http['address'], { socket_address: { address: '0.0.0.0', port_value: 8080 } });
    assert.equal(http['bind_to_port'], undefined, 'a gateway binds its ports itself');
    const hcm = connectionManager(http);
    assert.deepEqual(hcm['rds'], { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'http.8080' });
    assert.equal(hcm['use_remote_address'], true);
    assert.equal(hcm['forward_client_cert_details'], 'SANITIZE_SET');
  });

  it('terminates HTTPS for secure.bookinfo.example.com with the Secret bookinfo-credential over SDS, on its own route', async () => {
    const listener = resource(await rendered(), LISTENER_TYPE, '0.0.0.0_8443');
    assert.deepEqual((listener['listener_filters'] as JsonObject[]).map((f) => f['name']), ['envoy.filters.listener.tls_inspector']);
    const [chain, ...others] = chainsOf(listener);
    assert.equal(others.length, 0);
    assert.deepEqual(chain?.['filter_chain_match'], { server_names: ['secure.bookinfo.example.com'] });
    assert.ok(chain);
    const tls = (chain['transport_socket'] as JsonObject)['typed_config'] as JsonObject;
    assert.deepEqual((tls['common_tls_context'] as JsonObject)['tls_certificate_sds_secret_configs'], [
      { name: 'kubernetes://bookinfo-credential', sds_config: { ads: {}, resource_api_version: 'V3' } },
    ]);
    assert.notEqual(tls['require_client_certificate'], true, 'SIMPLE asks no client certificate');
    assert.equal((connectionManager(listener)['rds'] as JsonObject)['route_config_name'], 'https.443.https.bookinfo-gateway.default');
  });

  it('gives each host its bound VirtualService: BookInfo pages to productpage, jason to reviews v2, the HTTPS-only host a redirect', async () => {
    const gateway = await rendered();
    const http = resource(gateway, ROUTE_TYPE, 'http.8080');
    assert.deepEqual(hostsOf(http), ['bookinfo.example.com:80 bookinfo.example.com', 'reviews.example.com:80 reviews.example.com', 'secure.bookinfo.example.com:80 secure.bookinfo.example.com']);
    assert.equal(http['ignore_port_in_host_matching'], true);
    const pages = virtualHost(http, 'bookinfo.example.com:80')['routes'] as JsonObject[];
    assert.deepEqual(pages.map((r) => r['match']), [{ path: '/productpage' }, { prefix: '/static' }, { path: '/login' }, { path: '/logout' }, { prefix: '/api/v1/products' }]);
    assert.deepEqual(new Set(clustersOf(pages)), new Set([productpage]));
    const jason = virtualHost(http, 'reviews.example.com:80')['routes'] as JsonObject[];
    assert.deepEqual(clustersOf(jason), [reviews('v2'), reviews('v1')]);
    assert.equal(virtualHost(http, 'secure.bookinfo.example.com:80')['require_tls'], 'ALL');
    assert.equal(virtualHost(http, 'bookinfo.example.com:80')['require_tls'], undefined);
    const https = resource(gateway, ROUTE_TYPE, 'https.443.https.bookinfo-gateway.default');
    assert.deepEqual(hostsOf(https), ['secure.bookinfo.example.com:443 secure.bookinfo.example.com']);
  });

  it('gets the clusters its routes reach and no other, and breaks no validate.rules or cross-reference', async () => {
    const gateway = await rendered();
    assert.deepEqual(names(gateway, CLUSTER_TYPE), [productpage, reviews('v1'), reviews('v2')].sort());
    assert.deepEqual(violations(gateway), []);
  });

  it('leaves sidecars as they were: productpage calls reviews through the mesh binding, and knows nothing of bookinfo.example.com', async () => {
    const sidecar = await rendered(PRODUCTPAGE);
    const routes = resource(sidecar, ROUTE_TYPE, '9080');
    assert.deepEqual(clustersOf(virtualHost(routes, 'reviews.default.svc.cluster.local:9080')['routes'] as JsonObject[]), [reviews('v2'), reviews('v1')]);
    assert.ok(!JSON.stringify(routes).includes('bookinfo.example.com'));
    assert.ok(names(sidecar, LISTENER_TYPE).includes('virtualOutbound'));
  });

  it('gives a gateway Envoy whose pod no Gateway selects nothing to listen on', async () => {
    const push = await loadFixture('gateway');
    const other = renderForProxy(push, parseProxy('router~10.244.9.10~egress-0.istio-system~istio-system.svc.cluster.local', { LABELS: { istio: 'egressgateway' } }));
    assert.deepEqual([other[LISTENER_TYPE].length, other[ROUTE_TYPE].length, other[CLUSTER_TYPE].length], [0, 0, 0]);
  });
});

const NS = 'shop';
const MESH: readonly K8sObject[] = [
  service('web', NS, [{ name: 'http', port: 80, targetPort: 8080 }], '10.96.0.40'),
  service('tcp-echo', NS, [{ name: 'tcp', port: 9000, targetPort: 9000 }], '10.96.0.41'),
  pod('web-0', NS, '10.244.5.1', { app: 'web' }),
  pod('edge-0', NS, '10.244.5.9', { app: 'edge' }),
  endpointSlice('web', NS, { name: 'http', port: 8080 }, [{ name: 'web-0', ip: '10.244.5.1' }]),
  // The gateway's own Service, through which its pod's labels are known.
  service('edge', NS, [{ name: 'http', port: 80, targetPort: 8080 }], '10.96.0.42'),
  endpointSlice('edge', NS, { name: 'http', port: 8080 }, [{ name: 'edge-0', ip: '10.244.5.9' }]),
];
const EDGE = parseProxy('router~10.244.5.9~edge-0.shop~shop.svc.cluster.local');

function mesh(objects: readonly K8sObject[]): PushContext {
  const converted = convertObjects([...MESH, ...objects].map((object) => ({ object, source: { origin: 'file', location: 'mesh.yaml' } })));
  assert.deepEqual(converted.rejected.map((r) => r.issues), []);
  return buildPushContext(converted);
}

const gateway = (name: string, servers: unknown[], createdAt = '2024-01-01T00:00:00Z'): K8sObject => ({
  ...rule('Gateway', name, NS, { selector: { app: 'edge' }, servers }),
  metadata: { name, namespace: NS, creationTimestamp: createdAt },
});
const httpServer = (port: number, hosts: string[], name = 'http'): unknown => ({ port: { number: port, name, protocol: 'HTTP' }, hosts });
const toWeb = (name: string, hosts: string[], gateways: string[], namespace = NS): K8sObject => rule('VirtualService', name, namespace, { hosts, gateways, http: [{ route: [{ destination: { host: `web.${NS}.svc.cluster.local` } }] }] });

describe("Istio's host intersection and binding rules", () => {
  it('intersects as host.Names does: the narrower of each pair where one covers the other', () => {
    assert.deepEqual(intersectHosts(['foo.com', 'bar.com'], ['*.com']), ['foo.com', 'bar.com']);
    assert.deepEqual(intersectHosts(['foo.com', '*.net'], ['*.com', 'bar.net']), ['foo.com', 'bar.net']);
    assert.deepEqual(intersectHosts(['foo.com', '*.net'], ['*.bar.net']), ['*.bar.net']);
    assert.deepEqual(intersectHosts(['foo.com'], ['bar.com']), []);
    assert.deepEqual(serverHostsFor(['ns1/foo.com', '*/bar.com', 'baz.com'], 'ns1'), ['foo.com', 'bar.com', 'baz.com']);
    assert.deepEqual(serverHostsFor(['ns1/foo.com', '*/bar.com'], 'ns3'), ['bar.com']);
  });

  it('resolves gateway names as Istio does: short names in the rule namespace, ./name, legacy name.namespace', () => {
    assert.equal(resolveGatewayName('public', 'shop'), 'shop/public');
    assert.equal(resolveGatewayName('./public', 'shop'), 'shop/public');
    assert.equal(resolveGatewayName('edge/public', 'shop'), 'edge/public');
    assert.equal(resolveGatewayName('public.edge.svc.cluster.local', 'shop'), 'edge/public');
    assert.equal(resolveGatewayName('mesh', 'shop'), 'mesh');
  });

  it('serves a VirtualService of another namespace only for server hosts that namespace may take', () => {
    const push = mesh([
      gateway('public', [httpServer(8080, ['shop/*.example.com', 'blog/blog.example.com'])]),
      toWeb('store', ['store.example.com'], ['shop/public']),
      toWeb('blog', ['blog.example.com'], ['shop/public'], 'blog'),
      toWeb('news', ['news.example.com'], ['shop/public'], 'news'),
    ]);
    const routes = resource(renderForProxy(push, EDGE), ROUTE_TYPE, 'http.8080');
    assert.deepEqual(hostsOf(routes), ['blog.example.com:8080 blog.example.com', 'store.example.com:8080 store.example.com']);
    const news = push.ruleStatus.get('VirtualService/news/news');
    assert.deepEqual(news?.issues.map((i) => `${i.code} ${i.path}`), ['MP_RULE_INEFFECTIVE spec.gateways[0]']);
  });

  it('takes the gateway labels from the pod at the proxy address, and a short gateway name in the rule namespace', () => {
    const push = mesh([gateway('public', [httpServer(8080, ['*'])]), toWeb('web-any', ['*'], ['public'])]);
    const routes = resource(renderForProxy(push, EDGE), ROUTE_TYPE, 'http.8080');
    assert.deepEqual(hostsOf(routes), ['*:8080 *']);
    assert.deepEqual(push.ruleStatus.get('VirtualService/shop/web-any')?.issues ?? [], []);
  });

  it('applies a match naming gateways only on those gateways, and mesh rules only in the mesh', () => {
    const push = mesh([
      gateway('public', [httpServer(8080, ['*'])]),
      rule('VirtualService', 'web', NS, {
        hosts: ['web.example.com', 'web'],
        gateways: ['public', 'mesh'],
        http: [
          { match: [{ gateways: ['public'], uri: { prefix: '/edge' } }], route: [{ destination: { host: 'web' } }] },
          { match: [{ gateways: ['mesh'], uri: { prefix: '/mesh' } }], route: [{ destination: { host: 'web' } }] },
        ],
      }),
    ]);
    const edgeRoutes = resource(renderForProxy(push, EDGE), ROUTE_TYPE, 'http.8080');
    // Both hosts have the very same routes: one virtual host, named by the more specific (longer) host, as Istio collapses them.
    assert.deepEqual(hostsOf(edgeRoutes), ['web.shop.svc.cluster.local:8080 web.shop.svc.cluster.local,web.example.com']);
    const edge = virtualHost(edgeRoutes, 'web.shop.svc.cluster.local:8080')['routes'] as JsonObject[];
    assert.deepEqual(edge.map((r) => r['match']), [{ prefix: '/edge' }]);
    const sidecar = parseProxy('sidecar~10.244.5.1~web-0.shop~shop.svc.cluster.local');
    const inMesh = virtualHost(resource(renderForProxy(push, sidecar), ROUTE_TYPE, '80'), 'web.shop.svc.cluster.local:80')['routes'] as JsonObject[];
    assert.deepEqual(inMesh.map((r) => r['match']), [{ prefix: '/mesh' }]);
  });

  it('says when a VirtualService names a Gateway that does not exist', () => {
    const push = mesh([toWeb('store', ['store.example.com'], ['shop/missing'])]);
    assert.deepEqual(push.ruleStatus.get('VirtualService/shop/store')?.issues.map((i) => `${i.code} ${i.path}`), ['MP_REF_UNKNOWN spec.gateways[0]']);
  });

  it('keeps a port for the older Gateway when a newer one claims it with another protocol, and says so on the newer', () => {
    const push = mesh([
      gateway('public', [httpServer(8080, ['*'])]),
      gateway('raw', [{ port: { number: 8080, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] }], '2024-02-01T00:00:00Z'),
      toWeb('web-any', ['*'], ['public']),
      rule('VirtualService', 'echo', NS, { hosts: ['*'], gateways: ['raw'], tcp: [{ route: [{ destination: { host: 'tcp-echo' } }] }] }),
    ]);
    const listener = resource(renderForProxy(push, EDGE), LISTENER_TYPE, '0.0.0.0_8080');
    assert.equal(connectionManager(listener)['stat_prefix'], 'outbound_0.0.0.0_8080');
    assert.deepEqual(push.ruleStatus.get('Gateway/shop/raw')?.issues.map((i) => `${i.code} ${i.path}`), ['MP_RULE_CONFLICT spec.servers[0]']);
  });

  it('proxies a TCP server to the first tcp route bound to it', () => {
    const push = mesh([
      gateway('raw', [{ port: { number: 31400, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] }]),
      rule('VirtualService', 'echo', NS, { hosts: ['*'], gateways: ['raw'], tcp: [{ match: [{ port: 31400 }], route: [{ destination: { host: 'tcp-echo', port: { number: 9000 } } }] }] }),
    ]);
    const gatewayConfig = renderForProxy(push, EDGE);
    const filter = (chainsOf(resource(gatewayConfig, LISTENER_TYPE, '0.0.0.0_31400'))[0]?.['filters'] as JsonObject[])[0];
    assert.equal((filter?.['typed_config'] as JsonObject)['cluster'], 'outbound|9000||tcp-echo.shop.svc.cluster.local');
    assert.deepEqual(names(gatewayConfig, CLUSTER_TYPE), ['outbound|9000||tcp-echo.shop.svc.cluster.local']);
    assert.deepEqual(violations(gatewayConfig), []);
  });

  it('passes TLS through by SNI to the tls routes bound to it, an SNI host once per port', () => {
    const push = mesh([
      gateway('passthrough', [{ port: { number: 8443, name: 'tls', protocol: 'TLS' }, hosts: ['*.example.com'], tls: { mode: 'PASSTHROUGH' } }]),
      rule('VirtualService', 'vault', NS, {
        hosts: ['vault.example.com'],
        gateways: ['passthrough'],
        tls: [
          { match: [{ sniHosts: ['vault.example.com'], port: 8443 }], route: [{ destination: { host: 'web', port: { number: 80 } } }] },
          { match: [{ sniHosts: ['vault.example.com'] }], route: [{ destination: { host: 'tcp-echo' } }] },
        ],
      }),
    ]);
    const gatewayConfig = renderForProxy(push, EDGE);
    const listener = resource(gatewayConfig, LISTENER_TYPE, '0.0.0.0_8443');
    assert.deepEqual((listener['listener_filters'] as JsonObject[]).map((f) => f['name']), ['envoy.filters.listener.tls_inspector']);
    const chains = chainsOf(listener);
    assert.deepEqual(chains.map((c) => c['filter_chain_match']), [{ server_names: ['vault.example.com'] }]);
    assert.equal(chains[0]?.['transport_socket'], undefined, 'the TLS is not terminated');
    assert.equal(((chains[0]?.['filters'] as JsonObject[])[0]?.['typed_config'] as JsonObject)['cluster'], 'outbound|80||web.shop.svc.cluster.local');
    assert.deepEqual(names(gatewayConfig, ROUTE_TYPE), []);
    assert.deepEqual(violations(gatewayConfig), []);
    assert.deepEqual(push.ruleStatus.get('VirtualService/shop/vault')?.issues ?? [], []);
  });

  it('terminates MUTUAL TLS with the credential and its CA, and ISTIO_MUTUAL with the workload certificate from the agent', () => {
    const push = mesh([
      gateway('secure', [
        { port: { number: 8443, name: 'https', protocol: 'HTTPS' }, hosts: ['a.example.com'], tls: { mode: 'MUTUAL', credentialName: 'a-cert', subjectAltNames: ['client.example.com'], minProtocolVersion: 'TLSV1_2' } },
        { port: { number: 8443, name: 'https-mesh', protocol: 'HTTPS' }, hosts: ['b.example.com'], tls: { mode: 'ISTIO_MUTUAL' } },
      ]),
      toWeb('secure-web', ['a.example.com', 'b.example.com'], ['secure']),
      tlsSecret('a-cert', NS, FIXTURE_CREDENTIAL),
    ]);
    const gatewayConfig = renderForProxy(push, EDGE);
    assert.deepEqual(names(gatewayConfig, ROUTE_TYPE), ['https.8443.https-mesh.secure.shop', 'https.8443.https.secure.shop']);
    const [mutual, mesh2] = chainsOf(resource(gatewayConfig, LISTENER_TYPE, '0.0.0.0_8443')).map((c) => ((c['transport_socket'] as JsonObject)['typed_config'] as JsonObject));
    const mutualCommon = mutual?.['common_tls_context'] as JsonObject;
    assert.equal(mutual?.['require_client_certificate'], true);
    assert.deepEqual(mutualCommon['combined_validation_context'], {
      default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'client.example.com' } }] },
      validation_context_sds_secret_config: { name: 'kubernetes://a-cert-cacert', sds_config: { ads: {}, resource_api_version: 'V3' } },
    });
    assert.deepEqual(mutualCommon['tls_params'], { tls_minimum_protocol_version: 'TLSv1_2' });
    const meshCommon = mesh2?.['common_tls_context'] as JsonObject;
    assert.deepEqual((meshCommon['tls_certificate_sds_secret_configs'] as JsonObject[]).map((s) => s['name']), ['default']);
    assert.deepEqual(violations(gatewayConfig), []);
  });
});
