// Real Envoy and the agent: `meshpilot bootstrap --xds-tls` is a bootstrap Envoy accepts, and an
// Envoy whose listener takes its certificate from the agent's socket gets both secrets, serves
// mTLS with the workload identity, and picks up the rotated certificate without a restart.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect, createServer as createTlsServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { buildBootstrap } from '../src/commands/bootstrap.ts';
import { SDS_CONFIG } from '../src/xds/generate/mtls.ts';
import { SDS_CLUSTER } from '../src/security/names.ts';
import { SDS_DELTA_PATH, SDS_SOTW_PATH } from '../src/agent/sds-server.ts';
import { exactStat, LOOPBACK_DNS, requireEnvoy, startEnvoy, validateBootstrap, type RunningEnvoy } from './support/envoy.ts';
import { CA_SERVER_NAME, issueTestPair, startFakeCa, type FakeCa, type TestKeyPair } from './support/fake-istio-ca.ts';
import { startMeshpilot } from './support/meshpilot.ts';
import { startTestAgent, type AgentUnderTest } from './support/agent-harness.ts';

const NODE = 'sidecar~127.0.0.1~productpage-v1-0.default~default.svc.cluster.local';
const PRODUCTPAGE = 'spiffe://cluster.local/ns/default/sa/productpage';
const DELTA_SDS_CONFIG = { ...SDS_CONFIG, api_config_source: { ...(SDS_CONFIG['api_config_source'] as object), api_type: 'DELTA_GRPC' } };

/** `meshpilot bootstrap --sds` pointed at the agent, plus an mTLS listener whose certificate and trust come from SDS. */
function mtlsEnvoyBootstrap(sdsSocket: string, delta = false): Record<string, unknown> {
  const sds = (name: string): Record<string, unknown> => ({ name, sds_config: delta ? DELTA_SDS_CONFIG : SDS_CONFIG });
  const generated = buildBootstrap({ nodeId: NODE, xdsAddress: '127.0.0.1:1', adminPort: 0, sdsSocket });
  const clusters = ((generated['static_resources'] as { clusters: Record<string, unknown>[] }).clusters).filter((c) => c['name'] === SDS_CLUSTER);
  return {
    node: generated['node'],
    ...LOOPBACK_DNS,
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      clusters,
      listeners: [{
        name: 'inbound-mtls',
        address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
        filter_chains: [{
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
              require_client_certificate: true,
              common_tls_context: { tls_certificate_sds_secret_configs: [sds('default')], validation_context_sds_secret_config: sds('ROOTCA') },
            },
          },
          filters: [{
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'inbound',
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
              route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] }] },
            },
          }],
        }],
      }],
    },
  };
}

/** The certificate Envoy's listener presents to a client holding `client` (a mesh identity), or the handshake error. */
function handshake(port: number, rootPem: string, client: TestKeyPair | undefined): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: rootPem, ...(client ? { cert: client.certPem, key: client.keyPem } : {}), checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      socket.once('data', (data: Buffer) => {
        socket.destroy();
        if (data.toString().startsWith('HTTP/1.1 200')) resolve(peer);
        else reject(new Error(`unexpected answer: ${data.toString().slice(0, 80)}`));
      });
    });
    socket.once('error', reject);
    socket.once('end', () => {
      reject(new Error('Envoy closed the connection'));
    });
  });
}

/**
 * 15012 as Envoy sees it, in front of a meshpilot serving plaintext: TLS with a certificate for
 * meshpilot's name signed by the mesh root, a client certificate required, bytes passed through.
 */
async function secureXdsFront(root: FakeCa['root'], xdsPort: number): Promise<{ port: number; clients: string[]; close(): Promise<void> }> {
  const serving = await issueTestPair(root, [{ type: 'dns', value: CA_SERVER_NAME }]);
  const clients: string[] = [];
  const sockets = new Set<Socket>();
  const server = createTlsServer({ cert: serving.certPem, key: serving.keyPem, ca: root.certPem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] }, (tls: TLSSocket) => {
    clients.push(tls.getPeerCertificate().subjectaltname ?? '');
    const upstream = connectTcp(xdsPort, '127.0.0.1');
    for (const socket of [tls, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    tls.pipe(upstream).pipe(tls);
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve((server.address() as { port: number }).port);
  }));
  return {
    port,
    clients,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => {
        resolve();
      });
    }),
  };
}

