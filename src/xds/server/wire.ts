// Hand-assembled protobuf for the discovery envelopes: resource bytes are spliced in as they
// were encoded once, so a response costs a memcpy per resource, not a re-encode.
import type { EnvoyResource as TypedResource } from '../resource.ts';

// Any resource type: the agent's SDS server sends Secrets through the same encoders.
type EnvoyResource = TypedResource<string>;

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Buffer, offset: number, value: number): number {
  while (value >= 0x80) {
    out[offset++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[offset++] = value;
  return offset;
}

/** One length-delimited field (`tag` is the field number) holding `body`. */
export function lengthDelimited(field: number, body: Uint8Array): Buffer {
  const tag = (field << 3) | 2;
  const out = Buffer.allocUnsafe(varintSize(tag) + varintSize(body.length) + body.length);
  let offset = writeVarint(out, 0, tag);
  offset = writeVarint(out, offset, body.length);
  out.set(body, offset);
  return out;
}

export function stringField(field: number, value: string): Buffer {
  return value === '' ? Buffer.alloc(0) : lengthDelimited(field, Buffer.from(value, 'utf8'));
}

/** Field `field` repeated once per resource, each element already encoded. */
export function repeatedMessages(field: number, elements: readonly Buffer[]): Buffer[] {
  return elements.map((element) => lengthDelimited(field, element));
}

/**
 * Each resource's envelopes, built once and reused by every response that carries the resource.
 * One per server (or SDS server): nothing is shared between servers.
 */
export class ResourceWire {
  readonly #any = new WeakMap<EnvoyResource, Buffer>();
  readonly #delta = new WeakMap<EnvoyResource, Buffer>();
  readonly #element = new WeakMap<EnvoyResource, Buffer>();

  /** google.protobuf.Any { type_url = 1; value = 2 } */
  any(resource: EnvoyResource): Buffer {
    let bytes = this.#any.get(resource);
    if (!bytes) {
      bytes = Buffer.concat([stringField(1, resource.typeUrl), lengthDelimited(2, resource.bytes)]);
      this.#any.set(resource, bytes);
    }
    return bytes;
  }

  /** envoy.service.discovery.v3.Resource { version = 1; resource = 2; name = 3 } */
  deltaResource(resource: EnvoyResource): Buffer {
    let bytes = this.#delta.get(resource);
    if (!bytes) {
      bytes = Buffer.concat([stringField(1, resource.version), lengthDelimited(2, this.any(resource)), stringField(3, resource.name)]);
      this.#delta.set(resource, bytes);
    }
    return bytes;
  }

  /** One element of DiscoveryResponse's `repeated google.protobuf.Any resources = 2`. */
  responseElement(resource: EnvoyResource): Buffer {
    let bytes = this.#element.get(resource);
    if (!bytes) {
      bytes = lengthDelimited(2, this.any(resource));
      this.#element.set(resource, bytes);
    }
    return bytes;
  }
}
