// `meshpilot render` and `meshpilot analyze` as a user runs them: the real command, offline,
// on fixtures and on a `kubectl get ... -A -o yaml` dump.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { MeshDir, endpointSlice, pod, rule, service } from './support/mesh-dir.ts';

const BIN = new URL('../bin/meshpilot.js', import.meta.url).pathname;
const ROOT = new URL('..', import.meta.url).pathname;
const PRODUCTPAGE = 'sidecar~10.244.0.20~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => { resolve({ code, stdout, stderr }); }));
}

type Dump = { configs: ({ '@type': string } & Record<string, unknown>)[] };

function config(dump: Dump, kind: string): Record<string, unknown> {
  const found = dump.configs.find((c) => c['@type'] === `type.googleapis.com/envoy.admin.v3.${kind}`);
  assert.ok(found, `no ${kind} in ${dump.configs.map((c) => c['@type']).join(', ')}`);
  return found;
}

describe('meshpilot render', () => {
  it('prints the RouteRule canary routes a sidecar would get, as config_dump JSON', async () => {
    const { code, stdout } = await run(['render', '--config-dir', 'fixtures/routerule-canary', '--node-id', PRODUCTPAGE, '--type', 'rds']);
    assert.equal(code, 0);
    const dump = JSON.parse(stdout) as Dump;
    assert.equal(dump.configs.length, 1);
    const routes = config(dump, 'RoutesConfigDump')['dynamic_route_configs'] as { route_config: { name: string } }[];
    assert.deepEqual(routes.map((r) => r.route_config.name), ['9080']);
    assert.match(stdout, /"weight": 95/);
    assert.match(stdout, /outbound\|9080\|version-canary-version\|reviews\.default\.svc\.cluster\.local/);
  });

  it("prints an ingress gateway's listeners and routes for fixtures/gateway: its ports, Istio's route names, no sidecar listener", async () => {
    const { code, stdout } = await run(['render', '--config-dir', 'fixtures/gateway', '--node-id', 'router~10.244.9.9~istio-ingressgateway-5d9c8b7f6-k2x4p.istio-system~istio-system.svc.cluster.local']);
    assert.equal(code, 0);
    const dump = JSON.parse(stdout) as Dump;
    const listeners = config(dump, 'ListenersConfigDump')['dynamic_listeners'] as { name: string }[];
    assert.deepEqual(listeners.map((l) => l.name), ['0.0.0.0_8080', '0.0.0.0_8443']);
    const routes = config(dump, 'RoutesConfigDump')['dynamic_route_configs'] as { route_config: { name: string } }[];
    assert.deepEqual(routes.map((r) => r.route_config.name), ['http.8080', 'https.443.https.bookinfo-gateway.default']);
  });

  it('applies --mesh-config: the REGISTRY_ONLY sidecar\'s virtualOutbound drops to BlackHoleCluster', async () => {
    const { code, stdout } = await run([
      'render', '--config-dir', 'fixtures/registry-only', '--mesh-config', 'fixtures/registry-only/istio-configmap.yaml', '--node-id', PRODUCTPAGE,
    ]);
    assert.equal(code, 0);
    const dump = JSON.parse(stdout) as Dump;
    assert.deepEqual(dump.configs.map((c) => c['@type'].split('.').pop()), ['ClustersConfigDump', 'EndpointsConfigDump', 'ListenersConfigDump', 'RoutesConfigDump']);
    const listeners = config(dump, 'ListenersConfigDump')['dynamic_listeners'] as { name: string; active_state: { listener: Record<string, unknown> } }[];
    const outbound = listeners.find((l) => l.name === 'virtualOutbound');
    assert.match(JSON.stringify(outbound?.active_state.listener), /"cluster":"BlackHoleCluster"/);
    assert.ok(listeners.some((l) => l.name === 'virtualInbound'));
  });

  it('renders what a proxyless gRPC client gets for one target', async () => {
    const { code, stdout } = await run([
      'render', '--config-dir', 'fixtures/service-entry', '--node-id', 'grpc-client', '--generator', 'grpc', '--target', 'partner.example.com:443', '--type', 'cds',
    ]);
    assert.equal(code, 0);
    const clusters = config(JSON.parse(stdout) as Dump, 'ClustersConfigDump')['dynamic_active_clusters'] as { cluster: { name: string; type: string } }[];
    assert.deepEqual(clusters.map((c) => [c.cluster.name, c.cluster.type]), [['outbound|443||partner.example.com', 'LOGICAL_DNS']]);
  });

  it('refuses a directory that does not exist with a coded error', async () => {
    const { code, stderr, stdout } = await run(['render', '--config-dir', '/nonexistent/meshpilot', '--node-id', PRODUCTPAGE]);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /MP_CONFIG: --config-dir \/nonexistent\/meshpilot does not exist/);
  });
});

