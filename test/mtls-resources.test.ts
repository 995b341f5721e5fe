// What each proxy of fixtures/security-mtls is sent for mutual TLS, as Istio shapes it: inbound
// chains per PeerAuthentication mode, ISTIO_MUTUAL and auto mTLS on outbound clusters, endpoint
// metadata for transport socket matching, and the gRPC forms (gRFC A29/A36).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProxy } from '../src/model/proxy.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { generate } from '../src/xds/generate/index.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../src/xds/type-urls.ts';
import { fixturePush, fixtures } from './support/fixture-workloads.ts';
import { violations } from './support/rendered.ts';

const fixture = fixtures().find((f) => f.name === 'security-mtls');
const sidecar = (app: string, ip: string): string => `sidecar~${ip}~${app}-v1.default~default.svc.cluster.local`;

interface Chain {
  readonly name?: string;
  readonly filter_chain_match?: { destination_port?: number; transport_protocol?: string; application_protocols?: string[] };
  readonly transport_socket?: { typed_config: JsonObject };
}

async function inbound(nodeId: string): Promise<{ chains: Chain[]; listenerFilters: string[] }> {
  assert.ok(fixture);
  const rendered = renderForProxy(await fixturePush(fixture), parseProxy(nodeId));
  const listener = rendered[LISTENER_TYPE].find((l) => l.name === 'virtualInbound')?.json as unknown as { filter_chains: Chain[]; listener_filters: { name: string }[] };
  return { chains: listener.filter_chains, listenerFilters: listener.listener_filters.map((f) => f.name) };
}

/** Each chain as [name, port, transport, whether it terminates mTLS]. */
function shapes(chains: readonly Chain[]): (string | number | boolean | undefined)[][] {
  return chains.map((c) => [c.name, c.filter_chain_match?.destination_port, c.filter_chain_match?.transport_protocol, c.transport_socket !== undefined]);
}

