// A raw Delta xDS client for protocol tests: sends exactly the DeltaDiscoveryRequests a test
// writes and records every DeltaDiscoveryResponse, decoded to proto3 JSON.
import type * as grpc from '@grpc/grpc-js';
import type { Json, JsonObject } from '../../src/xds/proto-json.ts';
import { messageToJson } from '../../src/xds/proto-json.ts';
import { messageType } from '../../src/xds/protos.ts';
import { encodeDeltaDiscoveryRequestJson } from '../../src/xds/server/messages.ts';
import { openRawStream } from './ads-client.ts';
import { ResponseLog } from './response-log.ts';

export const ADS_DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

export interface DeltaResource {
  readonly name: string;
  readonly version: string;
  readonly resource: JsonObject;
}

export interface DeltaResponse {
  readonly type_url: string;
  readonly nonce: string;
  readonly system_version_info: string;
  readonly resources: DeltaResource[];
  readonly removed_resources: string[];
}

export interface DeltaRequestFields {
  readonly typeUrl: string;
  readonly subscribe?: readonly string[];
  readonly unsubscribe?: readonly string[];
  readonly initialVersions?: Readonly<Record<string, string>>;
  readonly nonce?: string;
  readonly error?: string;
}

export class RawDeltaClient {
  readonly #log = new ResponseLog<DeltaResponse>();
  readonly responses: DeltaResponse[] = this.#log.items;
  /** The encoded size of each response, in the order of `responses`. */
  readonly sizes: number[] = [];
  readonly #client: grpc.Client;
  readonly #stream: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly #node: JsonObject;
  #sentNode = false;

  constructor(xdsPort: number | string | grpc.Client, nodeId: string, metadata: JsonObject = {}, path = ADS_DELTA_PATH) {
    this.#node = { id: nodeId, metadata, user_agent_name: 'meshpilot-test-client' };
    const { client, stream } = openRawStream(xdsPort, path);
    this.#client = client;
    this.#stream = stream;
    const type = messageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
    stream.on('data', (bytes: Buffer) => {
      this.sizes.push(bytes.length);
      const json = messageToJson(type, type.decode(bytes)) as Record<string, Json>;
      this.#log.add({
        type_url: json['type_url'] as string,
        nonce: json['nonce'] as string,
        system_version_info: (json['system_version_info'] ?? '') as string,
        resources: ((json['resources'] ?? []) as JsonObject[]).map((r) => ({
          name: r['name'] as string,
          version: r['version'] as string,
          resource: r['resource'] as JsonObject,
        })),
        removed_resources: (json['removed_resources'] ?? []) as string[],
      });
    });
    stream.on('error', () => {
      /* the test closes the stream */
    });
  }

  send(fields: DeltaRequestFields): void {
    const request: JsonObject = {
      type_url: fields.typeUrl,
      resource_names_subscribe: [...(fields.subscribe ?? [])],
      resource_names_unsubscribe: [...(fields.unsubscribe ?? [])],
      response_nonce: fields.nonce ?? '',
    };
    if (fields.initialVersions) request['initial_resource_versions'] = { ...fields.initialVersions };
    if (!this.#sentNode) {
      request['node'] = this.#node;
      this.#sentNode = true;
    }
    if (fields.error) request['error_detail'] = { code: 3, message: fields.error };
    this.#stream.write(encodeDeltaDiscoveryRequestJson(request));
  }

  ack(response: DeltaResponse): void {
    this.send({ typeUrl: response.type_url, nonce: response.nonce });
  }

  /** Waits until a response matching `predicate` arrives (or has arrived after index `from`). */
  next(predicate: (r: DeltaResponse) => boolean = () => true, from = 0, timeoutMs = 5000): Promise<DeltaResponse> {
    return this.#log.next(predicate, from, timeoutMs);
  }

  /** Resolves with the responses that arrived within `ms` after index `from` (to assert silence). */
  quiet(ms: number, from: number): Promise<DeltaResponse[]> {
    return this.#log.quiet(ms, from);
  }

  close(): void {
    this.#stream.end();
    this.#client.close();
  }
}
