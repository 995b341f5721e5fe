// meshpilot watching a Kubernetes API server: the real client-node informers against the
// in-process fake API, with what an operator sees in the admin API and a gRPC client sees on the wire.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { selectSources } from '../src/sources/kube/select.ts';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { startBackends, type Backend } from './support/backends.ts';
import { FakeKubeApi, istioCrds, ROUTE_RULE_CRD } from './support/fake-kube-api.ts';
import { objectsFromDirectory, startMeshpilotOnKube, type KubeMeshpilot } from './support/fake-kube-api-meshpilot.ts';
import { GrpcXdsCaller } from './support/grpc-xds-client.ts';
import { MeshDir, eventually, pod, rule, service, endpointSlice, tlsSecret } from './support/mesh-dir.ts';
import { createTestRoot, issueTestPair } from './support/fake-istio-ca.ts';
import { FIXTURE_CREDENTIAL } from './support/fixture-credential.ts';
import { PRODUCTPAGE, TARGET, reviewsRoutes, subsets, workloads } from './support/reviews-mesh.ts';

const BOOKINFO = new URL('../fixtures/bookinfo', import.meta.url).pathname;

interface Registry {
  services: { hostname: string; source: { origin: string; location: string }; endpoints: { address: string; labels: Record<string, string> }[] }[];
}
interface Configz {
  rules: { kind: string; namespace: string; name: string; applied: boolean; source: { origin: string; location: string } }[];
  rejected: { object: string; keptLastGood: boolean; errors: { code: string; path: string }[]; source: { location: string } }[];
}

async function json<T>(meshpilot: KubeMeshpilot, path: string): Promise<T> {
  return (await (await meshpilot.admin(path)).json()) as T;
}

async function ready(meshpilot: KubeMeshpilot): Promise<void> {
  await eventually(async () => ((await meshpilot.admin('/ready')).status === 200 ? true : undefined), 10_000, '/ready');
}

