// Small proto3 JSON builders shared by the generators.
import type { Address, ConfigSource, MessageByTypeUrl, TypedAny } from '../envoy-types.generated.ts';
import type { EnvoyResource } from '../resource.ts';

/** Resources arrive on the same ADS stream. */
export const ADS_CONFIG_SOURCE: ConfigSource = { ads: {}, resource_api_version: 'V3' };

/** A message packed in an Any: the type URL says which message the body must be. */
export function typed<U extends keyof MessageByTypeUrl>(typeUrl: U, body: MessageByTypeUrl[U]): TypedAny<U> {
  return { '@type': typeUrl, ...body };
}

export function socketAddress(address: string, port: number): Address {
  return { socket_address: { address, port_value: port } };
}

export function durationMs(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const rest = ms % 1000;
  return rest === 0 ? `${seconds}s` : `${seconds}.${String(rest).padStart(3, '0')}s`;
}

/** Only the resources named (all of them for a wildcard request). */
export function filterNames(resources: readonly EnvoyResource[], names: readonly string[] | undefined): readonly EnvoyResource[] {
  if (!names) return resources;
  const wanted = new Set(names);
  return resources.filter((r) => wanted.has(r.name));
}
