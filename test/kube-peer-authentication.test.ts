// PeerAuthentication from the Kubernetes API: the CRD is watched, a good policy is served, a bad
// edit is refused with its field while the last good one stays, and Pods' service accounts and
// tlsMode labels become the identities clients verify.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeKubeApi, istioCrds, PEER_AUTHENTICATION_CRD } from './support/fake-kube-api.ts';
import { objectsFromDirectory, startMeshpilotOnKube, type KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { eventually } from './support/mesh-dir.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { CLUSTER_TYPE } from '../src/xds/type-urls.ts';

const SECURE_BOOKINFO = new URL('../fixtures/security-mtls', import.meta.url).pathname;

interface Configz {
  rules: { kind: string; namespace: string; name: string; applied: boolean; spec: { mtls?: { mode?: string } } }[];
  rejected: { object: string; keptLastGood: boolean; errors: { code: string; path: string }[] }[];
}

describe('PeerAuthentication watched in a cluster', () => {
  let api: FakeKubeApi;
  let meshpilot: KubeMeshpilot;
  const configz = async (): Promise<Configz> => (await (await meshpilot.admin('/debug/configz')).json()) as Configz;

  before(async () => {
    api = await FakeKubeApi.start();
    for (const crd of [...istioCrds(), PEER_AUTHENTICATION_CRD]) api.installCrd(crd);
    api.applyAll(await objectsFromDirectory(SECURE_BOOKINFO));
    meshpilot = await startMeshpilotOnKube(api);
  });

  after(async () => {
    await meshpilot.close();
    await api.close();
  });

  it('serves the mesh-wide STRICT policy and the workload ones from the API', async () => {
    const rules = await eventually(async () => {
      const found = (await configz()).rules.filter((r) => r.kind === 'PeerAuthentication');
      return found.length === 3 ? found : undefined;
    }, 10_000, 'three PeerAuthentications');
    assert.deepEqual(rules.map((r) => [r.namespace, r.name, r.applied]).sort(), [['default', 'details', true], ['default', 'ratings', true], ['istio-system', 'default', true]]);
  });

  it('refuses an edit to a mode that does not exist, naming the field, and keeps serving STRICT', async () => {
    api.apply({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'istio-system' }, spec: { mtls: { mode: 'STRICTEST' } } });
    const rejected = await eventually(async () => (await configz()).rejected.find((r) => r.object === 'PeerAuthentication istio-system/default'), 10_000, 'the bad edit reported');
    assert.equal(rejected.keptLastGood, true);
    assert.deepEqual(rejected.errors.map((e) => [e.code, e.path]), [['MP_RULE_INVALID', 'spec.mtls.mode']]);
    const mesh = (await configz()).rules.find((r) => r.kind === 'PeerAuthentication' && r.name === 'default');
    assert.equal(mesh?.spec.mtls?.mode, 'STRICT');
  });

  it("gives clients the pods' service accounts to verify (auto mTLS SANs)", async () => {
    const client = new RawAdsClient(meshpilot.xdsPort, 'sidecar~10.244.2.10~productpage-v1.default~default.svc.cluster.local');
    try {
      client.send({ typeUrl: CLUSTER_TYPE });
      const clusters = (await client.next((r) => r.type_url === CLUSTER_TYPE)).resources;
      const ratings = clusters.find((c) => c['name'] === 'outbound|9080||ratings.default.svc.cluster.local');
      const matches = ratings?.['transport_socket_matches'] as { name: string }[] | undefined;
      assert.deepEqual(matches?.map((m) => m.name), ['tlsMode-istio', 'tlsMode-disabled']);
      assert.match(JSON.stringify(matches), /"spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-ratings"/);
    } finally {
      client.close();
    }
  });
});
