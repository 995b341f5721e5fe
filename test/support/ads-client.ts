// A raw ADS client for protocol tests: sends exactly the DiscoveryRequests a test writes and
// records every DiscoveryResponse, decoded to proto3 JSON.
import * as grpc from '@grpc/grpc-js';
import type { Json, JsonObject } from '../../src/xds/proto-json.ts';
import { messageToJson } from '../../src/xds/proto-json.ts';
import { messageType } from '../../src/xds/protos.ts';
import { encodeDiscoveryRequestJson } from '../../src/xds/server/messages.ts';
import { rawMethod } from './backends.ts';
import { ResponseLog } from './response-log.ts';

export const ADS_SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/**
 * Opens one bidirectional stream on `path` (ADS or a per-type service such as StreamClusters), to
 * a loopback port, a gRPC target such as `unix:/path/socket` (the agent's SDS), or over a client
 * the test made (the secure port, with credentials).
 */
export function openRawStream(xdsPort: number | string | grpc.Client, path: string): { client: grpc.Client; stream: grpc.ClientDuplexStream<Buffer, Buffer> } {
  const client = xdsPort instanceof grpc.Client ? xdsPort : new grpc.Client(typeof xdsPort === 'number' ? `127.0.0.1:${xdsPort}` : xdsPort, grpc.credentials.createInsecure());
  const method = rawMethod(path, true);
  const stream = client.makeBidiStreamRequest(path, method.requestSerialize, method.responseDeserialize);
  return { client, stream };
}

export interface Response {
  readonly version_info: string;
  readonly type_url: string;
  readonly nonce: string;
  readonly resources: JsonObject[];
}

export interface RequestFields {
  readonly typeUrl: string;
  readonly names?: readonly string[];
  readonly version?: string;
  readonly nonce?: string;
  readonly error?: string;
}

export class RawAdsClient {
  readonly #log = new ResponseLog<Response>();
  readonly responses: Response[] = this.#log.items;
  /** The encoded size of each response, in the order of `responses`. */
  readonly sizes: number[] = [];
  readonly #client: grpc.Client;
  readonly #stream: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly #node: JsonObject;
  #sentNode = false;

  constructor(xdsPort: number | string | grpc.Client, nodeId: string, metadata: JsonObject = {}, path = ADS_SOTW_PATH) {
    this.#node = { id: nodeId, metadata, user_agent_name: 'meshpilot-test-client' };
    const { client, stream: call } = openRawStream(xdsPort, path);
    this.#client = client;
    this.#stream = call;
    const type = messageType('envoy.service.discovery.v3.DiscoveryResponse');
    call.on('data', (bytes: Buffer) => {
      this.sizes.push(bytes.length);
      const json = messageToJson(type, type.decode(bytes)) as Record<string, Json>;
      this.#log.add({
        version_info: json['version_info'] as string,
        type_url: json['type_url'] as string,
        nonce: json['nonce'] as string,
        resources: (json['resources'] ?? []) as JsonObject[],
      });
    });
    call.on('error', () => {
      /* the test closes the stream */
    });
  }

  send(fields: RequestFields): void {
    const request: JsonObject = {
      type_url: fields.typeUrl,
      resource_names: [...(fields.names ?? [])],
      version_info: fields.version ?? '',
      response_nonce: fields.nonce ?? '',
    };
    if (!this.#sentNode) {
      request['node'] = this.#node;
      this.#sentNode = true;
    }
    if (fields.error) request['error_detail'] = { code: 3, message: fields.error };
    this.#stream.write(encodeDiscoveryRequestJson(request));
  }

  /** ACKs a response the way Envoy does: same type, its version and nonce, the current names. */
  ack(response: Response, names?: readonly string[]): void {
    this.send({ typeUrl: response.type_url, version: response.version_info, nonce: response.nonce, ...(names ? { names } : {}) });
  }

  /** Waits until a response matching `predicate` arrives (or has arrived after index `from`). */
  /** Waits until a response matching `predicate` arrives (or has arrived after index `from`). */
  next(predicate: (r: Response) => boolean = () => true, from = 0, timeoutMs = 5000): Promise<Response> {
    return this.#log.next(predicate, from, timeoutMs);
  }

  /** Resolves with the responses that arrived within `ms` after index `from` (to assert silence). */
  quiet(ms: number, from: number): Promise<Response[]> {
    return this.#log.quiet(ms, from);
  }

  /** Stops reading responses, as a stuck proxy would (HTTP/2 flow control then holds the server). */
  pause(): void {
    this.#stream.pause();
  }

  resume(): void {
    this.#stream.resume();
  }

  close(): void {
    this.#stream.end();
    this.#client.close();
  }
}
