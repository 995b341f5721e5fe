// Reading a proxy's rendered config the way a user reads a config_dump: by names.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { MeshConfig } from '../../src/model/mesh-config.ts';
import { buildPushContext, type PushContext } from '../../src/model/push-context.ts';
import { parseProxy } from '../../src/model/proxy.ts';
import { loadDirectory } from '../../src/sources/yaml-source.ts';
import type { JsonObject } from '../../src/xds/proto-json.ts';
import { renderForProxy, type RenderedResources } from '../../src/xds/render.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, type ResourceTypeUrl } from '../../src/xds/type-urls.ts';
import { checkCrossReferences } from '../../src/xds/validate/cross-refs.ts';
import { checkResourceJson } from '../../src/xds/validate/pgv.ts';

export const FIXTURES = new URL('../../fixtures/', import.meta.url).pathname;
export const SIDECAR = parseProxy('sidecar~10.244.0.20~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local');
export const GRPC = parseProxy('sidecar~10.244.0.21~grpc-client-0.default~default.svc.cluster.local', { GENERATOR: 'grpc' });

export async function loadFixture(name: string, meshConfig?: MeshConfig): Promise<PushContext> {
  const converted = await loadDirectory(join(FIXTURES, name));
  assert.deepEqual(converted.rejected, [], `fixture ${name} has rejected objects`);
  return buildPushContext(converted, meshConfig);
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

/** Every validate.rules and cross-reference violation in a proxy's resources, one line each. */
export function violations(rendered: RenderedResources): string[] {
  const out: string[] = [];
  for (const [typeUrl, resources] of Object.entries(rendered)) {
    for (const resource of resources) {
      for (const v of checkResourceJson(typeUrl, resource.json)) out.push(`${resource.name}: ${v.path}: ${v.rule}: ${v.message}`);
    }
  }
  const json = (t: keyof RenderedResources): JsonObject[] => rendered[t].map((r) => r.json);
  for (const v of checkCrossReferences({
    clusters: json(CLUSTER_TYPE),
    endpoints: json(ENDPOINT_TYPE),
    listeners: json(LISTENER_TYPE),
    routes: json(ROUTE_TYPE),
  })) {
    out.push(`${v.path}: ${v.rule}: ${v.message}`);
  }
  return out;
}

/** The resource named `name`, failing the test when the proxy was not sent it. */
export function resource(rendered: RenderedResources, typeUrl: ResourceTypeUrl, name: string): JsonObject {
  const found = rendered[typeUrl].find((r) => r.name === name);
  assert.ok(found, `no ${typeUrl.split('.').pop() ?? ''} named ${name}; got ${rendered[typeUrl].map((r) => r.name).join(', ')}`);
  // Encoding proves the JSON is a message Envoy can decode (unknown fields are errors).
  assert.ok(found.bytes.length > 0);
  return found.json;
}

export function virtualHost(routeConfig: JsonObject, name: string): JsonObject {
  const vhost = (routeConfig['virtual_hosts'] as JsonObject[]).find((v) => v['name'] === name);
  assert.ok(vhost, `no virtual host ${name}`);
  return vhost;
}

/** The typed_config of the first network filter of a filter chain. */
export function firstFilter(chain: JsonObject | undefined): JsonObject {
  const filters = (chain?.['filters'] ?? []) as JsonObject[];
  return (filters[0]?.['typed_config'] ?? {}) as JsonObject;
}

/** What a sidecar and a proxyless gRPC client are served, as type, name and content version of each resource. */
export function servedVersions(push: PushContext, grpcTargets: readonly string[]): string[] {
  return [renderForProxy(push, SIDECAR), renderForProxy(push, GRPC, grpcTargets)].flatMap((rendered) =>
    Object.values(rendered).flatMap((resources) => resources.map((r) => `${r.typeUrl} ${r.name} ${r.version}`)),
  );
}
