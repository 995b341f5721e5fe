// A generated resource: its proto3 JSON, encoded once on first use, versioned by content.
import { createHash } from 'node:crypto';
import type { JsonObject } from './proto-json.ts';
import { encodeProtoJson } from './proto-json.ts';
import { messageType } from './protos.ts';
import type { ResourceTypeUrl } from './type-urls.ts';
import { messageNameOf } from './type-urls.ts';

export class EnvoyResource {
  readonly typeUrl: ResourceTypeUrl;
  readonly name: string;
  readonly json: JsonObject;
  #bytes: Uint8Array | undefined;
  #version: string | undefined;

  constructor(typeUrl: ResourceTypeUrl, name: string, json: JsonObject) {
    this.typeUrl = typeUrl;
    this.name = name;
    this.json = json;
  }

  /** Wire bytes of the resource message; encoded once, shared by every stream that sends it. */
  get bytes(): Uint8Array {
    this.#bytes ??= encodeProtoJson(messageType(messageNameOf(this.typeUrl)), this.json);
    return this.#bytes;
  }

  /** Content hash: the same resource gets the same version in every process and replica. */
  get version(): string {
    this.#version ??= createHash('sha256').update(this.bytes).digest('hex').slice(0, 16);
    return this.#version;
  }
}

/** Version of a SotW response: a hash of its resources' names and versions, independent of order. */
export function versionOfSet(resources: readonly EnvoyResource[]): string {
  const hash = createHash('sha256');
  for (const entry of resources.map((r) => `${r.name}\u0000${r.version}`).sort()) hash.update(entry).update('\n');
  return hash.digest('hex').slice(0, 16);
}
