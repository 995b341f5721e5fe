// The gRPC transport: AggregatedDiscoveryService on a TCP port, one XdsConnection per stream.
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { PushContext } from '../../model/push-context.ts';
import type { GenerateFn } from '../generate/index.ts';
import type { ConnectionEvents } from './connection.ts';
import { XdsConnection } from './connection.ts';
import type { DiscoveryRequest, DiscoveryResponseFields } from './messages.ts';
import { decodeDiscoveryRequest, encodeDiscoveryResponse } from './messages.ts';

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

const ADS_SERVICE: grpc.ServiceDefinition = {
  StreamAggregatedResources: {
    path: ADS_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (bytes: Buffer): DiscoveryRequest => decodeDiscoveryRequest(bytes),
    // Responses are encoded by the connection, so the bytes pass straight through.
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (bytes: Buffer) => bytes,
  },
};

export interface AdsServerOptions {
  readonly generate: GenerateFn;
  readonly currentPush: () => PushContext | undefined;
  readonly log: Logger;
  readonly events?: ConnectionEvents;
  readonly controlPlaneId?: string;
}

export class AdsServer {
  readonly #server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
  readonly #connections = new Map<string, XdsConnection>();
  readonly #streams = new Map<string, grpc.ServerDuplexStream<DiscoveryRequest, Buffer>>();
  readonly #options: AdsServerOptions;
  readonly #log: Logger;
  #connectionCounter = 0;
  #nonceCounter = 0;
  #port: number | undefined;

  constructor(options: AdsServerOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#server.addService(ADS_SERVICE, { StreamAggregatedResources: this.#handleStream });
  }

  /** Binds `host:port` (port 0 picks a free one) and resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => {
        if (error) reject(error);
        else resolve(bound);
      });
    });
    this.#log.info({ address: host, port: this.#port }, 'xDS server listening');
    return this.#port;
  }

  get port(): number | undefined {
    return this.#port;
  }

  connections(): XdsConnection[] {
    return [...this.#connections.values()];
  }

  /** Sends each connected proxy what changed, in xDS order. */
  pushAll(): void {
    for (const connection of this.#connections.values()) connection.push();
  }

  /** Ends every stream (clients reconnect, to another replica), waits for them up to `graceMs`, then stops. */
  async close(graceMs = 2000): Promise<void> {
    const deadline = Date.now() + graceMs;
    for (const stream of this.#streams.values()) stream.end();
    while (this.#streams.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    // forceShutdown also drops idle HTTP/2 sessions that a graceful shutdown would wait on forever.
    this.#server.forceShutdown();
  }

  readonly #handleStream = (stream: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>): void => {
    const id = `${++this.#connectionCounter}`;
    const connection = new XdsConnection({
      id,
      peer: stream.getPeer(),
      generate: this.#options.generate,
      currentPush: this.#options.currentPush,
      controlPlaneId: this.#options.controlPlaneId ?? `meshpilot-${hostname()}`,
      nextNonce: () => (++this.#nonceCounter).toString(36),
      send: (response: DiscoveryResponseFields) => stream.write(encodeDiscoveryResponse(response)),
      log: this.#log.child({ conn: id }),
      ...(this.#options.events ? { events: this.#options.events } : {}),
    });
    this.#connections.set(id, connection);
    this.#streams.set(id, stream);
    const close = (reason: string): void => {
      if (!this.#connections.delete(id)) return;
      this.#streams.delete(id);
      connection.log.info({ reason }, 'proxy disconnected');
    };
    stream.on('data', (request: DiscoveryRequest) => {
      try {
        connection.handleRequest(request);
      } catch (error) {
        connection.log.error({ err: error }, 'failed to handle discovery request');
        stream.destroy(error instanceof Error ? error : new Error(String(error)));
      }
    });
    stream.on('end', () => {
      close('client closed the stream');
      stream.end();
    });
    stream.on('error', (error: Error) => {
      close(error.message);
    });
    stream.on('cancelled', () => {
      close('stream cancelled');
    });
    stream.on('close', () => {
      close('stream closed');
    });
  };
}
