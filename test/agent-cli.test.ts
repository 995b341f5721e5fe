// The command line a pod runs: `meshpilot agent` with its flags, and `meshpilot bootstrap` with
// the options that point Envoy at the agent and at 15012.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildBootstrap, DEFAULT_XDS_ADDRESS } from '../src/commands/bootstrap.ts';
import { CA_SERVER_NAME, startFakeCa, type FakeCa } from './support/fake-istio-ca.ts';
import { eventually } from './support/agent-harness.ts';

const BIN = new URL('../bin/meshpilot.js', import.meta.url).pathname;

function meshpilotCli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('meshpilot agent and bootstrap on the command line', () => {
  let ca: FakeCa;
  let dir: string;
  before(async () => {
    ca = await startFakeCa();
    dir = await mkdtemp(join(tmpdir(), 'meshpilot-agent-cli-'));
  });
  after(async () => {
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('`meshpilot agent` gets a certificate with its flags, serves SDS and status, writes the files and the gRPC bootstrap, and stops on SIGTERM', async () => {
    const token = join(dir, 'istio-token');
    await writeFile(token, 'cli-token\n');
    const child = spawn(process.execPath, [
      BIN, 'agent',
      '--namespace', 'default', '--service-account', 'ratings', '--pod-name', 'ratings-v1-0', '--pod-ip', '127.0.0.1',
      '--ca-address', ca.address, '--ca-server-name', CA_SERVER_NAME, '--ca-root-cert', ca.rootFile, '--token-file', token,
      '--cert-ttl', '1h', '--sds-socket', join(dir, 'sds/socket'), '--output-dir', join(dir, 'certs'),
      '--grpc-bootstrap', join(dir, 'grpc-bootstrap.json'), '--xds-address', '127.0.0.1:15010', '--status-port', '0',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const started = await eventually('the agent started line', () => output.split('\n').map((line) => (line.includes('"agent started"') ? (JSON.parse(line) as { statusPort: number }) : undefined)).find(Boolean), 15_000);
      const ready = await eventually('/healthz 200', async () => (await fetch(`http://127.0.0.1:${started.statusPort}/healthz`)).status === 200, 15_000);
      assert.ok(ready);
      const status = (await (await fetch(`http://127.0.0.1:${started.statusPort}/status`)).json()) as { identity: string; sds: { socket: string } };
      assert.equal(status.identity, 'spiffe://cluster.local/ns/default/sa/ratings');
      assert.ok((await stat(join(dir, 'sds/socket'))).isSocket());
      assert.equal(ca.calls.at(-1)?.validitySeconds, 3600);
      assert.equal(ca.calls.at(-1)?.token, 'cli-token');
      const bootstrap = JSON.parse(await readFile(join(dir, 'grpc-bootstrap.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(bootstrap, {
        xds_servers: [{ server_uri: '127.0.0.1:15010', channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
        node: { id: 'sidecar~127.0.0.1~ratings-v1-0.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', INSTANCE_IPS: '127.0.0.1' }, locality: {} },
        certificate_providers: {
          default: {
            plugin_name: 'file_watcher',
            config: { certificate_file: join(dir, 'certs/cert-chain.pem'), private_key_file: join(dir, 'certs/key.pem'), ca_certificate_file: join(dir, 'certs/root-cert.pem'), refresh_interval: '60s' },
          },
        },
        server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
      });
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('`meshpilot agent --grpc-bootstrap` without --output-dir says what is missing', async () => {
    const run = await meshpilotCli(['agent', '--namespace', 'default', '--grpc-bootstrap', join(dir, 'x.json'), '--no-sds', '--status-port', '0', '--ca-root-cert', ca.rootFile]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /MP_CONFIG: --grpc-bootstrap needs --output-dir/);
  });

  it('`meshpilot bootstrap --xds-tls` points ADS at 15012 over TLS with the SDS certificate, and adds the sds-grpc cluster', async () => {
    const run = await meshpilotCli(['bootstrap', '--node-id', 'sidecar~10.244.0.9~productpage-v1-0.default~default.svc.cluster.local', '--xds-tls', '--output', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const bootstrap = JSON.parse(run.stdout) as { static_resources: { clusters: Record<string, unknown>[] } };
    const [xds, sds] = bootstrap.static_resources.clusters;
    assert.deepEqual((xds?.['load_assignment'] as { endpoints: { lb_endpoints: { endpoint: { address: unknown } }[] }[] }).endpoints[0]?.lb_endpoints[0]?.endpoint.address, { socket_address: { address: 'meshpilot.meshpilot-system.svc', port_value: 15012 } });
    const tls = (xds?.['transport_socket'] as { typed_config: { sni: string; common_tls_context: Record<string, unknown> } }).typed_config;
    assert.equal(tls.sni, 'meshpilot.meshpilot-system.svc');
    assert.deepEqual((tls.common_tls_context['tls_certificate_sds_secret_configs'] as { name: string }[]).map((s) => s.name), ['default']);
    assert.deepEqual(tls.common_tls_context['combined_validation_context'], {
      default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'meshpilot.meshpilot-system.svc' } }] },
      validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { api_config_source: { api_type: 'GRPC', set_node_on_first_message_only: true, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] }, resource_api_version: 'V3' } },
    });
    assert.equal(sds?.['name'], 'sds-grpc');
    assert.deepEqual((sds['load_assignment'] as { endpoints: { lb_endpoints: { endpoint: { address: unknown } }[] }[] }).endpoints[0]?.lb_endpoints[0]?.endpoint.address, { pipe: { path: './var/run/secrets/workload-spiffe-uds/socket' } });
    const plain = buildBootstrap({ nodeId: 'sidecar~10.244.0.9~productpage-v1-0.default~default.svc.cluster.local', xdsAddress: DEFAULT_XDS_ADDRESS, adminPort: 15000 });
    const plainClusters = (plain['static_resources'] as { clusters: Record<string, unknown>[] }).clusters;
    assert.deepEqual(plainClusters.map((c) => c['name']), ['xds-grpc'], 'without the options, the bootstrap is as before');
    assert.equal(plainClusters[0]?.['transport_socket'], undefined);
  });
});
