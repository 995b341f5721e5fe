// The operator's questions, asked of a running meshpilot with real gRPC xDS clients connected:
// is every proxy in sync, which rule did a proxy reject, why does a request go where it goes,
// and what will this change do.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { str } from '../src/xds/attribution.ts';
import { EnvoyResource } from '../src/xds/resource.ts';
import { diffResources } from '../src/xds/resource-diff.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, type ResourceTypeUrl } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import type { Backend } from './support/backends.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { MeshDir, eventually, toYaml } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { parsePrometheusText } from './support/prom-text.ts';
import { PRODUCTPAGE, reviewsRoutes, startReviewsMesh, type ReviewsMesh } from './support/reviews-mesh.ts';

const LISTENER = 'reviews.default.svc.cluster.local:9080';
const WHOAMI = '/meshpilot.test.Echo/Whoami';

type Json = Record<string, unknown>;

describe("an operator's view of a running mesh", () => {
  let mesh: ReviewsMesh;
  let dir: MeshDir;
  let backends: Backend[];
  let meshpilot: TestMeshpilot;
  let client: GrpcXdsCaller;
  const logLines: Json[] = [];

  const get = async <T = Json>(path: string): Promise<T> => {
    const response = await meshpilot.admin(path);
    assert.equal(response.status, 200, `${path}: ${await response.clone().text()}`);
    return (await response.json()) as T;
  };
  const metrics = async () => parsePrometheusText(await (await meshpilot.admin('/metrics')).text());

  before(async () => {
    const log = pino({ level: 'warn' }, { write: (line: string) => logLines.push(JSON.parse(line) as Json) });
    mesh = await startReviewsMesh({ v1: 80, v3: 20 }, { log });
    ({ dir, backends, meshpilot, client } = mesh);
  });

  after(async () => {
    await mesh.close();
  });

  it('shows a proxy STALE until it ACKs, SYNCED after, and ERROR with the rejected resource and its rule after a NACK', async () => {
    const nodeId = 'sidecar~127.0.0.40~ratings-v1-0.default~default.svc.cluster.local';
    const ads = new RawAdsClient(meshpilot.xdsPort, nodeId, { GENERATOR: 'grpc' });
    type Sync = { proxies: { proxy: string; types: Record<string, { status: string; nack: { message: string; rejected: { named: boolean; resources: { name: string; rules: Json[] }[] } | null } | null }> }[] };
    const status = async (type: string) => (await get<Sync>('/debug/syncz')).proxies.find((p) => p.proxy === nodeId)?.types[type];
    try {
      ads.send({ typeUrl: LISTENER_TYPE, names: [LISTENER] });
      const lds = await ads.next((r) => r.type_url === LISTENER_TYPE);
      assert.equal((await status('lds'))?.status, 'STALE');
      ads.ack(lds, [LISTENER]);
      await eventually(async () => ((await status('lds'))?.status === 'SYNCED' ? true : undefined), 5000, 'lds SYNCED');

      ads.send({ typeUrl: ROUTE_TYPE, names: [LISTENER] });
      const rds = await ads.next((r) => r.type_url === ROUTE_TYPE);
      const rejectsBefore = (await metrics()).value('pilot_total_xds_rejects', { type: 'rds' }) ?? 0;
      ads.send({ typeUrl: ROUTE_TYPE, names: [LISTENER], nonce: rds.nonce, error: `RouteConfiguration ${LISTENER}: route default/reviews/http[1] rejected` });
      const rdsStatus = await eventually(async () => {
        const s = await status('rds');
        return s?.status === 'ERROR' ? s : undefined;
      }, 5000, 'rds ERROR');
      assert.equal((await status('lds'))?.status, 'SYNCED', 'a NACK of RDS leaves LDS in sync');
      const rejected = rdsStatus.nack?.rejected;
      assert.ok(rejected, 'syncz names what was rejected');
      assert.equal(rejected.named, true);
      assert.deepEqual(rejected.resources.map((r) => r.name), [LISTENER]);
      assert.deepEqual(rejected.resources[0]?.rules, [{ kind: 'VirtualService', namespace: 'default', name: 'reviews', httpRoute: 1 }]);

      const configz = await get<{ rules: { kind: string; name: string; rejectedBy: Json[] }[]; nacks: Json[] }>('/debug/configz');
      const vs = configz.rules.find((r) => r.kind === 'VirtualService' && r.name === 'reviews');
      assert.deepEqual(vs?.rejectedBy.map((r) => [r['proxy'], r['type'], r['resource'], r['httpRoute']]), [[nodeId, 'rds', LISTENER, 1]]);
      assert.equal(configz.rules.find((r) => r.kind === 'DestinationRule')?.rejectedBy.length, 0);
      assert.equal(configz.nacks.length, 1);

      const line = logLines.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('MP_XDS_NACK') && l['msg'].includes('VirtualService default/reviews'));
      assert.ok(line, `a log line names the rule: ${JSON.stringify(logLines.map((l) => l['msg']))}`);
      assert.match(String(line['msg']), /rejected rds "reviews\.default\.svc\.cluster\.local:9080", produced by VirtualService default\/reviews http\[1\]/);

      const after = await metrics();
      assert.equal(after.value('pilot_total_xds_rejects', { type: 'rds' }), rejectsBefore + 1);
      assert.equal(after.value('pilot_xds_rds_reject'), 1);
      const push = await get<{ proxies: { error: number; total: number } }>('/debug/push_status');
      assert.equal(push.proxies.error, 1);
    } finally {
      ads.close();
    }
    await eventually(async () => ((await status('rds')) === undefined ? true : undefined), 5000, 'the closed proxy leaves syncz');
  });

  it("explains jason's request with the route, rule, cluster and endpoint his real call reached", async () => {
    const reached = await client.whoami({ 'end-user': 'jason' });
    const query = new URLSearchParams({ proxyID: PRODUCTPAGE, authority: LISTENER, path: WHOAMI, method: 'POST' });
    query.append('header', 'end-user:jason');
    query.append('header', 'content-type:application/grpc');
    const answer = await get<Json & { clusters: { name: string; percent: number; endpoints: { address: string; port: number }[]; rules: Json[] }[] }>(`/debug/explain?${query.toString()}`);
    assert.equal(answer['outcome'], 'routed');
    assert.deepEqual(answer['listener'], { name: LISTENER, kind: 'api', httpFilters: ['envoy.filters.http.fault', 'envoy.filters.http.router'] });
    assert.deepEqual((answer['route'] as Json)['rule'], { kind: 'VirtualService', namespace: 'default', name: 'reviews', httpRoute: 0 });
    assert.deepEqual(answer['skipped'], []);
    assert.equal(answer.clusters.length, 1);
    const [cluster] = answer.clusters;
    assert.equal(cluster?.name, 'outbound|9080|v2|reviews.default.svc.cluster.local');
    assert.equal(cluster.percent, 100);
    assert.deepEqual(cluster.rules, [
      { kind: 'Service', namespace: 'default', name: 'reviews' },
      { kind: 'DestinationRule', namespace: 'default', name: 'reviews' },
    ]);
    assert.deepEqual(cluster.endpoints.map((e) => `${e.address}:${e.port}`), [reached.address], `jason reached ${reached.name}`);
    assert.deepEqual((answer['policy'] as Json)['timeout'], '0s');
  });

  it('explains everyone else: the jason route is skipped, and every backend a real client reaches is in the weighted clusters', async () => {
    const query = new URLSearchParams({ proxyID: PRODUCTPAGE, authority: LISTENER, path: WHOAMI, method: 'POST' });
    const answer = await get<Json & { skipped: { index: number; reason: string }[]; clusters: { name: string; percent: number; endpoints: { address: string; port: number }[] }[] }>(`/debug/explain?${query.toString()}`);
    assert.equal(answer.skipped.length, 1);
    assert.match(answer.skipped[0]?.reason ?? '', /end-user is absent/);
    assert.deepEqual(answer.clusters.map((c) => [c.name.split('|')[2], c.percent]), [['v1', 80], ['v3', 20]]);
    const explained = new Set(answer.clusters.flatMap((c) => c.endpoints.map((e) => `${e.address}:${e.port}`)));
    const addresses = new Set<string>();
    for (let i = 0; i < 30; i++) addresses.add((await client.whoami()).address);
    for (const address of addresses) assert.ok(explained.has(address), `${address} reached but not explained (${[...explained].join(', ')})`);
    assert.ok(!addresses.has(`${backends[1]?.host ?? ''}:${backends[1]?.port ?? 0}`), 'v2 is never reached without the header');
  });

  it('answers unknown proxies and bad parameters with stable error codes', async () => {
    const missing = await meshpilot.admin('/debug/explain?authority=x');
    assert.equal(missing.status, 400);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'MP_BAD_REQUEST');
    const unknown = await meshpilot.admin('/debug/config_dump?proxyID=nobody');
    assert.equal(unknown.status, 404);
    assert.deepEqual(await unknown.json(), { error: { code: 'MP_NOT_FOUND', message: 'no connected proxy "nobody": see /debug/syncz for connected proxies' } });
    const badHeader = await meshpilot.admin(`/debug/explain?proxyID=${encodeURIComponent(PRODUCTPAGE)}&authority=reviews:9080&header=nocolon`);
    assert.equal(badHeader.status, 400);
    assert.match(((await badHeader.json()) as { error: { message: string } }).error.message, /name:value/);
    const emptyPreview = await meshpilot.admin('/debug/preview', { method: 'POST', headers: { 'content-type': 'text/yaml' }, body: ' ' });
    assert.equal(emptyPreview.status, 400);
  });

  it('lists connections with node and watches in /debug/adsz, and the served endpoints in /debug/endpointz', async () => {
    const adsz = await get<{ connections: { proxy: string; generator: string; namespace: string; node: { metadata: Json } | null; watches: Record<string, { subscribed: unknown; resourceNames: string[] }> }[] }>('/debug/adsz');
    const mine = adsz.connections.find((c) => c.proxy === PRODUCTPAGE);
    assert.ok(mine);
    assert.equal(mine.generator, 'grpc');
    assert.equal(mine.namespace, 'default');
    assert.equal(mine.node?.metadata['GENERATOR'], 'grpc');
    assert.deepEqual(mine.watches['lds']?.subscribed, [LISTENER]);
    assert.deepEqual(Object.keys(mine.watches), ['cds', 'eds', 'lds', 'rds']);

    const endpointz = await get<{ clusters: { cluster: string; subset: string | null; endpoints: { address: string }[] }[] }>('/debug/endpointz');
    const v2 = endpointz.clusters.find((c) => c.cluster === 'outbound|9080|v2|reviews.default.svc.cluster.local');
    assert.deepEqual(v2?.endpoints.map((e) => e.address), [backends[1]?.host]);
    const all = endpointz.clusters.find((c) => c.cluster === 'outbound|9080||reviews.default.svc.cluster.local');
    assert.equal(all?.endpoints.length, 3);
  });

  it('previews a change as exactly the diff the client then receives, without applying it', async () => {
    type Dump = { configs: Json[] };
    const sentNow = async (): Promise<Record<ResourceTypeUrl, EnvoyResource[]>> => {
      const dump = await get<Dump>(`/debug/config_dump?proxyID=${encodeURIComponent(PRODUCTPAGE)}`);
      const pick = (suffix: string, list: string, inner: string, typeUrl: ResourceTypeUrl): EnvoyResource[] => {
        const section = dump.configs.find((c) => String(c['@type']).endsWith(suffix));
        return ((section?.[list] ?? []) as Json[]).map((entry) => {
          const holder = (inner.includes('.') ? (entry['active_state'] as Json)['listener'] : entry[inner]) as JsonObject;
          const { '@type': _type, ...json } = holder;
          return new EnvoyResource(typeUrl, str(json['name'] ?? json['cluster_name']), json);
        });
      };
      return {
        [CLUSTER_TYPE]: pick('ClustersConfigDump', 'dynamic_active_clusters', 'cluster', CLUSTER_TYPE),
        [ENDPOINT_TYPE]: pick('EndpointsConfigDump', 'dynamic_endpoint_configs', 'endpoint_config', ENDPOINT_TYPE),
        [LISTENER_TYPE]: pick('ListenersConfigDump', 'dynamic_listeners', 'active_state.listener', LISTENER_TYPE),
        [ROUTE_TYPE]: pick('RoutesConfigDump', 'dynamic_route_configs', 'route_config', ROUTE_TYPE),
        [SECRET_TYPE]: [],
      };
    };
    const before = await sentNow();
    const sequenceBefore = (await get<{ pushSequence: number }>('/debug/push_status')).pushSequence;
    const change = toYaml([reviewsRoutes({ v1: 0, v3: 100 })]);

    const response = await meshpilot.admin('/debug/preview', { method: 'POST', headers: { 'content-type': 'text/yaml' }, body: change });
    assert.equal(response.status, 200);
    const preview = (await response.json()) as { valid: boolean; objects: Json[]; errors: Json[]; proxies: { proxy: string; types: Record<string, unknown> }[] };
    assert.equal(preview.valid, true, JSON.stringify(preview.errors));
    assert.deepEqual(preview.objects, [{ kind: 'VirtualService', namespace: 'default', name: 'reviews', change: 'changed' }]);
    const mine = preview.proxies.find((p) => p.proxy === PRODUCTPAGE);
    assert.ok(mine, 'the client calling reviews is affected');
    assert.deepEqual(Object.keys(mine.types).sort(), ['cds', 'eds', 'rds'], 'v1 cluster and endpoints go away; the route changes');
    assert.equal((await get<{ pushSequence: number }>('/debug/push_status')).pushSequence, sequenceBefore, 'preview published nothing');
    assert.ok((await client.tally(40)).has('reviews-v1'), 'routing is unchanged after a preview');

    await dir.write('virtual-services.yaml', change);
    const short = { [CLUSTER_TYPE]: 'cds', [ENDPOINT_TYPE]: 'eds', [LISTENER_TYPE]: 'lds', [ROUTE_TYPE]: 'rds' } as const;
    const received = await eventually(async () => {
      await client.whoami();
      const now = await sentNow();
      const diff: Record<string, unknown> = {};
      for (const typeUrl of [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE] as const) {
        const d = diffResources(before[typeUrl], now[typeUrl]);
        if (d.added.length + d.removed.length + d.changed.length > 0) diff[short[typeUrl]] = d;
      }
      return JSON.stringify(diff) === JSON.stringify(mine.types) ? diff : undefined;
    }, 10_000, 'the client to receive exactly the previewed diff');
    assert.deepEqual(received, mine.types);
    assert.deepEqual([...(await client.tally(20))], [['reviews-v3', 20]]);
  });

  it('rejects an invalid change in preview with the field and the fix, and lists no proxy diff', async () => {
    const response = await meshpilot.admin('/debug/preview', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ yaml: toYaml([reviewsRoutes({ v1: 0, v3: 0 })]) }),
    });
    const preview = (await response.json()) as { valid: boolean; errors: { code: string; path: string; object: string }[]; proxies: unknown[] };
    assert.equal(preview.valid, false);
    assert.ok(preview.errors.some((e) => e.code === 'MP_RULE_INVALID' && e.path.startsWith('spec.http[1].route') && e.object === 'VirtualService default/reviews'), JSON.stringify(preview.errors));
    assert.deepEqual(preview.proxies, []);
  });

  it('exposes Prometheus metrics that parse line by line and move as pushes happen', async () => {
    const first = await metrics();
    assert.equal(first.types.get('pilot_proxy_convergence_time'), 'histogram');
    for (const name of ['pilot_xds', 'pilot_services', 'pilot_virt_services', 'pilot_xds_cds_reject', 'pilot_xds_eds_reject', 'pilot_xds_lds_reject', 'pilot_xds_rds_reject', 'process_cpu_user_seconds_total']) {
      assert.ok(first.types.has(name), `${name} is exposed`);
    }
    for (const name of ['pilot_xds_pushes', 'pilot_xds_push_time', 'pilot_proxy_queue_time', 'pilot_debounce_time', 'pilot_total_xds_rejects', 'pilot_xds_expired_nonce', 'pilot_xds_config_size_bytes', 'pilot_k8s_cfg_events']) {
      assert.ok(first.types.has(name), `${name} is exposed`);
    }
    assert.equal(first.value('pilot_xds'), meshpilot.adsServer.connections().length);
    assert.equal(first.value('pilot_services'), 1);
    assert.equal(first.value('pilot_virt_services'), 1);

    await dir.write('virtual-services.yaml', [reviewsRoutes({ v1: 30, v3: 70 })]);
    const second = await eventually(async () => {
      await client.whoami();
      const m = await metrics();
      const converged = (m.value('pilot_proxy_convergence_time_count') ?? 0) > (first.value('pilot_proxy_convergence_time_count') ?? 0);
      return converged && (m.value('pilot_xds_pushes', { type: 'rds' }) ?? 0) > (first.value('pilot_xds_pushes', { type: 'rds' }) ?? 0) ? m : undefined;
    }, 10_000, 'an RDS push and its ACK');
    assert.ok((second.value('pilot_debounce_time_count') ?? 0) > (first.value('pilot_debounce_time_count') ?? 0));
    assert.ok((second.value('pilot_proxy_queue_time_count') ?? 0) > (first.value('pilot_proxy_queue_time_count') ?? 0));
    assert.equal((second.value('pilot_k8s_cfg_events', { type: 'VirtualService', event: 'update' }) ?? 0) - (first.value('pilot_k8s_cfg_events', { type: 'VirtualService', event: 'update' }) ?? 0), 1);
    assert.ok((second.value('pilot_xds_config_size_bytes_sum', { type: 'rds' }) ?? 0) > (first.value('pilot_xds_config_size_bytes_sum', { type: 'rds' }) ?? 0));
  });

  it('has every metric the Grafana dashboard in deploy/ queries', async () => {
    const dashboard = JSON.parse(await readFile(new URL('../deploy/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const exposed = await metrics();
    const family = (name: string): string => name.replace(/_(bucket|sum|count)$/, '');
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        for (const name of expr.match(/\b(pilot|process|nodejs|meshpilot)_[a-z0-9_]+/g) ?? []) {
          assert.ok(exposed.types.has(name) || exposed.types.has(family(name)), `panel "${panel.title}" queries ${name}, which /metrics does not expose`);
        }
      }
    }
  });

  it('documents every debug route in the OpenAPI served at /docs', async () => {
    const spec = await get<{ openapi: string; paths: Record<string, unknown> }>('/docs/json');
    assert.match(spec.openapi, /^3\./);
    for (const path of ['/debug/adsz', '/debug/syncz', '/debug/registryz', '/debug/endpointz', '/debug/configz', '/debug/config_dump', '/debug/push_status', '/debug/explain', '/debug/authz', '/debug/preview', '/debug/graphz', '/debug/leaderz', '/metrics']) {
      assert.ok(path in spec.paths, `${path} is documented`);
    }
    const page = await meshpilot.admin('/docs/static/index.html');
    assert.equal(page.status, 200);
    assert.doesNotMatch(await page.text(), /https?:\/\/(?!127\.0\.0\.1|localhost)[^"']*\.(js|css)/, 'the docs page loads nothing from the network');
  });
});

describe('admin access', () => {
  it('with a non-loopback --admin-host and no token, it starts and says /debug answers only loopback clients', async () => {
    const dir = await MeshDir.create();
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const meshpilot = await startMeshpilot(dir.path, { adminHost: '0.0.0.0', log });
    try {
      assert.ok(lines.some((l) => l.includes('/debug/* and preview only loopback clients')), lines.join('\n'));
      assert.equal((await meshpilot.admin('/ready')).status, 200);
      assert.equal((await meshpilot.admin('/debug/configz')).status, 200, 'this test connects over loopback');
    } finally {
      await meshpilot.close();
      await dir.remove();
    }
  });

  it('with --admin-token, /debug needs the bearer token while health and /metrics stay open', async () => {
    const dir = await MeshDir.create();
    const meshpilot = await startMeshpilot(dir.path, { adminToken: 's3cret' });
    try {
      const denied = await meshpilot.admin('/debug/syncz');
      assert.equal(denied.status, 401);
      assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'MP_UNAUTHORIZED');
      assert.equal((await meshpilot.admin('/debug/syncz', { headers: { authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await meshpilot.admin('/debug/preview', { method: 'POST', body: 'x' })).status, 401);
      assert.equal((await meshpilot.admin('/debug/syncz', { headers: { authorization: 'Bearer s3cret' } })).status, 200);
      assert.equal((await meshpilot.admin('/ready')).status, 200);
      assert.equal((await meshpilot.admin('/metrics')).status, 200);
    } finally {
      await meshpilot.close();
      await dir.remove();
    }
  });
});
