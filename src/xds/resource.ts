// A generated resource: its proto3 JSON, encoded once on first use, versioned by content.
import { createHash } from 'node:crypto';
import type { MessageByTypeUrl } from './envoy-types.generated.ts';
import type { JsonObject } from './proto-json.ts';
import { encodeProtoJson, protoJson } from './proto-json.ts';
import { messageType } from './protos.ts';
import type { ResourceTypeUrl } from './type-urls.ts';
import { messageNameOf } from './type-urls.ts';

/** `T` is a resource type URL; the ADS types by default, SDS's Secret for the agent. */
export class EnvoyResource<T extends string = ResourceTypeUrl> {
  readonly typeUrl: T;
  readonly name: string;
  readonly json: JsonObject;
  #bytes: Uint8Array | undefined;
  #version: string | undefined;
  #versionWords: readonly [number, number] | undefined;

  constructor(typeUrl: T, name: string, json: JsonObject) {
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

  /** The version as two 32-bit words, for combining into set versions. */
  get versionWords(): readonly [number, number] {
    this.#versionWords ??= [Number.parseInt(this.version.slice(0, 8), 16), Number.parseInt(this.version.slice(8), 16)];
    return this.#versionWords;
  }
}

/**
 * Version of a SotW response, independent of order: the sum of the resources' 64-bit content
 * hashes (which cover their names), so a set of thousands costs a few additions, not a sort.
 */
export function versionOfSet(resources: readonly EnvoyResource<string>[]): string {
  let hi = 0;
  let lo = 0;
  for (const resource of resources) {
    // Indexed, not destructured: destructuring allocates an iterator per resource, per stream.
    const words = resource.versionWords;
    hi = (hi + words[0]) >>> 0;
    lo = (lo + words[1]) >>> 0;
  }
  // The count is mixed in too, so adding and removing resources never cancel out.
  hi = (hi ^ Math.imul(resources.length, 0x9e3779b1)) >>> 0;
  return `${hi.toString(16).padStart(8, '0')}${lo.toString(16).padStart(8, '0')}`;
}

/**
 * Resources by content, across pushes: a push rebuilds every resource's JSON, but one whose JSON
 * is unchanged (or that another namespace's proxies also get) is the same object, already
 * encoded and hashed. Two generations are kept: the newest push's and the one before.
 */
class ResourceInterner {
  #generation = -1;
  #current = new Map<string, EnvoyResource>();
  #previous = new Map<string, EnvoyResource>();

  intern(generation: number, typeUrl: ResourceTypeUrl, name: string, json: JsonObject): EnvoyResource {
    if (generation > this.#generation) {
      this.#generation = generation;
      this.#previous = this.#current;
      this.#current = new Map();
    }
    // A digest of the JSON, not the JSON itself: a route configuration's text can be half a megabyte.
    const key = `${typeUrl}\u0000${name}\u0000${createHash('sha1').update(JSON.stringify(json)).digest('base64')}`;
    let resource = this.#current.get(key);
    if (resource) return resource;
    resource = this.#previous.get(key) ?? new EnvoyResource(typeUrl, name, json);
    this.#current.set(key, resource);
    return resource;
  }
}

const interner = new ResourceInterner();

/** A resource built from its message type (the converter still checks it when it is encoded). */
export function typedResource<U extends keyof MessageByTypeUrl>(typeUrl: U, name: string, message: MessageByTypeUrl[U]): EnvoyResource<U> {
  return new EnvoyResource(typeUrl, name, protoJson(message));
}

/** The resource with this content, shared with earlier pushes and other proxies when it is unchanged. */
export function internResource<U extends ResourceTypeUrl>(generation: number, typeUrl: U, name: string, message: MessageByTypeUrl[U]): EnvoyResource {
  return interner.intern(generation, typeUrl, name, protoJson(message));
}
