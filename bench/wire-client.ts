// Just enough protobuf and gRPC framing for thousands of lightweight xDS clients in one process:
// requests are assembled by hand, responses are read field by field without decoding resources.

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

/**
 * Visits each field of buf[start, end) by offsets, without a Buffer per field: a client reads
 * thousands of resources per response. `value` is the varint, or -1 for length-delimited fields.
 */
function scan(buf: Buffer, start: number, end: number, visit: (field: number, from: number, to: number) => boolean | undefined): void {
  let offset = start;
  while (offset < end) {
    const [tag, afterTag] = readVarint(buf, offset);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 2) {
      const [length, from] = readVarint(buf, afterTag);
      offset = from + length;
      if (visit(field, from, offset) === false) return;
    } else if (wire === 0) offset = readVarint(buf, afterTag)[1];
    else if (wire === 1) offset = afterTag + 8;
    else if (wire === 5) offset = afterTag + 4;
    else throw new Error(`unexpected wire type ${wire}`);
  }
}

/** The name (field 1) of the message inside an Any (value is field 2) at buf[from, to). */
function resourceName(buf: Buffer, from: number, to: number): string {
  let name = '';
  scan(buf, from, to, (field, valueFrom, valueTo) => {
    if (field !== 2) return true;
    scan(buf, valueFrom, valueTo, (inner, nameFrom, nameTo) => {
      if (inner !== 1) return true;
      name = buf.toString('utf8', nameFrom, nameTo);
      return false;
    });
    return false;
  });
  return name;
}

/** `withNames`: read each resource's name too (Envoy-like clients need them for CDS and LDS only). */
export function parseSotwResponse(buf: Buffer, withNames = true): ParsedResponse {
  let typeUrl = '';
  let nonce = '';
  let version = '';
  const names: string[] = [];
  scan(buf, 0, buf.length, (field, from, to) => {
    if (field === 1) version = buf.toString('utf8', from, to);
    else if (field === 2) {
      if (withNames) names.push(resourceName(buf, from, to));
    } else if (field === 4) typeUrl = buf.toString('utf8', from, to);
    else if (field === 5) nonce = buf.toString('utf8', from, to);
    return true;
  });
  return { typeUrl, nonce, version, names, removed: [] };
}

export function parseDeltaResponse(buf: Buffer): ParsedResponse {
  let typeUrl = '';
  let nonce = '';
  let version = '';
  const names: string[] = [];
  const removed: string[] = [];
  scan(buf, 0, buf.length, (field, from, to) => {
    if (field === 1) version = buf.toString('utf8', from, to);
    else if (field === 2) {
      // Resource { version = 1; resource = 2; name = 3 }
      scan(buf, from, to, (inner, nameFrom, nameTo) => {
        if (inner === 3) names.push(buf.toString('utf8', nameFrom, nameTo));
        return true;
      });
    } else if (field === 4) typeUrl = buf.toString('utf8', from, to);
    else if (field === 5) nonce = buf.toString('utf8', from, to);
    else if (field === 6) removed.push(buf.toString('utf8', from, to));
    return true;
  });
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
