// Proxyless gRPC and the agent: the bootstrap and files it writes are what @grpc/grpc-js-xds 1.14
// reads. An XdsServer built from the bootstrap asks meshpilot for Istio's inbound listener name;
// the `default` certificate provider grpc-js-xds makes from it reads the agent's files, carries an
// mTLS call in which the server sees the caller's SPIFFE identity, and follows a rotation
// without a failed call; and with xDS naming that provider (a fixed control plane standing in
// for the listener and cluster security meshpilot generates), XdsChannelCredentials and
// XdsServerCredentials make the mTLS call themselves.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { GRPC_CERT_PROVIDER } from '../src/security/names.ts';
import { sidecarNodeId } from '../src/agent/grpc-bootstrap.ts';
import { rawMethod } from './support/backends.ts';
import { startStaticXds } from './support/static-xds.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, HTTP_CONNECTION_MANAGER_TYPE, LISTENER_TYPE, ROUTER_TYPE } from '../src/xds/type-urls.ts';
import { startFakeCa, type FakeCa } from './support/fake-istio-ca.ts';
import { eventually, startTestAgent, type AgentUnderTest } from './support/agent-harness.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';

grpcXds.register();

const WHOAMI = '/meshpilot.test.Identity/Caller';
const BOOTSTRAP_KEY = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';
type CertificateProvider = Parameters<typeof grpc.experimental.createCertificateProviderChannelCredentials>[0];

/** The certificate provider grpc-js-xds itself builds from a bootstrap (as for a listener or cluster naming it). */
function providerFromBootstrap(bootstrapJson: string): { server: grpcXds.XdsServer; provider: CertificateProvider } {
  const server = new grpcXds.XdsServer({ [BOOTSTRAP_KEY]: bootstrapJson });
  const { xdsClient } = server as unknown as { xdsClient: { getCertificateProvider(name: string): CertificateProvider | undefined } };
  const provider = xdsClient.getCertificateProvider(GRPC_CERT_PROVIDER);
  assert.ok(provider, 'the bootstrap names a `default` certificate provider');
  return { server, provider };
}

