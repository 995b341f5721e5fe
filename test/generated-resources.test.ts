// Every resource generated for every fixture passes Envoy's validate.rules and cross-reference
// rules, for an Envoy sidecar and for a proxyless gRPC client; and BookInfo has Istio's shapes.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildPushContext, type PushContext } from '../src/model/push-context.ts';
import { parseProxy, type Proxy } from '../src/model/proxy.ts';
import { loadDirectory } from '../src/sources/yaml-source.ts';
import type { JsonObject } from '../src/xds/proto-json.ts';
import { renderForProxy, type RenderedResources } from '../src/xds/render.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/type-urls.ts';
import { violations } from './support/rendered.ts';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const fixtureDirs = readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);

const SIDECAR = parseProxy('sidecar~10.244.0.20~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local');
const GRPC = parseProxy('sidecar~10.244.0.21~grpc-client-0.default~default.svc.cluster.local', { GENERATOR: 'grpc' });

async function loadFixture(name: string): Promise<PushContext> {
  const converted = await loadDirectory(join(FIXTURES, name));
  assert.deepEqual(converted.rejected, [], `fixture ${name} has rejected objects`);
  return buildPushContext(converted);
}

/** Every target the gRPC client's namespace may see (exportTo hides some services of some fixtures). */
function grpcTargets(push: PushContext): string[] {
  return push.viewFrom(GRPC.namespace).services.flatMap((s) => s.ports.map((p) => `${s.hostname}:${p.port}`));
}

describe('generated resources pass Envoy validation for every fixture', () => {
  for (const fixture of fixtureDirs) {
    it(`${fixture}: an Envoy sidecar's config breaks no validate.rules and no cross-reference`, async () => {
      const rendered = renderForProxy(await loadFixture(fixture), SIDECAR);
      assert.ok(rendered[LISTENER_TYPE].length > 0 && rendered[CLUSTER_TYPE].length > 0);
      assert.deepEqual(violations(rendered), []);
    });

    it(`${fixture}: a proxyless gRPC client's config breaks none either`, async () => {
      const push = await loadFixture(fixture);
      const rendered = renderForProxy(push, GRPC, grpcTargets(push));
      assert.equal(rendered[LISTENER_TYPE].length, grpcTargets(push).length);
      assert.deepEqual(violations(rendered), []);
    });
  }
});

describe('BookInfo as an Envoy sidecar in namespace default receives it', () => {
  async function bookinfo(proxy: Proxy = SIDECAR): Promise<RenderedResources> {
    return renderForProxy(await loadFixture('bookinfo'), proxy);
  }

  it('has one cluster per service port and per subset, with Istio names', async () => {
    const names = (await bookinfo())[CLUSTER_TYPE].map((c) => c.name);
    for (const v of ['', 'v1', 'v2', 'v3']) assert.ok(names.includes(`outbound|9080|${v}|reviews.default.svc.cluster.local`), v);
    assert.ok(names.includes('outbound|9080|v1|ratings.default.svc.cluster.local'));
    assert.ok(names.includes('BlackHoleCluster') && names.includes('PassthroughCluster'));
  });

  it('selects subset endpoints by the labels of their pods', async () => {
    const rendered = await bookinfo();
    const cla = rendered[ENDPOINT_TYPE].find((e) => e.name === 'outbound|9080|v2|reviews.default.svc.cluster.local');
    const all = rendered[ENDPOINT_TYPE].find((e) => e.name === 'outbound|9080||reviews.default.svc.cluster.local');
    const count = (j: JsonObject | undefined): number =>
      ((j?.['endpoints'] ?? []) as JsonObject[]).reduce((n, l) => n + (l['lb_endpoints'] as JsonObject[]).length, 0);
    assert.equal(count(cla?.json), 1);
    assert.equal(count(all?.json), 3);
  });

  it('has listener 0.0.0.0_9080 using RDS "9080"', async () => {
    const listener = (await bookinfo())[LISTENER_TYPE].find((l) => l.name === '0.0.0.0_9080');
    const hcm = ((listener?.json['filter_chains'] as JsonObject[])[0]?.['filters'] as JsonObject[])[0]?.['typed_config'] as JsonObject;
    assert.deepEqual((hcm['rds'] as JsonObject)['route_config_name'], '9080');
  });

  it('gives reviews a virtual host with every name a caller may use, with and without the port', async () => {
    const route = (await bookinfo())[ROUTE_TYPE].find((r) => r.name === '9080');
    const vhost = (route?.json['virtual_hosts'] as JsonObject[]).find((v) => v['name'] === 'reviews.default.svc.cluster.local:9080');
    const domains = vhost?.['domains'] as string[];
    for (const name of ['reviews', 'reviews.default', 'reviews.default.svc', 'reviews.default.svc.cluster.local']) {
      assert.ok(domains.includes(name) && domains.includes(`${name}:9080`), name);
    }
    assert.ok(domains.some((d) => /^\d+\.\d+\.\d+\.\d+$/.test(d)), 'the VIP is a domain');
  });

  it('sends jason to v2 first and splits everyone else 50/50 between v1 and v3', async () => {
    const route = (await bookinfo())[ROUTE_TYPE].find((r) => r.name === '9080');
    const vhost = (route?.json['virtual_hosts'] as JsonObject[]).find((v) => v['name'] === 'reviews.default.svc.cluster.local:9080');
    const [jason, rest] = vhost?.['routes'] as JsonObject[];
    assert.deepEqual((jason?.['match'] as JsonObject)['headers'], [{ name: 'end-user', string_match: { exact: 'jason' } }]);
    assert.equal((jason?.['route'] as JsonObject)['cluster'], 'outbound|9080|v2|reviews.default.svc.cluster.local');
    assert.deepEqual(((rest?.['route'] as JsonObject)['weighted_clusters'] as JsonObject)['clusters'], [
      { name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: 50 },
      { name: 'outbound|9080|v3|reviews.default.svc.cluster.local', weight: 50 },
    ]);
  });

  it('leaves short names out for callers in another namespace', async () => {
    const other = parseProxy('sidecar~10.244.9.9~client-0.other~other.svc.cluster.local');
    const route = (await bookinfo(other))[ROUTE_TYPE].find((r) => r.name === '9080');
    const vhost = (route?.json['virtual_hosts'] as JsonObject[]).find((v) => v['name'] === 'reviews.default.svc.cluster.local:9080');
    assert.ok(!(vhost?.['domains'] as string[]).includes('reviews'));
    assert.ok((vhost?.['domains'] as string[]).includes('reviews.default'));
  });

  it('versions are content hashes: a second load gives the same versions', async () => {
    const versions = async (): Promise<string[]> => {
      const r = await bookinfo();
      const types = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE] as const;
      return types.flatMap((t) => r[t].map((x) => `${x.name}=${x.version}`));
    };
    assert.deepEqual(await versions(), await versions());
  });
});