describe('BookInfo in a cluster, served from the Kubernetes API', () => {
  let api: FakeKubeApi;
  let meshpilot: KubeMeshpilot;

  before(async () => {
    api = await FakeKubeApi.start({ splitEvents: true, bookmarkIntervalMs: 300 });
    for (const crd of istioCrds()) api.installCrd(crd);
    api.applyAll(await objectsFromDirectory(BOOKINFO));
    meshpilot = await startMeshpilotOnKube(api);
    await ready(meshpilot);
  });

  after(async () => {
    await meshpilot.close();
    await api.close();
  });

  it('lists every service with its endpoints and pod labels in /debug/registryz, sourced from the API', async () => {
    const registry = await json<Registry>(meshpilot, '/debug/registryz');
    assert.deepEqual(
      registry.services.map((s) => [s.hostname, s.endpoints.length]),
      [['details', 1], ['productpage', 1], ['ratings', 1], ['reviews', 3]].map(([n, c]) => [`${String(n)}.default.svc.cluster.local`, c]),
    );
    const reviews = registry.services.find((s) => s.hostname.startsWith('reviews.'));
    assert.deepEqual(reviews?.source, { origin: 'kube', location: '/api/v1/namespaces/default/services/reviews' });
    assert.deepEqual(reviews.endpoints.map((e) => e.labels['version']).sort(), ['v1', 'v2', 'v3']);
  });

  it('applies every VirtualService and DestinationRule read from the Istio CRDs, whatever apiVersion they were written in', async () => {
    const configz = await json<Configz>(meshpilot, '/debug/configz');
    assert.equal(configz.rules.length, 8);
    assert.ok(configz.rules.every((r) => r.applied && r.source.origin === 'kube'));
    const reviews = configz.rules.find((r) => r.kind === 'VirtualService' && r.name === 'reviews');
    assert.equal(reviews?.source.location, '/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews');
    assert.deepEqual(configz.rejected, []);
  });

  it('reads lists page by page and follows watches whose events arrive split across chunks', () => {
    const pages = api.requests.filter((r) => r.path === '/api/v1/pods' && r.query['watch'] === undefined);
    assert.ok(pages.length >= 2 && pages.some((r) => r.query['continue']), `pods listed in ${pages.length} pages`);
    assert.ok(api.requests.some((r) => r.query['watch'] === 'true' && r.query['allowWatchBookmarks'] === 'true'));
  });

  it('shows a broken rule update in /debug/configz and keeps serving its last good version', async () => {
    const broken = api.get('VirtualService', 'default', 'reviews');
    assert.ok(broken);
    api.apply({ ...broken, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 0 }, { destination: { host: 'reviews', subset: 'v3' }, weight: 0 }] }] } });
    const configz = await eventually(async () => {
      const body = await json<Configz>(meshpilot, '/debug/configz');
      return body.rejected.length > 0 ? body : undefined;
    }, 5000, 'the rejection in /debug/configz');
    assert.equal(configz.rejected[0]?.object, 'VirtualService default/reviews');
    assert.equal(configz.rejected[0].keptLastGood, true);
    assert.equal(configz.rejected[0].source.location, '/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews');
    assert.equal(configz.rejected[0].errors[0]?.code, 'MP_RULE_INVALID');
    assert.ok(configz.rules.some((r) => r.kind === 'VirtualService' && r.name === 'reviews' && r.applied), 'the last good reviews routing is still applied');
  });

  it("reads a Sidecar from the cluster and limits productpage's proxy to what it lists", async () => {
    api.apply(rule('Sidecar', 'productpage', 'default', { workloadSelector: { labels: { app: 'productpage' } }, egress: [{ hosts: ['./details.default.svc.cluster.local'] }] }));
    await eventually(async () => {
      const configz = await json<Configz>(meshpilot, '/debug/configz');
      const sidecar = configz.rules.find((r) => r.kind === 'Sidecar');
      return sidecar?.applied && sidecar.source.location === '/apis/networking.istio.io/v1/namespaces/default/sidecars/productpage' ? true : undefined;
    }, 5000, 'the Sidecar in /debug/configz');
    const client = new RawAdsClient(meshpilot.xdsPort, 'sidecar~10.244.1.9~productpage-v1-0.default~default.svc.cluster.local', { LABELS: { app: 'productpage' } });
    try {
      client.send({ typeUrl: CLUSTER_TYPE });
      const clusters = (await client.next((r) => r.type_url === CLUSTER_TYPE)).resources.map((c) => c['name'] as string);
      assert.deepEqual(clusters.filter((name) => name.startsWith('outbound|')), ['outbound|9080||details.default.svc.cluster.local', 'outbound|9080|v1|details.default.svc.cluster.local']);
    } finally {
      client.close();
    }
  });

  it('reads a Gateway from the cluster and programs the gateway Envoy its selector picks', async () => {
    api.apply(rule('Gateway', 'bookinfo-gateway', 'default', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] }));
    api.apply(rule('VirtualService', 'bookinfo-ingress', 'default', { hosts: ['bookinfo.example.com'], gateways: ['bookinfo-gateway'], http: [{ route: [{ destination: { host: 'productpage' } }] }] }));
    await eventually(async () => {
      const configz = await json<Configz>(meshpilot, '/debug/configz');
      const gateway = configz.rules.find((r) => r.kind === 'Gateway');
      return gateway?.applied && gateway.source.location === '/apis/networking.istio.io/v1/namespaces/default/gateways/bookinfo-gateway' ? true : undefined;
    }, 5000, 'the Gateway in /debug/configz');
    const client = new RawAdsClient(meshpilot.xdsPort, 'router~10.244.9.9~ingress-0.istio-system~istio-system.svc.cluster.local', { LABELS: { istio: 'ingressgateway' } });
    try {
      client.send({ typeUrl: LISTENER_TYPE });
      const listeners = (await client.next((r) => r.type_url === LISTENER_TYPE)).resources.map((l) => l['name'] as string);
      assert.deepEqual(listeners, ['0.0.0.0_8080']);
      client.send({ typeUrl: ROUTE_TYPE, names: ['http.8080'] });
      const [routes] = (await client.next((r) => r.type_url === ROUTE_TYPE)).resources;
      assert.deepEqual((routes?.['virtual_hosts'] as { domains: string[] }[]).map((v) => v.domains), [['bookinfo.example.com']]);
    } finally {
      client.close();
    }
  });
});