/** A loopback port nothing listens on right now (the XdsServer binds it only once meshpilot sends its listener). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => {
        resolve(port);
      });
    });
  });
}

interface Caller {
  readonly identity: string;
  readonly serial: string;
}

describe('meshpilot agent for proxyless gRPC', () => {
  let ca: FakeCa;
  let meshpilot: TestMeshpilot;
  let productpage: AgentUnderTest;
  let reviews: AgentUnderTest;
  before(async () => {
    ca = await startFakeCa();
    // 6-second certificates (backdated 1 s) renewed at half their life: a new one every ~2 s,
    // 3 s before the old one expires, for gRPC's 1-second file reads to see it in time.
    ca.capValidity(5);
    meshpilot = await startMeshpilot('fixtures/bookinfo');
    const xdsAddress = `127.0.0.1:${meshpilot.xdsPort}`;
    productpage = await startTestAgent(ca, { sdsSocket: undefined, xdsAddress, grpcBootstrap: 'bootstrap.json', renewAt: 0.5 });
    reviews = await startTestAgent(ca, { sdsSocket: undefined, xdsAddress, serviceAccount: 'reviews', podName: 'reviews-v1-0', grpcBootstrap: 'bootstrap.json', renewAt: 0.5 });
    await Promise.all([productpage.agent.certificate.ready(), reviews.agent.certificate.ready()]);
    await eventually('the files', () => productpage.agent.status().files?.lastWrite !== undefined && reviews.agent.status().files?.lastWrite !== undefined);
  });
  after(async () => {
    await productpage.close();
    await reviews.close();
    await meshpilot.close();
    await ca.close();
  });

  it("an XdsServer built from the agent's bootstrap asks meshpilot for xds.istio.io/grpc/lds/inbound/IP:PORT as productpage", async () => {
    const bootstrap = await readFile(productpage.bootstrapFile, 'utf8');
    const server = new grpcXds.XdsServer({ [BOOTSTRAP_KEY]: bootstrap });
    try {
      const port = await freePort();
      server.bindAsync(`127.0.0.1:${port}`, new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), () => undefined);
      const nodeId = sidecarNodeId('127.0.0.1', 'productpage-v1-0', 'default');
      const lds = await eventually('the inbound listener subscription', async () => (await meshpilot.proxySync(nodeId))?.lds.subscribed);
      assert.deepEqual(lds, [`xds.istio.io/grpc/lds/inbound/127.0.0.1:${port}`]);
    } finally {
      server.forceShutdown();
    }
  });

  it("carries an mTLS call with grpc-js-xds's `default` provider: reviews sees productpage's SPIFFE identity, through a rotation, with no failed call", async () => {
    const client = providerFromBootstrap(await readFile(productpage.bootstrapFile, 'utf8'));
    const serverSide = providerFromBootstrap(await readFile(reviews.bootstrapFile, 'utf8'));
    const server = new grpc.Server();
    server.addService({ Caller: rawMethod(WHOAMI) }, {
      Caller: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const peer = call.getAuthContext().sslPeerCertificate;
        const caller: Caller = { identity: peer?.subjectaltname ?? '', serial: peer?.serialNumber ?? '' };
        callback(null, Buffer.from(JSON.stringify(caller)));
      },
    });
    // As grpc-js-xds does for an inbound listener whose DownstreamTlsContext names `default` (STRICT).
    const serverCredentials = grpc.experimental.createCertificateProviderServerCredentials(serverSide.provider, serverSide.provider, true);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', serverCredentials, (error, bound) => {
        if (error) reject(error);
        else resolve(bound);
      });
    });
    const Identity = grpc.makeGenericClientConstructor({ Caller: rawMethod(WHOAMI) }, 'Identity');
    // As grpc-js-xds does for a cluster whose UpstreamTlsContext names `default`; reviews' name is checked by SPIFFE ID, not DNS.
    const channelCredentials = grpc.experimental.createCertificateProviderChannelCredentials(client.provider, client.provider, { checkServerIdentity: () => undefined });
    const call = (stub: grpc.Client): Promise<Caller> => new Promise((resolve, reject) => {
      (stub as unknown as { Caller(req: Buffer, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void }).Caller(Buffer.alloc(0), { deadline: Date.now() + 5000 }, (error, response) => {
        if (error) reject(error);
        else resolve(JSON.parse((response ?? Buffer.alloc(0)).toString('utf8')) as Caller);
      });
    });
    const steady = new Identity(`127.0.0.1:${port}`, channelCredentials);
    const opened: grpc.Client[] = [steady];
    try {
      const first = await call(steady);
      assert.equal(first.identity, 'URI:spiffe://cluster.local/ns/default/sa/productpage');
      const plaintext = new Identity(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      opened.push(plaintext);
      await assert.rejects(call(plaintext), (error: grpc.ServiceError) => error.code === grpc.status.UNAVAILABLE, 'a plaintext caller is refused');

      let calls = 0;
      const failures: string[] = [];
      let rotated: Caller | undefined;
      const giveUpAt = Date.now() + 15_000;
      // Calls on one channel, and on a new channel each time (a new handshake), until a handshake shows productpage's next certificate.
      while (!rotated) {
        // A channel of its own (not the shared subchannel pool): a new connection, a new handshake.
        const fresh = new Identity(`127.0.0.1:${port}`, channelCredentials, { 'grpc.use_local_subchannel_pool': 1 });
        opened.push(fresh);
        const results = await Promise.allSettled([call(steady), call(fresh)]);
        fresh.close();
        calls += 2;
        for (const result of results) if (result.status === 'rejected') failures.push(String(result.reason));
        const seen = results[1].status === 'fulfilled' ? results[1].value : undefined;
        if (seen && seen.serial !== first.serial) rotated = seen;
        if (Date.now() > giveUpAt) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.deepEqual(failures, [], `no call of ${calls} failed during the rotation`);
      assert.ok(rotated, 'the file watcher picked up the rotated certificate');
      assert.equal(rotated.identity, 'URI:spiffe://cluster.local/ns/default/sa/productpage');
      assert.ok(productpage.agent.status().rotations >= 1);
    } finally {
      for (const stub of opened) stub.close();
      server.forceShutdown();
      client.server.forceShutdown();
      serverSide.server.forceShutdown();
    }
  });

  it('grpc-js-xds XdsChannelCredentials and XdsServerCredentials make an mTLS call with the agent files, when xDS names the `default` provider', async () => {
    const port = await freePort();
    const reviewsId = 'spiffe://cluster.local/ns/default/sa/reviews';
    const tls = (type: string, context: JsonObject): JsonObject => ({ name: 'envoy.transport_sockets.tls', typed_config: { '@type': `type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.${type}`, ...context } });
    const provider = { instance_name: GRPC_CERT_PROVIDER };
    const hcm = (routeConfig: JsonObject): JsonObject => ({
      '@type': HTTP_CONNECTION_MANAGER_TYPE,
      stat_prefix: 'test',
      route_config: routeConfig,
      http_filters: [{ name: 'router', typed_config: { '@type': ROUTER_TYPE } }],
    });
    const xds = await startStaticXds({
      [LISTENER_TYPE]: [
        { name: 'reviews.default.svc.cluster.local:9080', api_listener: { api_listener: hcm({ name: 'out', virtual_hosts: [{ name: 'reviews', domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster: 'reviews' } }] }] }) } },
        {
          name: `xds.istio.io/grpc/lds/inbound/127.0.0.1:${port}`,
          address: { socket_address: { address: '127.0.0.1', port_value: port } },
          filter_chains: [{
            transport_socket: tls('DownstreamTlsContext', { require_client_certificate: true, common_tls_context: { tls_certificate_provider_instance: provider, validation_context: { ca_certificate_provider_instance: provider } } }),
            filters: [{ name: 'hcm', typed_config: hcm({ name: 'in', virtual_hosts: [{ name: 'in', domains: ['*'], routes: [{ match: { prefix: '' }, non_forwarding_action: {} }] }] }) }],
          }],
        },
      ],
      [CLUSTER_TYPE]: [{
        name: 'reviews', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: 'reviews' }, lb_policy: 'ROUND_ROBIN',
        transport_socket: tls('UpstreamTlsContext', { common_tls_context: { tls_certificate_provider_instance: provider, combined_validation_context: { default_validation_context: { ca_certificate_provider_instance: provider, match_subject_alt_names: [{ exact: reviewsId }] } } } }),
      }],
      [ENDPOINT_TYPE]: [{ cluster_name: 'reviews', endpoints: [{ locality: {}, load_balancing_weight: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] }],
    });
    const rewrite = async (agent: AgentUnderTest): Promise<string> => {
      const bootstrap = JSON.parse(await readFile(agent.bootstrapFile, 'utf8')) as { xds_servers: { server_uri: string }[] };
      for (const server of bootstrap.xds_servers) server.server_uri = `127.0.0.1:${xds.port}`;
      return JSON.stringify(bootstrap);
    };
    const server = new grpcXds.XdsServer({ [BOOTSTRAP_KEY]: await rewrite(reviews) });
    let client: grpc.Client | undefined;
    try {
      server.addService({ Caller: rawMethod(WHOAMI) }, {
        Caller: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          callback(null, Buffer.from(call.getAuthContext().sslPeerCertificate?.subjectaltname ?? ''));
        },
      });
      await new Promise<void>((resolve, reject) => {
        server.bindAsync(`127.0.0.1:${port}`, new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (error) => {
          if (error) reject(error);
          else resolve();
        });
      });
      const Identity = grpc.makeGenericClientConstructor({ Caller: rawMethod(WHOAMI) }, 'Identity');
      client = new Identity('xds:///reviews.default.svc.cluster.local:9080', new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()), { [BOOTSTRAP_KEY]: await rewrite(productpage) });
      const seen = await new Promise<string>((resolve, reject) => {
        (client as unknown as { Caller(req: Buffer, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void }).Caller(Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (error, response) => {
          if (error) reject(error);
          else resolve((response ?? Buffer.alloc(0)).toString('utf8'));
        });
      });
      assert.equal(seen, 'URI:spiffe://cluster.local/ns/default/sa/productpage');
    } finally {
      client?.close();
      server.forceShutdown();
      await xds.close();
    }
  });
});

