// Envoy's /config_dump JSON shape for a set of resources, as a proxy holds them.
import type { JsonObject } from './proto-json.ts';
import type { EnvoyResource } from './resource.ts';
import type { ResourceTypeUrl } from './type-urls.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from './type-urls.ts';

export interface DumpedType {
  readonly version: string;
  readonly at: Date;
  readonly resources: readonly EnvoyResource[];
}

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

function withType(resource: EnvoyResource): JsonObject {
  return { '@type': resource.typeUrl, ...resource.json };
}

/** What Envoy's own config_dump shows for a private key: never the key. */
export const REDACTED = '[redacted]';

/** A Secret as config_dump shows it: the certificates, and the private key redacted as Envoy redacts it. */
export function redactSecret(json: JsonObject): JsonObject {
  const certificate = json['tls_certificate'];
  if (typeof certificate !== 'object' || certificate === null || Array.isArray(certificate) || certificate['private_key'] === undefined) return json;
  return { ...json, tls_certificate: { ...certificate, private_key: { inline_string: REDACTED } } };
}

export function buildConfigDump(types: Partial<Record<ResourceTypeUrl, DumpedType>>): JsonObject {
  const configs: JsonObject[] = [];
  const at = (d: DumpedType): string => d.at.toISOString();
  const clusters = types[CLUSTER_TYPE];
  if (clusters) {
    configs.push({
      '@type': `${ADMIN}ClustersConfigDump`,
      version_info: clusters.version,
      dynamic_active_clusters: clusters.resources.map((r) => ({ version_info: clusters.version, cluster: withType(r), last_updated: at(clusters) })),
    });
  }
  const endpoints = types[ENDPOINT_TYPE];
  if (endpoints) {
    configs.push({
      '@type': `${ADMIN}EndpointsConfigDump`,
      dynamic_endpoint_configs: endpoints.resources.map((r) => ({
        version_info: endpoints.version,
        endpoint_config: withType(r),
        last_updated: at(endpoints),
      })),
    });
  }
  const listeners = types[LISTENER_TYPE];
  if (listeners) {
    configs.push({
      '@type': `${ADMIN}ListenersConfigDump`,
      version_info: listeners.version,
      dynamic_listeners: listeners.resources.map((r) => ({
        name: r.name,
        active_state: { version_info: listeners.version, listener: withType(r), last_updated: at(listeners) },
      })),
    });
  }
  const routes = types[ROUTE_TYPE];
  if (routes) {
    configs.push({
      '@type': `${ADMIN}RoutesConfigDump`,
      dynamic_route_configs: routes.resources.map((r) => ({
        version_info: routes.version,
        route_config: withType(r),
        last_updated: at(routes),
      })),
    });
  }
  const secrets = types[SECRET_TYPE];
  if (secrets) {
    configs.push({
      '@type': `${ADMIN}SecretsConfigDump`,
      dynamic_active_secrets: secrets.resources.map((r) => ({
        name: r.name,
        version_info: secrets.version,
        last_updated: at(secrets),
        secret: { '@type': r.typeUrl, ...redactSecret(r.json) },
      })),
    });
  }
  return { configs };
}
