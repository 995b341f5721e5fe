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

// Per-resource encodings, built once and shared by every stream that sends the resource.
const anyBytes = new WeakMap<EnvoyResource, Buffer>();
const deltaBytes = new WeakMap<EnvoyResource, Buffer>();

/** google.protobuf.Any { type_url = 1; value = 2 } */
export function encodedAny(resource: EnvoyResource): Buffer {
  let bytes = anyBytes.get(resource);
  if (!bytes) {
    bytes = Buffer.concat([stringField(1, resource.typeUrl), lengthDelimited(2, resource.bytes)]);
    anyBytes.set(resource, bytes);
  }
  return bytes;
}

/** envoy.service.discovery.v3.Resource { version = 1; resource = 2; name = 3 } */
export function encodedDeltaResource(resource: EnvoyResource): Buffer {
  let bytes = deltaBytes.get(resource);
  if (!bytes) {
    bytes = Buffer.concat([stringField(1, resource.version), lengthDelimited(2, encodedAny(resource)), stringField(3, resource.name)]);
    deltaBytes.set(resource, bytes);
  }
  return bytes;
}

/** Field `field` repeated once per resource, each element already encoded. */
export function repeatedMessages(field: number, elements: readonly Buffer[]): Buffer[] {
  return elements.map((element) => lengthDelimited(field, element));
}

// DiscoveryResponse.resources (field 2) element by element: each resource's is built once.
const responseElements = new WeakMap<EnvoyResource, Buffer>();

function responseElement(resource: EnvoyResource): Buffer {
  let bytes = responseElements.get(resource);
  if (!bytes) {
    bytes = lengthDelimited(2, encodedAny(resource));
    responseElements.set(resource, bytes);
  }
  return bytes;
}

/** `repeated google.protobuf.Any resources = 2` of a DiscoveryResponse, for these resources. */
export function responseResourcesBlock(resources: readonly EnvoyResource[]): Buffer[] {
  return resources.map(responseElement);
}