describe('proxyless gRPC routed by what the cluster says', () => {
  let api: FakeKubeApi;
  let backends: Backend[];
  let meshpilot: KubeMeshpilot;
  let client: GrpcXdsCaller;

  before(async () => {
    backends = await startBackends(['reviews-v1', 'reviews-v2', 'reviews-v3']);
    api = await FakeKubeApi.start({ bookmarkIntervalMs: 300 });
    for (const crd of istioCrds()) api.installCrd(crd);
    api.applyAll([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }, ...workloads(backends), subsets, reviewsRoutes({ v1: 100, v3: 0 })]);
    meshpilot = await startMeshpilotOnKube(api);
    await ready(meshpilot);
    client = new GrpcXdsCaller(TARGET, { xdsPort: meshpilot.xdsPort, nodeId: PRODUCTPAGE, metadata: { GENERATOR: 'grpc' } });
  });

  after(async () => {
    client.close();
    await meshpilot.close();
    await api.close();
    await Promise.all(backends.map((b) => b.close()));
  });

  it('sends jason to reviews v2 and everyone else to v1, as the VirtualService in the cluster says', async () => {
    assert.deepEqual([...(await client.tally(10, { 'end-user': 'jason' }))], [['reviews-v2', 10]]);
    assert.deepEqual([...(await client.tally(10))], [['reviews-v1', 10]]);
  });

  it('moves a pod into subset v2 when its version label changes, without a restart', async () => {
    const v3 = api.get('Pod', 'default', 'reviews-v3-0');
    assert.ok(v3);
    api.apply({ ...v3, metadata: { ...v3.metadata, labels: { app: 'reviews', version: 'v2' } } });
    const counts = await eventually(async () => {
      const tally = await client.tally(40, { 'end-user': 'jason' });
      return tally.has('reviews-v3') ? tally : undefined;
    }, 10_000, 'jason reaching the relabelled pod');
    assert.deepEqual([...counts.keys()].sort(), ['reviews-v2', 'reviews-v3'], 'subset v2 now holds both pods');
    const registry = await json<Registry>(meshpilot, '/debug/registryz');
    const moved = registry.services.find((s) => s.hostname.startsWith('reviews.'))?.endpoints.find((e) => e.address === backends[2]?.host);
    assert.equal(moved?.labels['version'], 'v2');
  });

  it('stops routing jason to v2 when the VirtualService is deleted from the cluster', async () => {
    api.delete('VirtualService', 'default', 'reviews');
    const counts = await eventually(async () => {
      const tally = await client.tally(30, { 'end-user': 'jason' });
      return tally.has('reviews-v1') ? tally : undefined;
    }, 10_000, 'jason reaching v1 once no rule routes him');
    assert.ok(counts.has('reviews-v1'));
    const configz = await json<Configz>(meshpilot, '/debug/configz');
    assert.ok(!configz.rules.some((r) => r.kind === 'VirtualService'));
  });
});

describe('Istio CRDs at the version the cluster serves', () => {
  for (const version of ['v1beta1', 'v1alpha3']) {
    it(`reads VirtualService and DestinationRule from a cluster that serves only networking.istio.io/${version}`, async () => {
      const api = await FakeKubeApi.start();
      for (const crd of istioCrds([version])) api.installCrd(crd);
      api.applyAll((await objectsFromDirectory(BOOKINFO)).map((o) => (String(o['apiVersion']).startsWith('networking.istio.io/') ? { ...o, apiVersion: `networking.istio.io/${version}` } : o)));
      const meshpilot = await startMeshpilotOnKube(api);
      try {
        await ready(meshpilot);
        const configz = await json<Configz>(meshpilot, '/debug/configz');
        assert.equal(configz.rules.filter((r) => r.applied).length, 8);
        assert.ok(configz.rules.every((r) => r.source.location.startsWith(`/apis/networking.istio.io/${version}/`)));
      } finally {
        await meshpilot.close();
        await api.close();
      }
    });
  }

  it('skips CRDs that are not installed with one log line, watches RouteRule when its CRD exists, and serves the services', async () => {
    const api = await FakeKubeApi.start();
    api.installCrd(ROUTE_RULE_CRD);
    api.applyAll((await objectsFromDirectory(BOOKINFO)).filter((o) => !String(o['apiVersion']).startsWith('networking.istio.io/')));
    api.apply({ apiVersion: 'config.istio.io/v1alpha2', kind: 'RouteRule', metadata: { name: 'reviews-default', namespace: 'default' }, spec: { destination: { name: 'reviews' }, precedence: 1 } });
    const lines: { msg: string; kinds?: string[] }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { msg: string });
        done();
      },
    });
    const meshpilot = await startMeshpilotOnKube(api, { log: pino({ level: 'info' }, sink) });
    try {
      await ready(meshpilot);
      const skipped = lines.filter((l) => l.msg.includes('not installed'));
      assert.equal(skipped.length, 1, 'one line for all missing CRDs');
      assert.deepEqual(skipped[0]?.kinds, ['VirtualService', 'DestinationRule', 'ServiceEntry', 'WorkloadEntry', 'Sidecar', 'Gateway', 'PeerAuthentication', 'AuthorizationPolicy', 'HTTPRoute', 'GRPCRoute', 'ReferenceGrant', 'TLSRoute', 'TCPRoute', 'GatewayClass', 'Gateway', 'XMesh']);
      // Ready means listed; the watch that follows the list may start a moment later.
      await eventually(() => (api.requests.some((r) => r.path === '/apis/config.istio.io/v1alpha2/routerules' && r.query['watch'] === 'true') ? true : undefined), 10_000, 'RouteRule is watched');
      const registry = await json<Registry>(meshpilot, '/debug/registryz');
      assert.equal(registry.services.length, 4);
    } finally {
      await meshpilot.close();
      await api.close();
    }
  });
});

