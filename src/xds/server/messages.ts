// DiscoveryRequest decoding and DiscoveryResponse encoding; resource bytes are copied, never re-encoded.
import { createHash } from 'node:crypto';
import type protobuf from 'protobufjs';
import type { Json } from '../proto-json.ts';
import { encodeProtoJson, messageToJson } from '../proto-json.ts';
import { messageType } from '../protos.ts';
import type { EnvoyResource } from '../resource.ts';
import type { ResourceWire } from './wire.ts';
import { lengthDelimited, repeatedMessages, stringField } from './wire.ts';

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly userAgentName: string;
  readonly userAgentVersion: string;
  readonly locality?: Readonly<Record<string, unknown>>;
}


/** Resource names one request may carry (subscribed, unsubscribed and initial versions together). */
export const MAX_RESOURCE_NAMES = 100_000;
/** Longest node id accepted: Istio's are a few hundred bytes; the id is shown and logged as is. */
export const MAX_NODE_ID_CHARS = 1024;

let requestType: protobuf.Type | undefined;
let deltaRequestType: protobuf.Type | undefined;

function asRecord(value: Json | undefined): Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
}

function asString(value: Json | undefined): string {
  return typeof value === 'string' ? value : '';
}

export function decodeNode(json: Json | undefined): NodeInfo | undefined {
  if (json === undefined) return undefined;
  const node = asRecord(json);
  const id = asString(node['id']);
  if (id.length > MAX_NODE_ID_CHARS) throw new Error(`the node id is ${id.length} characters long; at most ${MAX_NODE_ID_CHARS} are accepted`);
  const locality = node['locality'];
  return {
    id,
    // Shown and logged as they are: kept to a length any real client stays within.
    cluster: asString(node['cluster']).slice(0, MAX_NODE_ID_CHARS),
    metadata: asRecord(node['metadata']),
    userAgentName: asString(node['user_agent_name']).slice(0, 256),
    userAgentVersion: asString(node['user_agent_version']).slice(0, 256),
    ...(locality !== undefined ? { locality: asRecord(locality) } : {}),
  };
}

export interface DiscoveryRequest {
  readonly versionInfo: string;
  readonly node?: NodeInfo;
  readonly resourceNames: readonly string[];
  /**
   * The resource_names as sent (tags and lengths included), and a digest of them: clients repeat
   * their whole subscription in every ACK, so an unchanged list is recognised without reading a
   * thousand names. The span is only valid during the call that received the request.
   */
  readonly namesSpan: Buffer;
  readonly namesDigest: string;
  readonly typeUrl: string;
  readonly responseNonce: string;
  readonly errorDetail?: { readonly code: number; readonly message: string };
}

let nodeType: protobuf.Type | undefined;

/** Reads a varint at `offset`: [value, next offset]. */
function readVarint(bytes: Uint8Array, offset: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (offset >= bytes.length) throw new Error('truncated varint');
    const byte = bytes[offset++] as number;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, offset];
    scale *= 128;
  }
}

/**
 * Visits each top-level field: `start`/`end` bound a length-delimited body (or a varint's bytes,
 * with its `value`), `tagStart` is where the field begins. Tags and most lengths are one byte,
 * read without the general varint reader: an EDS ACK repeats thousands of names.
 */
