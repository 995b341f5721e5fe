// End to end: proxyless gRPC servers (XdsServer, gRFC A36) and clients (gRFC A29) from
// @grpc/grpc-js-xds, secured by what meshpilot serves: PeerAuthentication on the server side,
// auto mTLS on the client side, with workload certificates signed by a test root.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { spiffeId, TLS_MODE_LABEL } from '../src/security/names.ts';
import { freePort, grpcMtlsBootstrap, startXdsServer, WhoamiCaller, writeCertificateFiles, type SecureServer } from './support/grpc-mtls.ts';
import { endpointSlice, eventually, MeshDir, pod, service, type K8sObject } from './support/mesh-dir.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { createTestRoot } from './support/test-ca.ts';

const NS = 'default';
const GREETER_IP = '127.0.0.21';
const LEGACY_IP = '127.0.0.22';
const MESH = { [TLS_MODE_LABEL]: 'istio' };

function workload(name: string, ip: string, port: number, labels: Record<string, string>, vip: string): K8sObject[] {
  const running = pod(`${name}-v1`, NS, ip, { app: name, ...labels });
  return [
    service(name, NS, [{ name: 'grpc', port: 50051, targetPort: port }], vip),
    { ...running, spec: { ...(running['spec'] as object), serviceAccountName: name } },
    endpointSlice(name, NS, { name: 'grpc', port }, [{ name: `${name}-v1`, ip }]),
  ];
}

function peerAuthentication(mode: string): K8sObject {
  return { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'greeter', namespace: NS }, spec: { selector: { matchLabels: { app: 'greeter' } }, mtls: { mode } } };
}

describe('proxyless gRPC servers and clients secured by meshpilot', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  let greeter: SecureServer;
  let legacy: SecureServer;
  let productpage: WhoamiCaller;

  before(async () => {
    const root = await createTestRoot();
    dir = await MeshDir.create();
    const certs = join(dir.path, '..', `${dir.path.split('/').pop() ?? 'x'}-certs`);
    await writeCertificateFiles(join(certs, 'greeter'), await root.issue(spiffeId('cluster.local', NS, 'greeter')));
    await writeCertificateFiles(join(certs, 'productpage'), await root.issue(spiffeId('cluster.local', NS, 'productpage')));
    const greeterPort = await freePort(GREETER_IP);
    const legacyPort = await freePort(LEGACY_IP);
    await dir.write('workloads.yaml', [
      ...workload('greeter', GREETER_IP, greeterPort, MESH, '10.96.60.1'),
      ...workload('legacy', LEGACY_IP, legacyPort, {}, '10.96.60.2'),
    ]);
    meshpilot = await startMeshpilot(dir.path);
    const node = (name: string, ip: string): string => `sidecar~${ip}~${name}-v1.${NS}~${NS}.svc.cluster.local`;
    greeter = await startXdsServer('greeter', `${GREETER_IP}:${greeterPort}`, grpcMtlsBootstrap(meshpilot.xdsPort, node('greeter', GREETER_IP), { app: 'greeter', ...MESH }, join(certs, 'greeter')));
    // A server without an identity: no certificate provider, no tlsMode label.
    legacy = await startXdsServer('legacy', `${LEGACY_IP}:${legacyPort}`, grpcMtlsBootstrap(meshpilot.xdsPort, node('legacy', LEGACY_IP), { app: 'legacy' }));
    productpage = new WhoamiCaller('xds:///greeter.default.svc.cluster.local:50051', grpcMtlsBootstrap(meshpilot.xdsPort, node('productpage', '127.0.0.30'), { app: 'productpage', ...MESH }, join(certs, 'productpage')));
  });

  after(async () => {
    productpage.close();
    await Promise.all([greeter.close(), legacy.close()]);
    await meshpilot.close();
    await dir.remove();
  });

  it('auto mTLS: productpage reaches greeter over mTLS and greeter sees its SPIFFE identity, with no DestinationRule', async () => {
    const view = await eventually(async () => productpage.call().catch(() => undefined), 15_000, 'a call to greeter');
    assert.deepEqual(view, { server: 'greeter', transport: 'ssl', peer: 'URI:spiffe://cluster.local/ns/default/sa/productpage' });
  });

  it('auto mTLS: the same client reaches legacy, which has no identity, in plaintext', async () => {
    const client = new WhoamiCaller('xds:///legacy.default.svc.cluster.local:50051', grpcMtlsBootstrap(meshpilot.xdsPort, 'sidecar~127.0.0.30~productpage-v1.default~default.svc.cluster.local', { app: 'productpage', ...MESH }, join(dir.path, '..', `${dir.path.split('/').pop() ?? 'x'}-certs`, 'productpage')));
    try {
      const view = await eventually(async () => client.call().catch(() => undefined), 15_000, 'a call to legacy');
      assert.deepEqual(view, { server: 'legacy', transport: 'insecure', peer: '' });
    } finally {
      client.close();
    }
  });

  it('STRICT: a plaintext client is refused by greeter, and mTLS callers still get through', async () => {
    await dir.write('peer-authentication.yaml', [peerAuthentication('STRICT')]);
    const plain = new WhoamiCaller(greeter.address);
    try {
      assert.equal(await plain.status(), grpc.status.UNAVAILABLE);
      assert.equal((await productpage.call()).transport, 'ssl');
    } finally {
      plain.close();
    }
  });

  it('DISABLE: greeter serves plaintext, and a plain client gets through', async () => {
    await dir.write('peer-authentication.yaml', [peerAuthentication('DISABLE')]);
    const plain = new WhoamiCaller(greeter.address);
    try {
      const view = await eventually(async () => plain.call().catch(() => undefined), 15_000, 'greeter to serve plaintext');
      assert.deepEqual(view, { server: 'greeter', transport: 'insecure', peer: '' });
    } finally {
      plain.close();
    }
  });

  it('PERMISSIVE is served to a gRPC server as STRICT or plaintext, and /debug/configz says so', async () => {
    await dir.write('peer-authentication.yaml', [peerAuthentication('PERMISSIVE')]);
    const warnings = await eventually(async () => {
      const body = (await (await meshpilot.admin('/debug/configz')).json()) as { rules: { kind: string; warnings: { code: string; path: string; message: string }[] }[] };
      const rule = body.rules.find((r) => r.kind === 'PeerAuthentication');
      return rule?.warnings.some((w) => w.code === 'MP_GRPC_DEGRADED') ? rule.warnings : undefined;
    }, 10_000, 'the degradation in /debug/configz');
    assert.match(warnings.find((w) => w.code === 'MP_GRPC_DEGRADED')?.message ?? '', /served STRICT when its workload has an identity/);
    const plain = new WhoamiCaller(greeter.address);
    try {
      await eventually(async () => ((await plain.status()) === grpc.status.UNAVAILABLE ? true : undefined), 15_000, 'greeter to take mTLS only again');
    } finally {
      plain.close();
    }
  });
});
