// fixtures/sidecar-scoping: BookInfo and a shop in two namespaces, productpage kept to its own
// namespace and istio-system by a Sidecar. What three proxies are sent, against a golden file
// (MESHPILOT_UPDATE_GOLDEN=1 rewrites it after a deliberate change).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parseProxy, type Proxy } from '../src/model/proxy.ts';
import type { PushContext } from '../src/model/push-context.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy } from '../src/xds/render.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { loadFixture, violations } from './support/rendered.ts';

const GOLDEN = new URL('./golden/sidecar-scoping.json', import.meta.url);

const PROXIES: Readonly<Record<string, Proxy>> = {
  productpage: parseProxy('sidecar~10.244.1.10~productpage-v1-0.bookinfo~bookinfo.svc.cluster.local', { LABELS: { app: 'productpage', version: 'v1' } }),
  ratings: parseProxy('sidecar~10.244.1.15~ratings-v1-0.bookinfo~bookinfo.svc.cluster.local', { LABELS: { app: 'ratings', version: 'v1' } }),
  cart: parseProxy('sidecar~10.244.2.10~cart-0.shop~shop.svc.cluster.local', { LABELS: { app: 'cart' } }),
};

/** What a user reads off a config_dump to see the scope: names, virtual hosts, where unknown traffic goes. */
function summary(push: PushContext, proxy: Proxy): JsonObject {
  const rendered = renderForProxy(push, proxy);
  assert.deepEqual(violations(rendered), []);
  const sidecar = push.sidecarFor(proxy);
  const outbound = rendered[LISTENER_TYPE].find((l) => l.name === 'virtualOutbound');
  return {
    sidecar: sidecar ? `${sidecar.meta.namespace}/${sidecar.meta.name}` : null,
    clusters: rendered[CLUSTER_TYPE].map((c) => c.name),
    endpoints: rendered[ENDPOINT_TYPE].map((e) => e.name),
    listeners: rendered[LISTENER_TYPE].map((l) => l.name),
    virtualHosts: Object.fromEntries(rendered[ROUTE_TYPE].map((r) => [r.name, (r.json['virtual_hosts'] as JsonObject[]).map((v) => v['name'] as string)])),
    unknownDestinations: ((outbound?.json['filter_chains'] as JsonObject[] | undefined)?.[0]?.['name'] as string | undefined) ?? null,
  };
}

describe('fixtures/sidecar-scoping: a Sidecar in BookInfo keeps productpage to its namespace and istio-system', () => {
  it('productpage, ratings (no Sidecar) and cart (its namespace default) get what the golden file lists, all valid for Envoy', async () => {
    const push = await loadFixture('sidecar-scoping');
    const actual = Object.fromEntries(Object.entries(PROXIES).map(([name, proxy]) => [name, summary(push, proxy)]));
    if (process.env['MESHPILOT_UPDATE_GOLDEN'] === '1') await writeFile(GOLDEN, `${JSON.stringify(actual, null, 2)}\n`);
    assert.deepEqual(actual, JSON.parse(await readFile(GOLDEN, 'utf8')));
  });

  it('the golden file says what the fixture promises: productpage sees nothing of shop, ratings sees shop, cart sees productpage on 9080 only', async () => {
    const golden = JSON.parse(await readFile(GOLDEN, 'utf8')) as Record<string, { sidecar: string | null; clusters: string[]; unknownDestinations: string }>;
    const { productpage, ratings, cart } = golden;
    assert.equal(productpage?.sidecar, 'bookinfo/productpage');
    assert.ok(productpage.clusters.some((c) => c.endsWith('zipkin.istio-system.svc.cluster.local')));
    assert.ok(!productpage.clusters.some((c) => c.includes('.shop.')));
    assert.equal(ratings?.sidecar, null);
    assert.ok(ratings.clusters.includes('outbound|8080||cart.shop.svc.cluster.local'));
    assert.equal(cart?.sidecar, 'shop/default');
    assert.ok(cart.clusters.includes('outbound|9080||productpage.bookinfo.svc.cluster.local'));
    assert.ok(!cart.clusters.some((c) => c.includes('reviews')));
    assert.equal(cart.unknownDestinations, 'BlackHoleFilterChain');
  });
});