function eachField(bytes: Uint8Array, visit: (field: number, start: number, end: number, value: number, delimited: boolean, tagStart: number) => void): void {
  let offset = 0;
  while (offset < bytes.length) {
    const tagStart = offset;
    let tag = bytes[offset] as number;
    let afterTag = offset + 1;
    if (tag >= 0x80) [tag, afterTag] = readVarint(bytes, offset);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const [value, next] = readVarint(bytes, afterTag);
      offset = next;
      visit(field, afterTag, offset, value, false, tagStart);
    } else if (wire === 2) {
      let length = afterTag < bytes.length ? (bytes[afterTag] as number) : 0x80;
      let start = afterTag + 1;
      if (length >= 0x80) [length, start] = readVarint(bytes, afterTag);
      offset = start + length;
      if (offset > bytes.length) throw new Error('truncated field');
      visit(field, start, offset, 0, true, tagStart);
    } else if (wire === 1) offset = afterTag + 8;
    else if (wire === 5) offset = afterTag + 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

const tooManyNames = (): Error => new Error(`the request names more than ${MAX_RESOURCE_NAMES} resources, the most one request may`);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * DiscoveryRequest, read by hand: the hot path of every ACK. The node (first request only, for
 * most clients) goes through the proto3 JSON mapping; resource names are only located, and read
 * when the connection finds that the subscription may have changed.
 */
export function decodeDiscoveryRequest(bytes: Uint8Array): DiscoveryRequest {
  let versionInfo = '';
  let typeUrl = '';
  let responseNonce = '';
  let node: NodeInfo | undefined;
  let errorDetail: { code: number; message: string } | undefined;
  // Only where the names lie and how many: an ACK repeating 1,400 names allocates nothing for them.
  let nameCount = 0;
  let namesStart = 0;
  let namesEnd = 0;
  eachField(bytes, (field, start, end, _value, delimited, tagStart) => {
    if (!delimited) return; // every field used here is length-delimited
    if (field === 3) {
      if (nameCount === 0) namesStart = tagStart;
      namesEnd = end;
      if (++nameCount > MAX_RESOURCE_NAMES) throw tooManyNames();
    } else if (field === 1) versionInfo = utf8.decode(bytes.subarray(start, end));
    else if (field === 4) typeUrl = utf8.decode(bytes.subarray(start, end));
    else if (field === 5) responseNonce = utf8.decode(bytes.subarray(start, end));
    else if (field === 2) {
      nodeType ??= messageType('envoy.config.core.v3.Node');
      node = decodeNode(messageToJson(nodeType, nodeType.decode(bytes.subarray(start, end))));
    } else if (field === 6) errorDetail = decodeStatus(bytes.subarray(start, end));
    // other fields (resource_locators, newer protos): not used
  });
  const namesSpan = nameCount === 0 ? EMPTY : Buffer.from(bytes.buffer, bytes.byteOffset + namesStart, namesEnd - namesStart);
  let names: string[] | undefined;
  let digest: string | undefined;
  return {
    versionInfo,
    ...(node ? { node } : {}),
    get resourceNames(): readonly string[] {
      if (!names) {
        const read: string[] = [];
        // The span holds every name, and only fields a client put between them besides.
        eachField(namesSpan, (field, start, end, _value, delimited) => {
          if (field === 3 && delimited) read.push(utf8.decode(namesSpan.subarray(start, end)));
        });
        names = read;
      }
      return names;
    },
    namesSpan,
    get namesDigest(): string {
      // One hash over the span that holds the names, tags and lengths included: same bytes, same names.
      digest ??= namesSpan.length === 0 ? '' : createHash('sha1').update(namesSpan).digest('base64');
      return digest;
    },
    typeUrl,
    responseNonce,
    ...(errorDetail ? { errorDetail } : {}),
  };
}

const EMPTY = Buffer.alloc(0);

/** An int32 varint: its low 32 bits, as a signed number (negative values take 10 bytes on the wire). */
function int32Varint(bytes: Uint8Array, start: number, end: number): number {
  let value = 0;
  for (let i = start, shift = 0; i < end && shift < 32; i++, shift += 7) value |= ((bytes[i] as number) & 0x7f) << shift;
  return value | 0;
}

/** google.rpc.Status { int32 code = 1; string message = 2; } */
function decodeStatus(bytes: Uint8Array): { code: number; message: string } {
  let code = 0;
  let message = '';
  eachField(bytes, (field, start, end) => {
    if (field === 1) code = int32Varint(bytes, start, end);
    else if (field === 2) message = utf8.decode(bytes.subarray(start, end));
  });
  return { code, message };
}

/** A DiscoveryResponse without its nonce: the body many streams may be sent alike. */
export interface DiscoveryResponseBody {
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly resources: readonly EnvoyResource<string>[];
  readonly controlPlaneId: string;
}

export interface DiscoveryResponseFields extends DiscoveryResponseBody {
  readonly nonce: string;
}

/** DiscoveryResponse { version_info = 1; resources = 2; type_url = 4; control_plane = 6 }, the nonce (5) left out. */
export function encodeDiscoveryResponseBody(fields: DiscoveryResponseBody, wire: ResourceWire): Buffer {
  return Buffer.concat([
    stringField(1, fields.versionInfo),
    ...fields.resources.map((r) => wire.responseElement(r)),
    stringField(4, fields.typeUrl),
    lengthDelimited(6, stringField(1, fields.controlPlaneId)),
  ]);
}

/**
 * The nonce of a DiscoveryResponse or a DeltaDiscoveryResponse (field 5 in both), written after a
 * shared body: protobuf reads fields in any order, so each stream adds its own to the same bytes.
 */
export function nonceField(nonce: string): Buffer {
  return stringField(5, nonce);
}

/** A whole DiscoveryResponse in one buffer (the SDS server, test servers). */
export function encodeDiscoveryResponse(fields: DiscoveryResponseFields, wire: ResourceWire): Buffer {
  return Buffer.concat([encodeDiscoveryResponseBody(fields, wire), nonceField(fields.nonce)]);
}

export interface DeltaDiscoveryRequest {
  readonly node?: NodeInfo;
  readonly typeUrl: string;
  readonly subscribe: readonly string[];
  readonly unsubscribe: readonly string[];
  readonly initialVersions: ReadonlyMap<string, string>;
  readonly responseNonce: string;
  readonly errorDetail?: { readonly code: number; readonly message: string };
}



/** DeltaDiscoveryRequest, read by hand like DiscoveryRequest: a first subscription names thousands of resources. */
export function decodeDeltaDiscoveryRequest(bytes: Uint8Array): DeltaDiscoveryRequest {
  let node: NodeInfo | undefined;
  let typeUrl = '';
  let responseNonce = '';
  let errorDetail: { code: number; message: string } | undefined;
  const subscribe: string[] = [];
  const unsubscribe: string[] = [];
  const initialVersions = new Map<string, string>();
  let count = 0;
  eachField(bytes, (field, start, end, _value, delimited) => {
    if (!delimited) return; // every field used here is length-delimited
    if ((field === 3 || field === 4 || field === 5) && ++count > MAX_RESOURCE_NAMES) throw tooManyNames();
    const text = (): string => utf8.decode(bytes.subarray(start, end));
    if (field === 3) subscribe.push(text());
    else if (field === 4) unsubscribe.push(text());
    else if (field === 2) typeUrl = text();
    else if (field === 6) responseNonce = text();
    else if (field === 5) {
      // map<string, string> entry { key = 1; value = 2; }
      let key = '';
      let version = '';
      eachField(bytes.subarray(start, end), (entryField, from, to) => {
        const value = utf8.decode(bytes.subarray(start + from, start + to));
        if (entryField === 1) key = value;
        else if (entryField === 2) version = value;
      });
      initialVersions.set(key, version);
    } else if (field === 1) {
      nodeType ??= messageType('envoy.config.core.v3.Node');
      node = decodeNode(messageToJson(nodeType, nodeType.decode(bytes.subarray(start, end))));
    } else if (field === 7) errorDetail = decodeStatus(bytes.subarray(start, end));
    // resource locators (8, 9) and fields from newer protos: not used
  });
  return { ...(node ? { node } : {}), typeUrl, subscribe, unsubscribe, initialVersions, responseNonce, ...(errorDetail ? { errorDetail } : {}) };
}

/** A DeltaDiscoveryResponse without its nonce. */
export interface DeltaResponseBody {
  readonly systemVersionInfo: string;
  readonly typeUrl: string;
  readonly resources: readonly EnvoyResource<string>[];
  readonly removed: readonly string[];
  readonly controlPlaneId: string;
}

export interface DeltaResponseFields extends DeltaResponseBody {
  readonly nonce: string;
}

/** DeltaDiscoveryResponse { system_version_info = 1; resources = 2; type_url = 4; removed_resources = 6; control_plane = 7 }, the nonce (5) left out. */
export function encodeDeltaDiscoveryResponseBody(fields: DeltaResponseBody, wire: ResourceWire): Buffer {
  return Buffer.concat([
    stringField(1, fields.systemVersionInfo),
    ...repeatedMessages(2, fields.resources.map((r) => wire.deltaResource(r))),
    stringField(4, fields.typeUrl),
    ...fields.removed.map((name) => lengthDelimited(6, Buffer.from(name, 'utf8'))),
    lengthDelimited(7, stringField(1, fields.controlPlaneId)),
  ]);
}

/** A whole DeltaDiscoveryResponse in one buffer (the SDS server, test servers). */
export function encodeDeltaDiscoveryResponse(fields: DeltaResponseFields, wire: ResourceWire): Buffer {
  return Buffer.concat([encodeDeltaDiscoveryResponseBody(fields, wire), nonceField(fields.nonce)]);
}

/** Test clients speak the same wire format. */
export function encodeDeltaDiscoveryRequestJson(json: Json): Buffer {
  deltaRequestType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  return Buffer.from(encodeProtoJson(deltaRequestType, json));
}

/** Test clients and the CLI speak the same wire format. */
export function encodeDiscoveryRequestJson(json: Json): Buffer {
  requestType ??= messageType('envoy.service.discovery.v3.DiscoveryRequest');
  return Buffer.from(encodeProtoJson(requestType, json));
}