describe('meshpilot agent with real Envoy', () => {
  let ca: FakeCa;
  before(async () => {
    ca = await startFakeCa();
  });
  after(async () => {
    await ca.close();
  });

  it('`meshpilot bootstrap --xds-tls` (SDS over the agent socket, ADS over TLS to 15012) passes envoy --mode validate', async (t) => {
    const bin = await requireEnvoy(t);
    if (!bin) return;
    for (const delta of [false, true]) {
      const bootstrap = buildBootstrap({ nodeId: NODE, xdsAddress: 'meshpilot.meshpilot-system.svc:15012', adminPort: 15000, delta, sdsSocket: './var/run/secrets/workload-spiffe-uds/socket', xdsTlsServerName: 'meshpilot.meshpilot-system.svc' });
      const verdict = await validateBootstrap(bin, bootstrap);
      assert.ok(verdict.ok, verdict.output);
    }
  });

  it('`meshpilot bootstrap --xds-tls`: Envoy gets its config over TLS, authenticated by its workload certificate from the agent', async (t) => {
    const bin = await requireEnvoy(t);
    if (!bin) return;
    const meshpilot = await startMeshpilot('fixtures/bookinfo');
    const front = await secureXdsFront(ca.root, meshpilot.xdsPort);
    let pod: AgentUnderTest | undefined;
    let envoy: RunningEnvoy | undefined;
    try {
      pod = await startTestAgent(ca, { outputDir: undefined });
      const bootstrap = buildBootstrap({ nodeId: NODE, xdsAddress: `127.0.0.1:${front.port}`, adminPort: 0, delta: true, sdsSocket: pod.sdsSocket, xdsTlsServerName: CA_SERVER_NAME });
      envoy = await startEnvoy({ bootstrap: { ...bootstrap, ...LOOPBACK_DNS, admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } } } });
      await envoy.waitForStat('cluster_manager.cds.update_success', 1);
      await envoy.waitForStat('listener_manager.lds.update_success', 1);
      assert.deepEqual(await envoy.rejectedUpdates(), {});
      assert.ok(front.clients.length > 0 && front.clients.every((san) => san === `URI:${PRODUCTPAGE}`), `Envoy's client certificate is productpage's: ${front.clients.join(', ')}`);
    } finally {
      await envoy?.stop();
      await pod?.close();
      await front.close();
      await meshpilot.close();
    }
  });

  it('Envoy gets `default` and `ROOTCA` from the agent, serves mTLS as productpage, and takes a rotated certificate', async (t) => {
    const bin = await requireEnvoy(t);
    if (!bin) return;
    // 6-second certificates (backdated 1 s) renewed at half their life: a new one every ~2 s,
    // 3 s before the old one expires.
    ca.capValidity(5);
    let pod: AgentUnderTest | undefined;
    let envoy: RunningEnvoy | undefined;
    try {
      pod = await startTestAgent(ca, { outputDir: undefined, renewAt: 0.5 });
      envoy = await startEnvoy({ bootstrap: mtlsEnvoyBootstrap(pod.sdsSocket) });
      const running = envoy;
      await running.waitForStat('sds.default.update_success', 1);
      await running.waitForStat('sds.ROOTCA.update_success', 1);
      const dump = (await (await running.admin('/config_dump?resource=dynamic_active_secrets')).json()) as { configs: { name: string; secret: Record<string, unknown> }[] };
      assert.deepEqual(dump.configs.map((c) => c.name).sort(), ['ROOTCA', 'default']);
      assert.deepEqual([...(pod.agent.sds?.stats.paths.keys() ?? [])], [SDS_SOTW_PATH], 'Envoy uses StreamSecrets for an api_config_source of type GRPC');

      const listeners = (await (await running.admin('/listeners?format=json')).json()) as { listener_statuses: { local_address: { socket_address: { port_value: number } } }[] };
      const port = listeners.listener_statuses[0]?.local_address.socket_address.port_value ?? 0;
      const reviews = await issueTestPair(ca.root, [{ type: 'url', value: 'spiffe://cluster.local/ns/default/sa/reviews' }]);
      const first = await handshake(port, ca.root.certPem, reviews);
      assert.equal(first.subjectaltname, `URI:${PRODUCTPAGE}`);
      await assert.rejects(handshake(port, ca.root.certPem, undefined), 'a client without a mesh certificate is refused');

      const updates = await running.waitForStat('sds.default.update_success', 1);
      // New connections, one after another, until one is served with the next certificate: none fails across the rotation.
      const failures: string[] = [];
      let second: PeerCertificate | undefined;
      for (const giveUpAt = Date.now() + 10_000; !second && Date.now() < giveUpAt;) {
        const peer = await handshake(port, ca.root.certPem, reviews).catch((error: unknown) => {
          failures.push(String(error));
          return undefined;
        });
        if (peer && peer.serialNumber !== first.serialNumber) second = peer;
      }
      assert.deepEqual(failures, [], 'no connection failed across the rotation');
      assert.ok(second, 'a connection was served with the rotated certificate');
      const counted = (await running.stats({ filter: exactStat('sds.default.update_success') })).get('sds.default.update_success') ?? 0;
      assert.ok(counted > updates, `Envoy counted the pushed secret (${counted} updates)`);
      assert.equal(new X509Certificate(second.raw).subjectAltName, `URI:${PRODUCTPAGE}`);
      assert.deepEqual(Object.fromEntries([...(await running.stats({ filter: 'sds\\..*update_rejected$' }))].filter(([, v]) => v > 0)), {}, 'no secret rejected');
      assert.equal(pod.agent.sds?.stats.nacks, 0);
    } finally {
      ca.capValidity(undefined);
      await envoy?.stop();
      await pod?.close();
    }
  });

  it('Envoy with a DELTA_GRPC SDS source calls DeltaSecrets and gets both secrets', async (t) => {
    const bin = await requireEnvoy(t);
    if (!bin) return;
    let pod: AgentUnderTest | undefined;
    let envoy: RunningEnvoy | undefined;
    try {
      pod = await startTestAgent(ca, { outputDir: undefined });
      envoy = await startEnvoy({ bootstrap: mtlsEnvoyBootstrap(pod.sdsSocket, true) });
      await envoy.waitForStat('sds.default.update_success', 1);
      await envoy.waitForStat('sds.ROOTCA.update_success', 1);
      assert.deepEqual([...(pod.agent.sds?.stats.paths.keys() ?? [])], [SDS_DELTA_PATH]);
      assert.ok((pod.agent.sds?.stats.acks ?? 0) >= 1, 'Envoy ACKed');
    } finally {
      await envoy?.stop();
      await pod?.close();
    }
  });
});
