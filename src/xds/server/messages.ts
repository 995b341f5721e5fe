// DiscoveryRequest decoding and DiscoveryResponse encoding; resource bytes are copied, never re-encoded.
import type protobuf from 'protobufjs';
import type { Json } from '../proto-json.ts';
import { encodeProtoJson, messageToJson } from '../proto-json.ts';
import { messageType } from '../protos.ts';
import type { EnvoyResource } from '../resource.ts';

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
  const error = json['error_detail'];
  const errorRecord = asRecord(error);
  const node = decodeNode(json['node']);
  return {
    versionInfo: asString(json['version_info']),
    ...(node ? { node } : {}),
    resourceNames: Array.isArray(json['resource_names']) ? json['resource_names'].map(String) : [],
    typeUrl: asString(json['type_url']),
    responseNonce: asString(json['response_nonce']),
    ...(error !== undefined
      ? { errorDetail: { code: typeof errorRecord['code'] === 'number' ? errorRecord['code'] : 0, message: asString(errorRecord['message']) } }
      : {}),
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
  const { response } = types();
  const message = response.fromObject({
    version_info: fields.versionInfo,
    type_url: fields.typeUrl,
    nonce: fields.nonce,
    resources: fields.resources.map((r) => ({ type_url: r.typeUrl, value: r.bytes })),
    control_plane: { identifier: fields.controlPlaneId },
  });
  return Buffer.from(response.encode(message).finish());
}

/** Test clients and the CLI speak the same wire format. */
export function encodeDiscoveryRequestJson(json: Json): Buffer {
  return Buffer.from(encodeProtoJson(types().request, json));
}
