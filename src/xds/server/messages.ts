// DiscoveryRequest decoding and DiscoveryResponse encoding; resource bytes are copied, never re-encoded.
import type protobuf from 'protobufjs';
import type { Json } from '../proto-json.ts';
import { encodeProtoJson, messageToJson } from '../proto-json.ts';
import { messageType } from '../protos.ts';
import type { EnvoyResource } from '../resource.ts';
import { encodedAny, encodedDeltaResource, lengthDelimited, repeatedMessages, stringField } from './wire.ts';

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly userAgentName: string;
  readonly userAgentVersion: string;
  readonly locality?: Readonly<Record<string, unknown>>;
}

export interface DiscoveryRequest {
  readonly versionInfo: string;
  readonly node?: NodeInfo;
  readonly resourceNames: readonly string[];
  readonly typeUrl: string;
  readonly responseNonce: string;
  readonly errorDetail?: { readonly code: number; readonly message: string };
}

let requestType: protobuf.Type | undefined;
let responseType: protobuf.Type | undefined;
let deltaRequestType: protobuf.Type | undefined;

function types(): { request: protobuf.Type; response: protobuf.Type } {
  requestType ??= messageType('envoy.service.discovery.v3.DiscoveryRequest');
  responseType ??= messageType('envoy.service.discovery.v3.DiscoveryResponse');
  return { request: requestType, response: responseType };
}

function asRecord(value: Json | undefined): Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
}

function asString(value: Json | undefined): string {
  return typeof value === 'string' ? value : '';
}

export function decodeNode(json: Json | undefined): NodeInfo | undefined {
  if (json === undefined) return undefined;
  const node = asRecord(json);
  const locality = node['locality'];
  return {
    id: asString(node['id']),
    cluster: asString(node['cluster']),
    metadata: asRecord(node['metadata']),
    userAgentName: asString(node['user_agent_name']),
    userAgentVersion: asString(node['user_agent_version']),
    ...(locality !== undefined ? { locality: asRecord(locality) } : {}),
  };
}

export function decodeDiscoveryRequest(bytes: Uint8Array): DiscoveryRequest {
  const { request } = types();
  const json = asRecord(messageToJson(request, request.decode(bytes)));
  const node = decodeNode(json['node']);
  return {
    versionInfo: asString(json['version_info']),
    ...(node ? { node } : {}),
    resourceNames: Array.isArray(json['resource_names']) ? json['resource_names'].map(String) : [],
    typeUrl: asString(json['type_url']),
    responseNonce: asString(json['response_nonce']),
    ...errorDetailOf(json['error_detail']),
  };
}

export interface DiscoveryResponseFields {
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly EnvoyResource[];
  readonly controlPlaneId: string;
}

export function encodeDiscoveryResponse(fields: DiscoveryResponseFields): Buffer {
  // DiscoveryResponse { version_info = 1; resources = 2; type_url = 4; nonce = 5; control_plane = 6 }
  return Buffer.concat([
    stringField(1, fields.versionInfo),
    ...repeatedMessages(2, fields.resources.map(encodedAny)),
    stringField(4, fields.typeUrl),
    stringField(5, fields.nonce),
    lengthDelimited(6, stringField(1, fields.controlPlaneId)),
  ]);
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

function stringList(value: Json | undefined): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function errorDetailOf(error: Json | undefined): { errorDetail: { code: number; message: string } } | Record<string, never> {
  if (error === undefined) return {};
  const record = asRecord(error);
  return { errorDetail: { code: typeof record['code'] === 'number' ? record['code'] : 0, message: asString(record['message']) } };
}

export function decodeDeltaDiscoveryRequest(bytes: Uint8Array): DeltaDiscoveryRequest {
  deltaRequestType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const json = asRecord(messageToJson(deltaRequestType, deltaRequestType.decode(bytes)));
  const node = decodeNode(json['node']);
  const initial = asRecord(json['initial_resource_versions']);
  return {
    ...(node ? { node } : {}),
    typeUrl: asString(json['type_url']),
    subscribe: stringList(json['resource_names_subscribe']),
    unsubscribe: stringList(json['resource_names_unsubscribe']),
    initialVersions: new Map(Object.entries(initial).map(([name, version]) => [name, asString(version)])),
    responseNonce: asString(json['response_nonce']),
    ...errorDetailOf(json['error_detail']),
  };
}

export interface DeltaResponseFields {
  readonly systemVersionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly EnvoyResource[];
  readonly removed: readonly string[];
  readonly controlPlaneId: string;
}

export function encodeDeltaDiscoveryResponse(fields: DeltaResponseFields): Buffer {
  // DeltaDiscoveryResponse { system_version_info = 1; resources = 2; type_url = 4; nonce = 5; removed_resources = 6; control_plane = 7 }
  return Buffer.concat([
    stringField(1, fields.systemVersionInfo),
    ...repeatedMessages(2, fields.resources.map(encodedDeltaResource)),
    stringField(4, fields.typeUrl),
    stringField(5, fields.nonce),
    ...fields.removed.map((name) => lengthDelimited(6, Buffer.from(name, 'utf8'))),
    lengthDelimited(7, stringField(1, fields.controlPlaneId)),
  ]);
}

/** Test clients speak the same wire format. */
export function encodeDeltaDiscoveryRequestJson(json: Json): Buffer {
  deltaRequestType ??= messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  return Buffer.from(encodeProtoJson(deltaRequestType, json));
}

/** Test clients and the CLI speak the same wire format. */
export function encodeDiscoveryRequestJson(json: Json): Buffer {
  return Buffer.from(encodeProtoJson(types().request, json));
}
