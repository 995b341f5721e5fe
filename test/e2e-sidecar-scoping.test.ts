// A Sidecar in namespace frontend keeps its proxies to frontend, as real clients see it: an
// Envoy-like SotW client there gets no cluster of namespace backend and hears nothing when
// backend's endpoints change (while a proxy in backend does); a broken edit of the Sidecar keeps
// the last good one; adding backend to its egress hosts brings backend's clusters. A grpc-js-xds
// client in frontend cannot call backend, and can once the Sidecar lets it.
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { after, before, describe, it } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '../src/xds/type-urls.ts';
import { startBackend, type Backend } from './support/backends.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { MeshDir, endpointSlice, eventually, pod, rule, service, type K8sObject } from './support/mesh-dir.ts';
import { countWakeUps, startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';
import { SotwFollower } from './support/xds-follower.ts';

const SILENCE_MS = 600;
const WEB_NODE = 'sidecar~127.0.0.2~web-0.frontend~frontend.svc.cluster.local';
const API_NODE = 'sidecar~127.0.0.3~api-0.backend~backend.svc.cluster.local';
const API_CLUSTER = 'outbound|9080||api.backend.svc.cluster.local';
const WEB_CLUSTER = 'outbound|8080||web.frontend.svc.cluster.local';

interface Configz {
  rules: { kind: string; namespace: string; name: string; applied: boolean }[];
  rejected: { object: string; keptLastGood: boolean; errors: { code: string; path: string; message: string }[] }[];
}
interface Adsz {
  connections: { proxy: string | null; sidecar: string | null }[];
}

function frontend(web: Backend): K8sObject[] {
  return [
    service('web', 'frontend', [{ name: 'grpc', port: 8080, targetPort: web.port }], '10.96.1.1'),
    pod('web-0', 'frontend', web.host, { app: 'web' }),
    endpointSlice('web', 'frontend', { name: 'grpc', port: web.port }, [{ name: 'web-0', ip: web.host }]),
  ];
}

function backend(apis: Backend[]): K8sObject[] {
  return [
    service('api', 'backend', [{ name: 'grpc', port: 9080, targetPort: apis[0]?.port ?? 0 }], '10.96.2.1'),
    ...apis.map((api, i) => pod(`api-${i}`, 'backend', api.host, { app: 'api' })),
    endpointSlice('api', 'backend', { name: 'grpc', port: apis[0]?.port ?? 0 }, apis.map((api, i) => ({ name: `api-${i}`, ip: api.host }))),
  ];
}

const frontendSidecar = (hosts: string[]): K8sObject[] => [rule('Sidecar', 'default', 'frontend', { egress: [{ hosts }] })];

const clusterNames = (follower: SotwFollower): string[] => [...(follower.held.get(CLUSTER_TYPE)?.keys() ?? [])];

describe('a Sidecar limits what a proxy is sent and which changes wake it, end to end', () => {
  let dir: MeshDir;
  let meshpilot: TestMeshpilot;
  let web: Backend;
  let apis: Backend[];
  let scoped: SotwFollower;
  let unscoped: SotwFollower;

  before(async () => {
    web = await startBackend('web', '127.0.0.2');
    apis = [await startBackend('api-0', '127.0.0.3', web.port), await startBackend('api-1', '127.0.0.4', web.port)];
    dir = await MeshDir.create();
    await dir.write('frontend.yaml', frontend(web));
    await dir.write('backend.yaml', backend(apis.slice(0, 1)));
    await dir.write('sidecar.yaml', frontendSidecar(['./*', 'istio-system/*']));
    meshpilot = await startMeshpilot(dir.path);
    scoped = new SotwFollower(meshpilot.xdsPort, WEB_NODE);
    unscoped = new SotwFollower(meshpilot.xdsPort, API_NODE);
    for (const follower of [scoped, unscoped]) {
      await eventually(() => ((follower.held.get(ENDPOINT_TYPE)?.size ?? 0) > 0 ? true : undefined), 5000, 'initial sync');
    }
  });

  after(async () => {
    scoped.close();
    unscoped.close();
    await meshpilot.close();
    await Promise.all([web, ...apis].map((b) => b.close()));
    await dir.remove();
  });

  it('the proxy in frontend gets no cluster or endpoints of backend; the proxy in backend gets both namespaces', () => {
    assert.ok(clusterNames(scoped).includes(WEB_CLUSTER));
    assert.ok(!clusterNames(scoped).includes(API_CLUSTER), `frontend's proxy holds ${clusterNames(scoped).join(', ')}`);
    assert.ok(![...(scoped.held.get(ENDPOINT_TYPE)?.keys() ?? [])].includes(API_CLUSTER));
    assert.ok(clusterNames(unscoped).includes(API_CLUSTER) && clusterNames(unscoped).includes(WEB_CLUSTER));
  });

  it('/debug/adsz names the Sidecar that scopes each proxy', async () => {
    const adsz = (await (await meshpilot.admin('/debug/adsz')).json()) as Adsz;
    const sidecarOf = (id: string): string | null | undefined => adsz.connections.find((c) => c.proxy === id)?.sidecar;
    assert.equal(sidecarOf(WEB_NODE), 'frontend/default');
    assert.equal(sidecarOf(API_NODE), null);
  });

  it("an endpoint change in backend reaches backend's proxy, and frontend's proxy hears nothing and is not even queued", async () => {
    const woken = countWakeUps(meshpilot, WEB_NODE);
    const [scopedFrom, unscopedFrom] = [scoped.client.responses.length, unscoped.client.responses.length];
    await dir.write('backend.yaml', backend(apis));
    const update = await unscoped.client.next((r) => r.type_url === ENDPOINT_TYPE, unscopedFrom, 5000);
    assert.deepEqual(update.resources.map((r) => r['cluster_name']), [API_CLUSTER]);
    assert.deepEqual(await scoped.client.quiet(SILENCE_MS, scopedFrom), []);
    assert.equal(woken.count, 0, "frontend's proxy had nothing to regenerate");
  });

  it('a broken edit of the Sidecar is reported and the last good one keeps applying, with nothing pushed', async () => {
    const from = scoped.client.responses.length;
    await dir.write('sidecar.yaml', frontendSidecar(['./*', 'backend']));
    const configz = await eventually(async () => {
      const body = (await (await meshpilot.admin('/debug/configz')).json()) as Configz;
      return body.rejected.some((r) => r.object === 'Sidecar frontend/default') ? body : undefined;
    }, 5000, 'the rejected Sidecar in /debug/configz');
    const rejected = configz.rejected.find((r) => r.object === 'Sidecar frontend/default');
    assert.equal(rejected?.keptLastGood, true);
    assert.deepEqual(rejected.errors.map((e) => [e.code, e.path]), [['MP_RULE_INVALID', 'spec.egress[0].hosts[1]']]);
    assert.match(rejected.errors[0]?.message ?? '', /no namespace part: write namespace\/host/);
    assert.ok(configz.rules.some((r) => r.kind === 'Sidecar' && r.namespace === 'frontend' && r.applied));
    assert.deepEqual(await scoped.client.quiet(SILENCE_MS, from), []);
  });

  it("adding backend to the Sidecar's egress hosts brings backend's clusters and endpoints, and leaves backend's proxy alone", async () => {
    const woken = countWakeUps(meshpilot, API_NODE);
    const from = unscoped.client.responses.length;
    await dir.write('sidecar.yaml', frontendSidecar(['./*', 'istio-system/*', 'backend/*']));
    await eventually(() => (clusterNames(scoped).includes(API_CLUSTER) ? true : undefined), 5000, "backend's cluster at frontend's proxy");
    await eventually(() => (scoped.held.get(ENDPOINT_TYPE)?.has(API_CLUSTER) ? true : undefined), 5000, "backend's endpoints at frontend's proxy");
    assert.deepEqual(await unscoped.client.quiet(SILENCE_MS, from), []);
    assert.equal(woken.count, 0, "the Sidecar does not apply to backend's proxy, so it has nothing to regenerate");
  });
});

describe('a proxyless gRPC client under a Sidecar', () => {
  it('reaches the service its Sidecar lets it see, cannot reach the hidden one, and can once the Sidecar lists it', async () => {
    const web = await startBackend('web', '127.0.0.2');
    const api = await startBackend('api-0', '127.0.0.3', web.port);
    const dir = await MeshDir.create();
    await dir.write('frontend.yaml', frontend(web));
    await dir.write('backend.yaml', backend([api]));
    await dir.write('sidecar.yaml', frontendSidecar(['./*']));
    const meshpilot = await startMeshpilot(dir.path);
    const options = { xdsPort: meshpilot.xdsPort, nodeId: 'sidecar~127.0.0.20~client-0.frontend~frontend.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'frontend' } };
    const toWeb = new GrpcXdsCaller('xds:///web.frontend.svc.cluster.local:8080', options);
    const toApi = new GrpcXdsCaller('xds:///api.backend.svc.cluster.local:9080', options);
    try {
      assert.equal((await toWeb.whoami()).name, 'web');
      // No listener exists for a hidden target, so the channel never becomes ready.
      const hidden = await toApi.status({}, 2000);
      assert.ok([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE].includes(hidden.code), `the hidden service is not reachable (status ${hidden.code})`);
      assert.equal(api.calls, 0);
      await dir.write('sidecar.yaml', frontendSidecar(['./*', 'backend/*']));
      const reached = await eventually(async () => {
        const result = await toApi.status({}, 1000);
        return result.code === grpc.status.OK ? result : undefined;
      }, 15_000, 'a call to api once the Sidecar lists backend');
      assert.equal(reached.name, 'api-0');
    } finally {
      toWeb.close();
      toApi.close();
      await meshpilot.close();
      await Promise.all([web.close(), api.close()]);
      await dir.remove();
    }
  });
});
