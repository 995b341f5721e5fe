// The operator commands, run as a user runs them (the real `meshpilot` binary) against a live
// meshpilot with a real gRPC xDS client: tables for people, -o json for scripts, coded errors.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import type { Backend } from './support/backends.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { meshpilotCli } from './support/meshpilot-cli.ts';
import { MeshDir, eventually, toYaml } from './support/mesh-dir.ts';
import type { TestMeshpilot } from './support/meshpilot.ts';
import { PRODUCTPAGE, reviewsRoutes, startReviewsMesh, type ReviewsMesh } from './support/reviews-mesh.ts';

const LISTENER = 'reviews.default.svc.cluster.local:9080';
const RATINGS = 'sidecar~127.0.0.42~ratings-v1-0.default~default.svc.cluster.local';

describe('operator commands over the admin API', () => {
  let mesh: ReviewsMesh;
  let backends: Backend[];
  let meshpilot: TestMeshpilot;
  let client: GrpcXdsCaller;
  let ads: RawAdsClient;
  const cli = (...args: string[]) => meshpilotCli([...args, '--admin', meshpilot.adminUrl]);

  before(async () => {
    mesh = await startReviewsMesh({ v1: 80, v3: 20 });
    ({ backends, meshpilot, client } = mesh);
    ads = new RawAdsClient(meshpilot.xdsPort, RATINGS, { GENERATOR: 'grpc' });
    ads.send({ typeUrl: ROUTE_TYPE, names: [LISTENER] });
    const rds = await ads.next((r) => r.type_url === ROUTE_TYPE);
    ads.send({ typeUrl: ROUTE_TYPE, names: [LISTENER], nonce: rds.nonce, error: `RouteConfiguration ${LISTENER} rejected: route default/reviews/http[0] invalid` });
    await eventually(async () => {
      const body = (await (await meshpilot.admin('/debug/push_status')).json()) as { proxies: { synced: number; error: number } };
      return body.proxies.synced === 1 && body.proxies.error === 1 ? true : undefined;
    }, 5000, 'one proxy synced, one rejecting');
  });

  after(async () => {
    ads.close();
    await mesh.close();
  });

  it('proxy-status prints a table of every proxy, its JSON for scripts, and one proxy with what it rejected', async () => {
    const [table, json, one] = await Promise.all([cli('proxy-status'), cli('proxy-status', '-o', 'json'), cli('proxy-status', 'ratings-v1-0')]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^NAME\s+TYPE\s+CDS\s+LDS\s+EDS\s+RDS\s+VERSION\s+AGE$/);
    assert.match(lines.find((l) => l.startsWith(PRODUCTPAGE)) ?? '', /proxyless gRPC\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+push \d+\s+\d+s$/);
    assert.match(lines.find((l) => l.startsWith(RATINGS)) ?? '', /NOT SENT\s+NOT SENT\s+NOT SENT\s+ERROR/);
    const parsed = JSON.parse(json.stdout) as { proxies: { proxy: string }[] };
    assert.deepEqual(parsed.proxies.map((p) => p.proxy).sort(), [PRODUCTPAGE, RATINGS].sort());
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /RDS {2}ERROR/);
    assert.match(one.stdout, /^ {5}- reviews\.default\.svc\.cluster\.local:9080 {2}from VirtualService default\/reviews http\[0\]$/m, 'narrowed to the route the NACK names');
  });

  it('proxy-config shows the routes with their rules, the clusters, listeners and endpoints a proxy was sent', async () => {
    const [routes, clusters, listeners, endpoints] = await Promise.all([
      cli('proxy-config', 'route', PRODUCTPAGE),
      cli('proxy-config', 'cluster', PRODUCTPAGE),
      cli('proxy-config', 'listener', PRODUCTPAGE, '-o', 'json'),
      cli('proxy-config', 'endpoint', PRODUCTPAGE),
    ]);
    assert.equal(routes.code, 0, routes.stderr);
    assert.match(routes.stdout, /\/\* \[end-user=jason\]\s+outbound\|9080\|v2\|reviews\.default\.svc\.cluster\.local\s+VirtualService default\/reviews http\[0\]/);
    assert.match(routes.stdout, /outbound\|9080\|v1\|reviews\.default\.svc\.cluster\.local 80, outbound\|9080\|v3\|reviews\.default\.svc\.cluster\.local 20\s+VirtualService default\/reviews http\[1\]/);
    assert.deepEqual(
      clusters.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/\s{3,}/).slice(0, 3)),
      ['v1', 'v2', 'v3'].map((v) => ['reviews.default.svc.cluster.local', '9080', v]),
    );
    assert.deepEqual((JSON.parse(listeners.stdout) as { name: string }[]).map((l) => l.name), [LISTENER]);
    for (const b of backends) assert.match(endpoints.stdout, new RegExp(`${b.host.replaceAll('.', '\\.')}:${b.port}\\s+HEALTHY`));
  });

  it('explain names the route, rule, cluster and the endpoint the real client reaches', async () => {
    const reached = await client.whoami({ 'end-user': 'jason' });
    const run = await cli('explain', PRODUCTPAGE, `${LISTENER}/meshpilot.test.Echo/Whoami`, '-H', 'end-user: jason', '-X', 'POST');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^request {4}POST reviews\.default\.svc\.cluster\.local:9080\/meshpilot\.test\.Echo\/Whoami {2}\(end-user: jason\)$/m);
    assert.match(run.stdout, /^route {6}#0 default\/reviews\/http\[0\] {3}\[VirtualService default\/reviews http\[0\]\]$/m);
    assert.match(run.stdout, /^cluster {4}100% {2}outbound\|9080\|v2\|reviews\.default\.svc\.cluster\.local/m);
    assert.match(run.stdout, new RegExp(`^ {13}${reached.address.replaceAll('.', '\\.')} {2}HEALTHY`, 'm'));
    const json = await cli('explain', PRODUCTPAGE, `http://${LISTENER}/`, '-o', 'json');
    const answer = JSON.parse(json.stdout) as { skipped: { index: number }[]; clusters: { percent: number }[] };
    assert.deepEqual(answer.skipped.map((s) => s.index), [0]);
    assert.deepEqual(answer.clusters.map((c) => c.percent), [80, 20]);
  });

  it('preview shows the per-proxy changes of a file and exits 1 for an invalid one', async () => {
    // Outside the served directory: previewing must not need the file to be applied.
    const files = await MeshDir.create();
    await files.write('ok.yaml', toYaml([reviewsRoutes({ v1: 0, v3: 100 })]));
    await files.write('bad.yaml', toYaml([reviewsRoutes({ v1: 0, v3: 0 })]));
    const [ok, bad] = await Promise.all([cli('preview', `${files.path}/ok.yaml`), cli('preview', `${files.path}/bad.yaml`)]);
    await files.remove();
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^changed {3}VirtualService default\/reviews$/m);
    assert.match(ok.stdout, /^ {2}CDS - outbound\|9080\|v1\|reviews\.default\.svc\.cluster\.local$/m);
    assert.match(ok.stdout, /^ {2}RDS ~ reviews\.default\.svc\.cluster\.local:9080$/m);
    assert.match(ok.stdout, /route\.cluster: \(none\) -> "outbound\|9080\|v3\|reviews\.default\.svc\.cluster\.local"/);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^ERROR {3}MP_RULE_INVALID: VirtualService default\/reviews: spec\.http\[1\]\.route/m);
  });

  it('says which admin API it could not reach, and which proxy is unknown, with codes and exit 1', async () => {
    const [unreachable, unknown] = await Promise.all([
      meshpilotCli(['proxy-status', '--admin', 'http://127.0.0.1:1']),
      cli('proxy-config', 'cluster', 'nobody'),
    ]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /^MP_ADMIN_UNREACHABLE: cannot reach the admin API at http:\/\/127\.0\.0\.1:1 .*--admin/);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^MP_NOT_FOUND: no connected proxy "nobody"/);
  });
});
