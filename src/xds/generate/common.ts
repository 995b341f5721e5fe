// Small proto3 JSON builders shared by the generators.
import type { JsonObject } from '../proto-json.ts';

/** Resources arrive on the same ADS stream. */
export const ADS_CONFIG_SOURCE: JsonObject = { ads: {}, resource_api_version: 'V3' };

export function typed(typeUrl: string, body: JsonObject): JsonObject {
  return { '@type': typeUrl, ...body };
}

export function socketAddress(address: string, port: number): JsonObject {
  return { socket_address: { address, port_value: port } };
}

export function durationMs(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const rest = ms % 1000;
  return rest === 0 ? `${seconds}s` : `${seconds}.${String(rest).padStart(3, '0')}s`;
}