describe('a kubectl dump of a cluster', () => {
  let dir: MeshDir;
  before(async () => {
    dir = await MeshDir.create();
    // What `kubectl get svc,endpointslices,pods,virtualservices,destinationrules -A -o yaml` prints: one List.
    const items = [
      service('reviews', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.30'),
      pod('reviews-v1-0', 'default', '10.244.1.5', { app: 'reviews', version: 'v1' }),
      pod('reviews-v2-0', 'default', '10.244.1.6', { app: 'reviews', version: 'v2' }),
      endpointSlice('reviews', 'default', { name: 'http', port: 9080 }, [{ name: 'reviews-v1-0', ip: '10.244.1.5' }, { name: 'reviews-v2-0', ip: '10.244.1.6' }]),
      rule('VirtualService', 'reviews', 'default', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] }),
      rule('DestinationRule', 'reviews', 'default', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
    ];
    await dir.write('cluster-dump.yaml', stringify({ apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } }));
  });
  after(async () => {
    await dir.remove();
  });

  it('renders from the dump with no cluster and no server', async () => {
    const { code, stdout, stderr } = await run(['render', '--config-dir', dir.path, '--node-id', PRODUCTPAGE, '--type', 'eds']);
    assert.equal(code, 0, stderr);
    const endpoints = config(JSON.parse(stdout) as Dump, 'EndpointsConfigDump')['dynamic_endpoint_configs'] as { endpoint_config: { cluster_name: string } }[];
    assert.ok(endpoints.some((e) => e.endpoint_config.cluster_name === 'outbound|9080|v2|reviews.default.svc.cluster.local'));
  });

  it('analyzes clean: exit 0', async () => {
    const { code, stdout } = await run(['analyze', dir.path]);
    assert.equal(code, 0);
    assert.match(stdout, /^0 error\(s\), 0 warning\(s\)/m);
  });
});

describe('meshpilot analyze', () => {
  let dir: MeshDir;
  before(async () => {
    dir = await MeshDir.create();
    await dir.write('rules.yaml', [
      rule('VirtualService', 'reviews', 'default', {
        hosts: ['reviews'],
        http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 0 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 0 }] }],
      }),
      { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'api', namespace: 'default' }, spec: { hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'TLS' }], resolution: 'DNS_RR' } },
      { apiVersion: 'config.istio.io/v1alpha2', kind: 'RouteRule', metadata: { name: 'canary', namespace: 'default' }, spec: { destination: { name: 'ratings' }, route: [{ labels: { version: 'v2' }, weight: 120 }] } },
    ]);
    await dir.write('broken.yaml', 'kind: Service\nmetadata: {name: oops\n');
  });
  after(async () => {
    await dir.remove();
    await rm(`${dir.path}-mesh.yaml`, { force: true });
  });

  it('lists every error with its code, file, object and field, and exits 1', async () => {
    const { code, stdout, stderr } = await run(['analyze', dir.path]);
    assert.equal(code, 1);
    const lines = stdout.trim().split('\n');
    assert.ok(lines.includes('Error [MP_RULE_INVALID] rules.yaml: VirtualService default/reviews: spec.http[0].route: the weights of http[0].route sum to 0, so no destination gets traffic: give at least one destination a positive weight'), stdout);
    assert.ok(lines.some((l) => l.startsWith('Error [MP_RULE_INVALID] rules.yaml: ServiceEntry default/api: spec.resolution:')), stdout);
    assert.ok(lines.some((l) => l.startsWith('Error [MP_RULE_INVALID] rules.yaml: RouteRule default/canary: spec.route[0].weight:')), stdout);
    assert.ok(lines.some((l) => l.startsWith('Error [MP_YAML_PARSE] broken.yaml:')), stdout);
    assert.equal(lines.at(-1), `4 error(s), 0 warning(s) in ${dir.path}`);
    assert.match(stderr, /MP_ANALYZE_FAILED: 4 error\(s\)/);
  });

  it('also checks a MeshConfig, and speaks JSON for scripts', async () => {
    // The MeshConfig lives outside the config directory, as the istio ConfigMap does.
    await writeFile(`${dir.path}-mesh.yaml`, 'outboundTrafficPolicy:\n  mode: CLOSED\n');
    const { code, stdout } = await run(['analyze', dir.path, '--mesh-config', `${dir.path}-mesh.yaml`, '--output', 'json']);
    assert.equal(code, 1);
    const report = JSON.parse(stdout) as { errors: number; findings: { code: string; path: string; file: string }[] };
    assert.equal(report.errors, 5);
    assert.ok(report.findings.some((f) => f.code === 'MP_MESH_CONFIG_INVALID' && f.path === 'outboundTrafficPolicy.mode'));
  });

  it('passes every fixture', async () => {
    for (const fixture of ['bookinfo', 'routerule-canary', 'registry-only', 'service-entry', 'gateway', 'gateway-api']) {
      const { code, stdout } = await run(['analyze', `fixtures/${fixture}`]);
      assert.equal(code, 0, stdout);
    }
  });
});
