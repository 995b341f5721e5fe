// fixtures/ingress, BookInfo's productpage behind the istio-ingressgateway, as an operator looks at
// it: `meshpilot render` shows the gateway's 8080 and 8443 listeners, the HTTPS one taking its
// certificate from the Secret over SDS (its key redacted), and `meshpilot explain` follows HTTP on
// 80 and HTTPS on 443 through the gateway to productpage.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { splitTarget } from '../src/commands/explain.ts';
import { renderConfigDump } from '../src/commands/render.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { RawAdsClient } from './support/ads-client.ts';
import { FIXTURE_CREDENTIAL } from './support/fixture-credential.ts';
import { startMeshpilot, type TestMeshpilot } from './support/meshpilot.ts';

const FIXTURE = 'fixtures/ingress';
const GATEWAY = 'router~10.244.9.9~istio-ingressgateway-5d9c8b7f6-k2x4p.istio-system~istio-system.svc.cluster.local';

interface Explained {
  readonly outcome: string;
  readonly listener: { readonly name: string } | null;
  readonly clusters: readonly { readonly name: string }[];
}

describe('fixtures/ingress: productpage behind the ingress gateway', () => {
  it('renders the gateway\'s listeners on the pod ports 8080 and 8443, HTTPS with kubernetes://bookinfo-credential, and the Secret with its key redacted', async () => {
    const { configDump, problems } = await renderConfigDump({ configDir: FIXTURE, nodeId: GATEWAY });
    assert.deepEqual(problems, []);
    const text = JSON.stringify(configDump);
    const configs = (configDump['configs'] as JsonObject[]).map((c) => (c['@type'] as string).split('.').at(-1));
    assert.deepEqual(configs, ['ClustersConfigDump', 'EndpointsConfigDump', 'ListenersConfigDump', 'RoutesConfigDump', 'SecretsConfigDump']);
    for (const name of ['0.0.0.0_8080', '0.0.0.0_8443', 'https.443.https.bookinfo-gateway.default', 'outbound|9080||productpage.default.svc.cluster.local']) assert.ok(text.includes(`"${name}"`), name);
    assert.ok(text.includes('"tls_certificate_sds_secret_configs":[{"name":"kubernetes://bookinfo-credential","sds_config":{"ads":{},"resource_api_version":"V3"}}]'));
    assert.ok(text.includes(Buffer.from(FIXTURE_CREDENTIAL.cert).toString('base64')), 'the certificate is shown');
    assert.ok(!text.includes(Buffer.from(FIXTURE_CREDENTIAL.key).toString('base64')) && text.includes('[redacted]'), 'the key is not');
  });

  describe('explain, on a connected gateway', () => {
    let meshpilot: TestMeshpilot;
    let gateway: RawAdsClient;
    before(async () => {
      meshpilot = await startMeshpilot(FIXTURE);
      gateway = new RawAdsClient(meshpilot.xdsPort, GATEWAY);
      gateway.send({ typeUrl: CLUSTER_TYPE });
      gateway.send({ typeUrl: LISTENER_TYPE });
      const listeners = await gateway.next((r) => r.type_url === LISTENER_TYPE);
      const routes = JSON.stringify(listeners.resources).match(/"route_config_name":"[^"]+"/g)?.map((m) => m.slice('"route_config_name":"'.length, -1)) ?? [];
      gateway.send({ typeUrl: ROUTE_TYPE, names: [...new Set(routes)].sort() });
      await gateway.next((r) => r.type_url === ROUTE_TYPE);
    });
    after(async () => {
      gateway.close();
      await meshpilot.close();
    });

    const explain = async (authority: string, scheme: 'http' | 'https' = 'http'): Promise<Explained> => {
      const query = new URLSearchParams({ proxyID: GATEWAY, authority, path: '/productpage', scheme });
      return (await (await meshpilot.admin(`/debug/explain?${query.toString()}`)).json()) as Explained;
    };

    it('follows http://bookinfo.example.com/productpage in on 80 (the pod\'s 8080) and https:// on 443 (8443, the chain of its SNI) to productpage', async () => {
      const http = await explain('bookinfo.example.com');
      assert.deepEqual([http.outcome, http.listener?.name, http.clusters.map((c) => c.name)], ['routed', '0.0.0.0_8080', ['outbound|9080||productpage.default.svc.cluster.local']]);
      assert.deepEqual(splitTarget('https://bookinfo.example.com/productpage'), { authority: 'bookinfo.example.com', path: '/productpage', scheme: 'https' }, '`meshpilot explain` says the request is https for an https:// URL');
      const https = await explain('bookinfo.example.com', 'https');
      assert.deepEqual([https.outcome, https.listener?.name, https.clusters.map((c) => c.name)], ['routed', '0.0.0.0_8443', ['outbound|9080||productpage.default.svc.cluster.local']]);
      assert.equal((await explain('other.example.com', 'https')).outcome, 'no_filter_chain', 'no chain serves another SNI');
    });
  });
});