describe('CRDs installed or removed while meshpilot runs', () => {
  it('starts watching VirtualServices once their CRD is installed, and drops them when it is removed', async () => {
    const api = await FakeKubeApi.start();
    api.applyAll((await objectsFromDirectory(BOOKINFO)).filter((o) => !String(o['apiVersion']).startsWith('networking.istio.io/')));
    const meshpilot = await startMeshpilotOnKube(api, { tuning: { discoveryIntervalMs: 200 } });
    try {
      await ready(meshpilot);
      assert.deepEqual((await json<Configz>(meshpilot, '/debug/configz')).rules, []);
      for (const crd of istioCrds()) api.installCrd(crd);
      api.applyAll((await objectsFromDirectory(BOOKINFO)).filter((o) => String(o['apiVersion']).startsWith('networking.istio.io/')));
      await eventually(async () => ((await json<Configz>(meshpilot, '/debug/configz')).rules.length === 8 ? true : undefined), 5000, 'the 8 rules after the CRDs appear');
      api.removeCrd('VirtualService');
      const after = await eventually(async () => {
        const rules = (await json<Configz>(meshpilot, '/debug/configz')).rules;
        return rules.some((r) => r.kind === 'VirtualService') ? undefined : rules;
      }, 5000, 'VirtualServices gone with their CRD');
      assert.deepEqual([...new Set(after.map((r) => r.kind))], ['DestinationRule']);
    } finally {
      await meshpilot.close();
      await api.close();
    }
  });
});

