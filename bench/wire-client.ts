// Just enough protobuf and gRPC framing for thousands of lightweight xDS clients in one process:
// requests are assembled by hand, responses are read field by field without decoding resources.

export interface Field {
  readonly field: number;
  readonly wire: number;
  readonly value: number | Buffer;
}

function readVarint(buf: Buffer, offset: number): [number, number] {
  let result = 0;
  let shift = 1;
  for (;;) {
    const byte = buf[offset++] ?? 0;
    result += (byte & 0x7f) * shift;
    if (byte < 0x80) return [result, offset];
    shift *= 128;
  }
}

export function* fields(buf: Buffer): Generator<Field> {
  let offset = 0;
  while (offset < buf.length) {
    const [tag, next] = readVarint(buf, offset);
    offset = next;
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const [value, after] = readVarint(buf, offset);
      offset = after;
      yield { field, wire, value };
    } else if (wire === 2) {
      const [length, after] = readVarint(buf, offset);
      yield { field, wire, value: buf.subarray(after, after + length) };
      offset = after + length;
    } else if (wire === 1) {
      offset += 8;
    } else if (wire === 5) {
      offset += 4;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

export function bytesField(field: number, body: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(body.length), body]);
}

export function strField(field: number, value: string): Buffer {
  return value === '' ? Buffer.alloc(0) : bytesField(field, Buffer.from(value));
}

export interface ParsedResponse {
  readonly typeUrl: string;
  readonly nonce: string;
  readonly version: string;
  /** Names of the resources carried (Cluster/Listener/RouteConfiguration/ClusterLoadAssignment all keep it in field 1). */
  readonly names: string[];
  readonly removed: string[];
}

function resourceName(any: Buffer): string {
  for (const f of fields(any)) {
    if (f.field === 2 && Buffer.isBuffer(f.value)) {
      for (const inner of fields(f.value)) if (inner.field === 1 && Buffer.isBuffer(inner.value)) return inner.value.toString();
      return '';
    }
  }
  return '';
}

/** `withNames`: read each resource's name too (Envoy-like clients need them for CDS and LDS only). */
export function parseSotwResponse(buf: Buffer, withNames = true): ParsedResponse {
  let typeUrl = '';
  let nonce = '';
  let version = '';
  const names: string[] = [];
  for (const f of fields(buf)) {
    if (!Buffer.isBuffer(f.value)) continue;
    if (f.field === 1) version = f.value.toString();
    else if (f.field === 2) {
      if (withNames) names.push(resourceName(f.value));
    }
    else if (f.field === 4) typeUrl = f.value.toString();
    else if (f.field === 5) nonce = f.value.toString();
  }
  return { typeUrl, nonce, version, names, removed: [] };
}

export function parseDeltaResponse(buf: Buffer): ParsedResponse {
  let typeUrl = '';
  let nonce = '';
  let version = '';
  const names: string[] = [];
  const removed: string[] = [];
  for (const f of fields(buf)) {
    if (!Buffer.isBuffer(f.value)) continue;
    if (f.field === 1) version = f.value.toString();
    else if (f.field === 2) {
      for (const r of fields(f.value)) if (r.field === 3 && Buffer.isBuffer(r.value)) names.push(r.value.toString());
    } else if (f.field === 4) typeUrl = f.value.toString();
    else if (f.field === 5) nonce = f.value.toString();
    else if (f.field === 6) removed.push(f.value.toString());
  }
  return { typeUrl, nonce, version, names, removed };
}

function node(id: string): Buffer {
  return Buffer.concat([strField(1, id), strField(6, 'envoy')]);
}

// The names block of a request, kept for the list it was made from: ACKs repeat the same list.
const namesBlocks = new WeakMap<readonly string[], Buffer>();
function namesBlock(names: readonly string[]): Buffer {
  let block = namesBlocks.get(names);
  if (!block) {
    block = Buffer.concat(names.map((n) => strField(3, n)));
    namesBlocks.set(names, block);
  }
  return block;
}

/** A DiscoveryRequest as the parts of its encoding: the names block is shared between ACKs, not copied. */
export function sotwRequest(o: { nodeId?: string; typeUrl: string; names: readonly string[]; version: string; nonce: string }): Buffer[] {
  return [
    strField(1, o.version),
    o.nodeId ? bytesField(2, node(o.nodeId)) : Buffer.alloc(0),
    namesBlock(o.names),
    strField(4, o.typeUrl),
    strField(5, o.nonce),
  ];
}

export function deltaRequest(o: { nodeId?: string; typeUrl: string; subscribe: readonly string[]; unsubscribe: readonly string[]; nonce: string }): Buffer {
  return Buffer.concat([
    o.nodeId ? bytesField(1, node(o.nodeId)) : Buffer.alloc(0),
    strField(2, o.typeUrl),
    ...o.subscribe.map((n) => strField(3, n)),
    ...o.unsubscribe.map((n) => strField(4, n)),
    strField(6, o.nonce),
  ]);
}

/** gRPC length-prefixed message framing, as parts to write in order. */
export function frame(message: Buffer | readonly Buffer[]): Buffer[] {
  const parts = Buffer.isBuffer(message) ? [message] : message;
  const header = Buffer.alloc(5);
  header.writeUInt32BE(parts.reduce((n, p) => n + p.length, 0), 1);
  return [header, ...parts];
}

/** Splits a byte stream into gRPC messages; a message is joined from its chunks once, when complete. */
export class Deframer {
  #pending: Buffer[] = [];
  #size = 0;
  #need = -1;

  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    this.#pending.push(chunk);
    this.#size += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#size < 5) return;
        const head = (this.#pending[0] as Buffer).length >= 5 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending);
        this.#need = 5 + head.readUInt32BE(1);
      }
      if (this.#size < this.#need) return;
      const buf = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending, this.#size);
      onMessage(buf.subarray(5, this.#need));
      const rest = buf.subarray(this.#need);
      this.#pending = rest.length > 0 ? [rest] : [];
      this.#size = rest.length;
      this.#need = -1;
    }
  }
}
