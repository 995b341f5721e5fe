// Checks and reads of what renderForProxy gives a proxy: Envoy's validate.rules and
// cross-references, and lookups by name for field-by-field assertions.
import assert from 'node:assert/strict';
import type { JsonObject } from '../../src/xds/proto-json.ts';
import type { RenderedResources } from '../../src/xds/render.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, type ResourceTypeUrl } from '../../src/xds/type-urls.ts';
import { checkCrossReferences } from '../../src/xds/validate/cross-refs.ts';
import { checkResourceJson } from '../../src/xds/validate/pgv.ts';

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