describe('choosing and merging sources', () => {
  it('takes services from the cluster and rules from a directory; on a clash the directory wins', async () => {
    const api = await FakeKubeApi.start();
    for (const crd of istioCrds()) api.installCrd(crd);
    api.applyAll([
      service('ratings', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.40'),
      pod('ratings-v1-0', 'default', '10.244.1.40', { app: 'ratings', version: 'v1' }),
      endpointSlice('ratings', 'default', { name: 'http', port: 9080 }, [{ name: 'ratings-v1-0', ip: '10.244.1.40' }]),
      rule('VirtualService', 'ratings', 'default', { hosts: ['ratings'], http: [{ route: [{ destination: { host: 'ratings', subset: 'cluster' } }] }] }),
    ]);
    const dir = await MeshDir.create();
    await dir.write('rules.yaml', [
      rule('VirtualService', 'ratings', 'default', { hosts: ['ratings'], http: [{ route: [{ destination: { host: 'ratings', subset: 'v1' } }] }] }),
      rule('DestinationRule', 'ratings', 'default', { host: 'ratings', subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    ]);
    const meshpilot = await startMeshpilotOnKube(api, { configDir: dir.path });
    try {
      await ready(meshpilot);
      const registry = await json<Registry>(meshpilot, '/debug/registryz');
      assert.deepEqual(registry.services.map((s) => [s.hostname, s.source.origin, s.endpoints.length]), [['ratings.default.svc.cluster.local', 'kube', 1]]);
      const configz = await json<Configz>(meshpilot, '/debug/configz');
      assert.deepEqual(configz.rules.map((r) => [r.kind, r.source.origin]).sort(), [['DestinationRule', 'file'], ['VirtualService', 'file']]);
    } finally {
      await meshpilot.close();
      await api.close();
      await dir.remove();
    }
  });

  it('watches only the namespaces given with --namespaces', async () => {
    const api = await FakeKubeApi.start();
    api.applyAll([
      service('ratings', 'default', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.40'),
      service('ratings', 'staging', [{ name: 'http', port: 9080, targetPort: 9080 }], '10.96.0.41'),
    ]);
    const meshpilot = await startMeshpilotOnKube(api, { namespaces: ['staging'] });
    try {
      await ready(meshpilot);
      const registry = await json<Registry>(meshpilot, '/debug/registryz');
      assert.deepEqual(registry.services.map((s) => s.hostname), ['ratings.staging.svc.cluster.local']);
      assert.ok(api.requests.some((r) => r.path === '/api/v1/namespaces/staging/services'));
      assert.ok(!api.requests.some((r) => r.path === '/api/v1/services'), 'no cluster-wide service list');
    } finally {
      await meshpilot.close();
      await api.close();
    }
  });

  it('picks the sources from the command line as the README documents', () => {
    const plain = { configDirGiven: false, inCluster: false };
    assert.deepEqual(selectSources(plain), ['file']);
    assert.deepEqual(selectSources({ ...plain, kubeconfig: 'k' }), ['kube']);
    assert.deepEqual(selectSources({ ...plain, kubeconfig: 'k', configDirGiven: true }), ['file', 'kube']);
    assert.deepEqual(selectSources({ ...plain, inCluster: true }), ['kube']);
    assert.deepEqual(selectSources({ ...plain, inCluster: true, configDirGiven: true }), ['file']);
    assert.deepEqual(selectSources({ ...plain, source: 'kube', configDirGiven: true }), ['file', 'kube']);
    assert.deepEqual(selectSources({ ...plain, source: 'file', inCluster: true }), ['file']);
    assert.throws(() => selectSources({ ...plain, source: 'file', kubeconfig: 'k' }), /MP_CONFIG: --kubeconfig has no effect with --source file/);
  });
});

describe('TLS Secrets read from the cluster', () => {
  it("serves a gateway the Secret its Gateway names, rotated in place, refuses a broken one with its API path, and leaves other Secrets unread", async () => {
    const api = await FakeKubeApi.start({ bookmarkIntervalMs: 300 });
    for (const crd of istioCrds()) api.installCrd(crd);
    api.apply(tlsSecret('ingress-cert', 'istio-system', FIXTURE_CREDENTIAL));
    api.apply({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/service-account-token', metadata: { name: 'default-token', namespace: 'istio-system' }, data: { token: 'dG9rZW4=' } });
    const meshpilot = await startMeshpilotOnKube(api, { serve: { xdsPlaintextSecrets: true } });
    const client = new RawAdsClient(meshpilot.xdsPort, 'router~10.244.9.9~ingress-0.istio-system~istio-system.svc.cluster.local');
    try {
      await ready(meshpilot);
      client.send({ typeUrl: SECRET_TYPE, names: ['kubernetes://ingress-cert'] });
      const first = await client.next((r) => r.type_url === SECRET_TYPE);
      assert.deepEqual(first.resources.map((r) => r['name']), ['kubernetes://ingress-cert']);
      client.ack(first, ['kubernetes://ingress-cert']);

      const rotated = await issueTestPair(await createTestRoot('rotation CA'), [{ type: 'dns', value: 'bookinfo.example.com' }]);
      api.apply(tlsSecret('ingress-cert', 'istio-system', { cert: rotated.certPem, key: rotated.keyPem }));
      const pushed = await client.next((r) => r.type_url === SECRET_TYPE, 1);
      const chain = (pushed.resources[0]?.['tls_certificate'] as { certificate_chain: { inline_bytes: string } }).certificate_chain.inline_bytes;
      assert.equal(Buffer.from(chain, 'base64').toString('utf8'), rotated.certPem);

      api.apply(tlsSecret('broken-cert', 'istio-system', { cert: rotated.certPem, key: FIXTURE_CREDENTIAL.key }));
      const rejected = await eventually(async () => (await json<Configz>(meshpilot, '/debug/configz')).rejected.find((r) => r.object === 'Secret istio-system/broken-cert'), 5000, 'the broken Secret in /debug/configz');
      assert.deepEqual([rejected.errors[0]?.code, rejected.errors[0]?.path, rejected.source.location], ['MP_SECRET_INVALID', 'data.tls.key', '/api/v1/namespaces/istio-system/secrets/broken-cert']);
      assert.ok(!JSON.stringify(await json<Configz>(meshpilot, '/debug/configz')).includes('default-token'), 'a token Secret is not read');
    } finally {
      client.close();
      await meshpilot.close();
      await api.close();
    }
  });
});
