// Reading a proxy's rendered config the way a user reads a config_dump: by names.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildPushContext, type PushContext } from '../../src/model/push-context.ts';
import { parseProxy } from '../../src/model/proxy.ts';
import { loadDirectory } from '../../src/sources/yaml-source.ts';
import type { JsonObject } from '../../src/xds/proto-json.ts';
import { renderForProxy, type RenderedResources } from '../../src/xds/render.ts';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/xds/type-urls.ts';

export const FIXTURES = new URL('../../fixtures/', import.meta.url).pathname;
export const SIDECAR = parseProxy('sidecar~10.244.0.20~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local');
export const GRPC = parseProxy('sidecar~10.244.0.21~grpc-client-0.default~default.svc.cluster.local', { GENERATOR: 'grpc' });

export async function loadFixture(name: string): Promise<PushContext> {
  const converted = await loadDirectory(join(FIXTURES, name));
  assert.deepEqual(converted.rejected, [], `fixture ${name} has rejected objects`);
  return buildPushContext(converted);
}

export class Rendered {
  constructor(readonly resources: RenderedResources) {}

  cluster(name: string): JsonObject {
    const found = this.resources[CLUSTER_TYPE].find((c) => c.name === name);
    assert.ok(found, `no cluster ${name}`);
    return found.json;
  }

  listener(name: string): JsonObject {
    const found = this.resources[LISTENER_TYPE].find((l) => l.name === name);
    assert.ok(found, `no listener ${name}`);
    return found.json;
  }

  /** The routes of a virtual host of a RouteConfiguration. */
  routes(routeConfig: string, virtualHost: string): JsonObject[] {
    const config = this.resources[ROUTE_TYPE].find((r) => r.name === routeConfig);
    assert.ok(config, `no route configuration ${routeConfig}`);
    const vhost = (config.json['virtual_hosts'] as JsonObject[]).find((v) => v['name'] === virtualHost);
    assert.ok(vhost, `no virtual host ${virtualHost} in ${routeConfig}`);
    return vhost['routes'] as JsonObject[];
  }
}

export async function renderSidecar(fixture: string): Promise<Rendered> {
  return new Rendered(renderForProxy(await loadFixture(fixture), SIDECAR));
}

export async function renderGrpc(fixture: string, targets: readonly string[]): Promise<Rendered> {
  return new Rendered(renderForProxy(await loadFixture(fixture), GRPC, targets));
}

/** The HttpConnectionManager of a listener's first filter chain (or an API listener). */
export function connectionManager(listener: JsonObject): JsonObject {
  const api = listener['api_listener'] as JsonObject | undefined;
  if (api) return api['api_listener'] as JsonObject;
  const chain = (listener['filter_chains'] as JsonObject[])[0];
  return ((chain?.['filters'] as JsonObject[])[0]?.['typed_config'] ?? {}) as JsonObject;
}