describe('inbound chains per PeerAuthentication mode', () => {
  it('reviews under the mesh-wide STRICT takes only TLS, on its port and on the catch-all', async () => {
    const { chains, listenerFilters } = await inbound(sidecar('reviews', '10.244.2.12'));
    assert.deepEqual(shapes(chains), [['0.0.0.0_9080', 9080, 'tls', true], ['virtualInbound-catchall', undefined, 'tls', true]]);
    assert.deepEqual(listenerFilters, ['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector']);
    const context = chains[0]?.transport_socket?.typed_config as { require_client_certificate: boolean; common_tls_context: JsonObject };
    assert.equal(context.require_client_certificate, true);
    assert.deepEqual(context.common_tls_context['alpn_protocols'], ['h2', 'http/1.1']);
    const text = JSON.stringify(context);
    assert.ok(text.includes('"name":"default"') && text.includes('"name":"ROOTCA"') && text.includes('"cluster_name":"sds-grpc"'), text);
  });

  it('ratings, PERMISSIVE on its port, tells mesh mTLS (by ALPN) from plaintext; its catch-all stays STRICT', async () => {
    const { chains } = await inbound(sidecar('ratings', '10.244.2.14'));
    assert.deepEqual(shapes(chains), [['0.0.0.0_9080', 9080, 'tls', true], ['0.0.0.0_9080', 9080, 'raw_buffer', false], ['virtualInbound-catchall', undefined, 'tls', true]]);
    assert.deepEqual(chains[0]?.filter_chain_match?.application_protocols, ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2']);
  });

  it("reviews' application is told who called: x-forwarded-client-cert with the caller's SPIFFE ID, as Istio's sidecar sets it", async () => {
    const { chains } = await inbound(sidecar('reviews', '10.244.2.12'));
    const hcm = (chains[0] as { filters?: { typed_config: JsonObject }[] } | undefined)?.filters?.[0]?.typed_config;
    assert.equal(hcm?.['forward_client_cert_details'], 'APPEND_FORWARD');
    assert.deepEqual(hcm['set_current_client_cert_details'], { subject: true, uri: true, dns: true });
  });

  it('details, DISABLE, takes plaintext as a sidecar without policy does, and needs no tls_inspector', async () => {
    const { chains, listenerFilters } = await inbound(sidecar('details', '10.244.2.11'));
    assert.deepEqual(shapes(chains), [['0.0.0.0_9080', 9080, undefined, false], ['virtualInbound-catchall', undefined, undefined, false]]);
    assert.deepEqual(listenerFilters, ['envoy.filters.listener.original_dst']);
  });
});

describe('outbound mTLS', () => {
  it('productpage verifies each service as its pods\' service accounts: ISTIO_MUTUAL for reviews, auto mTLS for ratings', async () => {
    assert.ok(fixture);
    const push = await fixturePush(fixture);
    const clusters = generate(CLUSTER_TYPE, push, parseProxy(sidecar('productpage', '10.244.2.10')));
    const reviews = clusters.find((c) => c.name === 'outbound|9080||reviews.default.svc.cluster.local')?.json;
    assert.match(JSON.stringify(reviews?.['transport_socket']), /"san_type":"URI","matcher":\{"exact":"spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-reviews"\}/);
    const ratings = clusters.find((c) => c.name === 'outbound|9080||ratings.default.svc.cluster.local')?.json;
    assert.equal(ratings?.['transport_socket'], undefined);
    const matches = ratings?.['transport_socket_matches'] as { name: string; match: JsonObject }[];
    assert.deepEqual(matches.map((m) => [m.name, m.match]), [['tlsMode-istio', { tlsMode: 'istio' }], ['tlsMode-disabled', {}]]);
    assert.match(JSON.stringify(matches[0]), /"sni":"outbound_\.9080_\._\.ratings\.default\.svc\.cluster\.local"/);
  });

  it('endpoints with an identity carry the metadata the tlsMode-istio match selects', async () => {
    assert.ok(fixture);
    const push = await fixturePush(fixture);
    const [assignment] = generate(ENDPOINT_TYPE, push, parseProxy(sidecar('productpage', '10.244.2.10')), ['outbound|9080||ratings.default.svc.cluster.local']);
    assert.deepEqual((assignment?.json as { endpoints: { lb_endpoints: { metadata: JsonObject }[] }[] }).endpoints[0]?.lb_endpoints[0]?.metadata, {
      filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } },
    });
  });

  it('a client without an identity of its own gets no auto mTLS (it has no certificate to present)', async () => {
    assert.ok(fixture);
    const push = await fixturePush(fixture);
    const clusters = generate(CLUSTER_TYPE, push, parseProxy('sidecar~10.244.9.9~outsider.default~default.svc.cluster.local'));
    assert.ok(clusters.every((c) => c.json['transport_socket_matches'] === undefined));
  });

  it('a proxyless gRPC client with an identity gets an A29 UpstreamTlsContext from its certificate provider', async () => {
    assert.ok(fixture);
    const push = await fixturePush(fixture);
    const grpcClient = parseProxy(sidecar('productpage', '10.244.2.10'), { GENERATOR: 'grpc', LABELS: { app: 'productpage', 'security.istio.io/tlsMode': 'istio' } });
    const ratings = generate(CLUSTER_TYPE, push, grpcClient).find((c) => c.name === 'outbound|9080||ratings.default.svc.cluster.local')?.json;
    const context = (ratings?.['transport_socket'] as { typed_config: { common_tls_context: JsonObject } }).typed_config.common_tls_context;
    assert.deepEqual(context, {
      tls_certificate_provider_instance: { instance_name: 'default', certificate_name: 'default' },
      validation_context: { match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings' }], ca_certificate_provider_instance: { instance_name: 'default', certificate_name: 'ROOTCA' } },
    });
  });

  it('a gRPC server asks for its listener by Istio\'s name and gets its address, one mTLS chain and a route to itself', async () => {
    assert.ok(fixture);
    const push = await fixturePush(fixture);
    const name = 'xds.istio.io/grpc/lds/inbound/0.0.0.0:9080';
    const [listener] = generate(LISTENER_TYPE, push, parseProxy(sidecar('reviews', '10.244.2.12'), { GENERATOR: 'grpc' }), [name]);
    const json = listener?.json as { address: JsonObject; filter_chains: { name: string; filter_chain_match?: unknown; transport_socket?: unknown }[] };
    assert.deepEqual(json.address, { socket_address: { address: '0.0.0.0', port_value: 9080 } });
    assert.deepEqual(json.filter_chains.map((c) => [c.name, c.filter_chain_match, c.transport_socket !== undefined]), [['inbound-mtls', undefined, true]]);
    assert.match(JSON.stringify(json), /"non_forwarding_action":\{\}/);
    assert.deepEqual(generate(LISTENER_TYPE, push, parseProxy(sidecar('reviews', '10.244.2.12'), { GENERATOR: 'grpc' }), ['xds.istio.io/grpc/lds/inbound/0.0.0.0:7777']), []);
  });
});

describe("what mTLS adds breaks no validate.rules and no cross-reference", () => {
  it('for sidecars in every mode, a gRPC client with an identity, and gRPC server listeners in both forms', async () => {
    assert.ok(fixture);
    const push = await fixturePush(fixture);
    const problems: string[] = [];
    for (const [app, ip] of [['reviews', '10.244.2.12'], ['ratings', '10.244.2.14'], ['details', '10.244.2.11'], ['productpage', '10.244.2.10']] as const) {
      problems.push(...violations(renderForProxy(push, parseProxy(sidecar(app, ip)))));
    }
    const grpcClient = parseProxy(sidecar('productpage', '10.244.2.10'), { GENERATOR: 'grpc', LABELS: { app: 'productpage', 'security.istio.io/tlsMode': 'istio' } });
    const targets = push.services.map((s) => `${s.hostname}:9080`);
    problems.push(...violations(renderForProxy(push, grpcClient, targets)));
    for (const [app, ip] of [['reviews', '10.244.2.12'], ['details', '10.244.2.11']] as const) {
      const server = generate(LISTENER_TYPE, push, parseProxy(sidecar(app, ip), { GENERATOR: 'grpc' }), ['xds.istio.io/grpc/lds/inbound/0.0.0.0:9080']);
      assert.equal(server.length, 1);
      problems.push(...violations({ [CLUSTER_TYPE]: [], [ENDPOINT_TYPE]: [], [LISTENER_TYPE]: server, [ROUTE_TYPE]: [], [SECRET_TYPE]: [] }));
    }
    assert.deepEqual(problems, []);
  });
});
