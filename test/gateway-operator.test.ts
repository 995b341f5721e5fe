// An operator looks at the ingress gateway of fixtures/gateway (BookInfo behind Istio's
// bookinfo-gateway) while it is connected: explain walks a request through its listener, filter
// chain, route configuration, virtual host, route, cluster and endpoints naming the Gateway and
// VirtualService behind each step; proxy-status and /metrics count it as a router; the graph
// shows it as an entry point.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawAdsClient } from './support/ads-client.ts';
import { meshpilotCli } from './support/meshpilot-cli.ts';
import { eventually } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { parsePrometheusText } from './support/prom-text.ts';
import { SotwFollower } from './support/xds-follower.ts';

const FIXTURE = new URL('../fixtures/gateway', import.meta.url).pathname;
const GATEWAY = 'router~10.244.9.9~istio-ingressgateway-5d9c8b7f6-k2x4p.istio-system~istio-system.svc.cluster.local';
const GRPC_CLIENT = 'sidecar~10.244.3.3~ratings-v1-0.default~default.svc.cluster.local';

describe('operating an ingress gateway', () => {
  let meshpilot: TestMeshpilot;
  let gateway: SotwFollower;
  let grpc: RawAdsClient;
  const cli = (...args: string[]) => meshpilotCli([...args, '--admin', meshpilot.adminUrl]);

  before(async () => {
    meshpilot = await startMeshpilot(FIXTURE);
    gateway = new SotwFollower(meshpilot.xdsPort, GATEWAY);
    grpc = new RawAdsClient(meshpilot.xdsPort, GRPC_CLIENT, { GENERATOR: 'grpc' });
    grpc.send({ typeUrl: 'type.googleapis.com/envoy.config.listener.v3.Listener', names: ['reviews.default.svc.cluster.local:9080'] });
    await eventually(async () => {
      const sync = await meshpilot.proxySync(GATEWAY);
      return sync && Object.values(sync).every((t) => t.status === 'SYNCED') ? true : undefined;
    }, 10_000, 'the gateway synced on every type');
  });

  after(async () => {
    gateway.close();
    grpc.close();
    await meshpilot.close();
  });

  it('explain follows http://bookinfo.example.com/productpage from port 80 to productpage, naming the Gateway server and the VirtualService', async () => {
    const run = await cli('explain', GATEWAY, 'http://bookinfo.example.com/productpage');
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n');
    assert.ok(lines.includes('listener   0.0.0.0_8080 (http)'), run.stdout);
    assert.ok(lines.includes('chain      #0 any SNI, plaintext'), run.stdout);
    assert.ok(lines.includes('gateway    servers[0] HTTP 80, hosts bookinfo.example.com reviews.example.com   [Gateway default/bookinfo-gateway]'), run.stdout);
    assert.ok(lines.includes('routes     http.8080'), run.stdout);
    assert.match(run.stdout, /^vhost {6}bookinfo\.example\.com:80, domain "bookinfo\.example\.com" \(exact\)$/m);
    assert.match(run.stdout, /^route {6}#0 \S*\s+\[VirtualService default\/bookinfo http\[0\]\]$/m);
    assert.match(run.stdout, /^cluster {4}100% {2}outbound\|9080\|\|productpage\.default\.svc\.cluster\.local {3}\[Service default\/productpage\]$/m);
    assert.match(run.stdout, /^ {13}10\.244\.\d+\.\d+:9080 {2}HEALTHY/m, 'with the endpoints behind it');
    assert.match(run.stdout, /=> route .* \(VirtualService default\/bookinfo http\[0\]\) .* sends it to outbound\|9080\|\|productpage\.default\.svc\.cluster\.local, through Gateway default\/bookinfo-gateway servers\[0\]$/m);
  });

  it('explain picks the HTTPS filter chain by SNI on port 443 and names its route configuration', async () => {
    const run = await cli('explain', GATEWAY, 'https://secure.bookinfo.example.com/productpage', '-o', 'json');
    assert.equal(run.code, 0, run.stderr);
    const answer = JSON.parse(run.stdout) as {
      outcome: string;
      listener: { name: string; filterChain: { serverNames: string[]; terminatesTls: boolean } };
      gateway: { rule: { kind: string; namespace: string; name: string }; server: number; tlsMode: string; credentialName: string };
      routeConfig: { name: string; sent: boolean };
      route: { rule: { kind: string; name: string } };
      clusters: { name: string; endpoints: unknown[] }[];
    };
    assert.equal(answer.outcome, 'routed');
    assert.equal(answer.listener.name, '0.0.0.0_8443', 'Service port 443 reaches the pod on 8443');
    assert.deepEqual(answer.listener.filterChain, { index: 0, serverNames: ['secure.bookinfo.example.com'], terminatesTls: true });
    assert.deepEqual([answer.gateway.rule, answer.gateway.server, answer.gateway.tlsMode, answer.gateway.credentialName], [{ kind: 'Gateway', namespace: 'default', name: 'bookinfo-gateway' }, 2, 'SIMPLE', 'bookinfo-credential']);
    assert.deepEqual(answer.routeConfig, { name: 'https.443.https.bookinfo-gateway.default', sent: true });
    assert.deepEqual([answer.route.rule.kind, answer.route.rule.name], ['VirtualService', 'bookinfo']);
    assert.equal(answer.clusters[0]?.name, 'outbound|9080||productpage.default.svc.cluster.local');
    assert.ok(answer.clusters.every((c) => c.endpoints.length > 0), 'with its endpoints');
  });

  it('explain says an HTTPS-only host over plain HTTP gets a 301, and a host no server exposes a 404', async () => {
    const explain = async (scheme: string, authority: string): Promise<{ outcome: string; summary: string }> =>
      (await (await meshpilot.admin(`/debug/explain?${new URLSearchParams({ proxyID: GATEWAY, scheme, authority, path: '/cart' }).toString()}`)).json()) as { outcome: string; summary: string };
    const [redirect, unserved, wrongSni] = await Promise.all([
      cli('explain', GATEWAY, 'http://secure.bookinfo.example.com/productpage'),
      explain('http', 'shop.example.com'),
      explain('https', 'shop.example.com'),
    ]);
    assert.equal(redirect.code, 0, redirect.stderr);
    assert.match(redirect.stdout, /^gateway {4}servers\[1\] HTTP 80, hosts secure\.bookinfo\.example\.com, httpsRedirect {3}\[Gateway default\/bookinfo-gateway\]$/m);
    assert.match(redirect.stdout, /=> virtual host secure\.bookinfo\.example\.com:80 requires TLS \(Gateway default\/bookinfo-gateway servers\[1\] has httpsRedirect\): the proxy answers 301 with location https:\/\/secure\.bookinfo\.example\.com\/productpage$/m);
    assert.equal(unserved.outcome, 'no_virtual_host');
    assert.match(unserved.summary, /^no Gateway server on this port exposes host shop\.example\.com \(route configuration "http\.8080" serves [^)]*bookinfo\.example\.com[^)]*\): the proxy answers 404$/);
    assert.equal(wrongSni.outcome, 'no_filter_chain');
    assert.equal(wrongSni.summary, 'no filter chain of listener 0.0.0.0_8443 takes SNI shop.example.com (its chains take SNI: secure.bookinfo.example.com): Envoy closes the connection');
  });

  it('proxy-status lists the gateway as a router beside the proxyless gRPC client, and /metrics counts proxies by type', async () => {
    await eventually(async () => ((await meshpilot.proxySync(GRPC_CLIENT)) ? true : undefined), 5000, 'the gRPC client connected');
    const [table, json] = await Promise.all([cli('proxy-status'), cli('proxy-status', '-o', 'json')]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^NAME\s+TYPE\s+CDS\s+LDS\s+EDS\s+RDS\s+VERSION\s+AGE$/);
    assert.match(lines.find((l) => l.startsWith(GATEWAY)) ?? '', /^\S+\s+router\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s/);
    assert.match(lines.find((l) => l.startsWith(GRPC_CLIENT)) ?? '', /^\S+\s+proxyless gRPC\s/);
    const parsed = JSON.parse(json.stdout) as { proxies: { proxy: string; kind: string }[] };
    assert.deepEqual(parsed.proxies.map((p) => [p.proxy, p.kind]).sort(), [[GATEWAY, 'router'], [GRPC_CLIENT, 'proxyless-grpc']].sort());
    const metrics = parsePrometheusText(await (await meshpilot.admin('/metrics')).text());
    assert.equal(metrics.value('pilot_xds'), 2, 'the total keeps its name');
    assert.equal(metrics.value('meshpilot_xds_proxies', { type: 'router' }), 1);
    assert.equal(metrics.value('meshpilot_xds_proxies', { type: 'proxyless-grpc' }), 1);
    assert.equal(metrics.value('meshpilot_xds_proxies', { type: 'sidecar' }), 0);
  });

  it('the graph shows the gateway as an entry point with an edge to each service its routes reach', async () => {
    const graph = (await (await meshpilot.admin('/debug/graphz')).json()) as { nodes: { id: string; kind: string; label: string }[]; edges: { from: string; to: string; kind: string; rule: { kind: string; name: string } | null }[] };
    const node = graph.nodes.find((n) => n.id === `proxy:${GATEWAY}`);
    assert.equal(node?.kind, 'gateway');
    const reached = graph.edges.filter((e) => e.from === node.id).map((e) => [e.to, e.kind, e.rule?.name]).sort();
    assert.deepEqual(reached, [
      ['service:productpage.default.svc.cluster.local', 'enters', 'bookinfo'],
      ['service:reviews.default.svc.cluster.local', 'enters', 'reviews'],
    ]);
  });
});
