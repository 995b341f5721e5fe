// The gRPC transport: ADS (SotW and Delta) and the per-type CDS/EDS/LDS/RDS services on one
// TCP port, one XdsConnection per stream.
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { PushContext } from '../../model/push-context.ts';
import type { GenerateFn } from '../generate/index.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../type-urls.ts';
import type { ConnectionEvents, StreamMode } from './connection.ts';
import { WriteBudget, XdsConnection } from './connection.ts';
import type { DeltaDiscoveryRequest, DiscoveryRequest } from './messages.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from './messages.ts';
import type { PushScope } from './push-scope.ts';
import { FULL_SCOPE } from './push-scope.ts';
import { SubscriptionPool } from './subscription.ts';

type AnyRequest = DiscoveryRequest | DeltaDiscoveryRequest;

function method(path: string, mode: StreamMode): grpc.MethodDefinition<AnyRequest, Buffer> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: () => Buffer.alloc(0),
    requestDeserialize: (bytes: Buffer): AnyRequest => (mode === 'delta' ? decodeDeltaDiscoveryRequest(bytes) : decodeDiscoveryRequest(bytes)),
    // Responses are encoded by the connection, so the bytes pass straight through.
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (bytes: Buffer) => bytes,
  };
}

interface ServiceSpec {
  readonly service: string;
  readonly sotw: string;
  readonly delta: string;
  readonly onlyType?: ResourceTypeUrl;
}

/** ADS first; the per-type services are for clients that do not multiplex. */
const SERVICES: readonly ServiceSpec[] = [
  { service: 'envoy.service.discovery.v3.AggregatedDiscoveryService', sotw: 'StreamAggregatedResources', delta: 'DeltaAggregatedResources' },
  { service: 'envoy.service.cluster.v3.ClusterDiscoveryService', sotw: 'StreamClusters', delta: 'DeltaClusters', onlyType: CLUSTER_TYPE },
  { service: 'envoy.service.endpoint.v3.EndpointDiscoveryService', sotw: 'StreamEndpoints', delta: 'DeltaEndpoints', onlyType: ENDPOINT_TYPE },
  { service: 'envoy.service.listener.v3.ListenerDiscoveryService', sotw: 'StreamListeners', delta: 'DeltaListeners', onlyType: LISTENER_TYPE },
  { service: 'envoy.service.route.v3.RouteDiscoveryService', sotw: 'StreamRoutes', delta: 'DeltaRoutes', onlyType: ROUTE_TYPE },
];

// Process-wide, so a response encoded once for many streams (see XdsConnection) never shares a
// nonce with another that a stream may be sent later.
let nonceCounter = 0;
const nextNonce = (): string => (++nonceCounter).toString(36);

/** Who decides when a connection with pending changes gets to send them (the push queue). */
export interface ConnectionScheduler {
  schedule(connection: XdsConnection): void;
}

const IMMEDIATE: ConnectionScheduler = {
  schedule: (connection) => {
    connection.flush();
  },
};

export interface AdsServerOptions {
  readonly generate: GenerateFn;
  readonly currentPush: () => PushContext | undefined;
  readonly log: Logger;
  readonly events?: ConnectionEvents;
  readonly controlPlaneId?: string;
  readonly scheduler?: ConnectionScheduler;
  /** Unwritten bytes per stream above which it waits for the client to read (back-pressure). */
  readonly highWaterBytes?: number;
  /** Unwritten bytes across all streams above which streams wait their turn (bounds memory with many proxies). */
  readonly totalHighWaterBytes?: number;
}

export class AdsServer {
  readonly #server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
  readonly #connections = new Map<string, XdsConnection>();
  readonly #streams = new Map<string, grpc.ServerDuplexStream<AnyRequest, Buffer>>();
  readonly #subscriptions = new SubscriptionPool();
  readonly budget: WriteBudget;
  readonly #options: AdsServerOptions;
  readonly #log: Logger;
  #scheduler: ConnectionScheduler;
  #connectionCounter = 0;
  #port: number | undefined;

  constructor(options: AdsServerOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#scheduler = options.scheduler ?? IMMEDIATE;
    this.budget = new WriteBudget(options.totalHighWaterBytes ?? 64 * 1024 * 1024);
    for (const spec of SERVICES) {
      this.#server.addService(
        {
          [spec.sotw]: method(`/${spec.service}/${spec.sotw}`, 'sotw'),
          [spec.delta]: method(`/${spec.service}/${spec.delta}`, 'delta'),
        },
        { [spec.sotw]: this.#handler('sotw', spec.onlyType), [spec.delta]: this.#handler('delta', spec.onlyType) },
      );
    }
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

  /** Distinct subscriptions shared by the connected streams. */
  get sharedSubscriptions(): number {
    return this.#subscriptions.size;
  }

  setScheduler(scheduler: ConnectionScheduler): void {
    this.#scheduler = scheduler;
  }

  /** Queues for each connected proxy what `scope` may have changed; the scheduler sends it. */
  pushScoped(scope: PushScope, sourceAt?: number): void {
    for (const connection of this.#connections.values()) {
      connection.enqueue(scope, sourceAt);
      if (connection.pendingTypes().length > 0) this.#scheduler.schedule(connection);
    }
  }

  /** Compares everything with what each proxy holds and sends what changed, in xDS order. */
  pushAll(): void {
    this.pushScoped(FULL_SCOPE);
  }

  /** Ends every stream (clients reconnect, to another replica), waits for them up to `graceMs`, then stops. */
  async close(graceMs = 2000): Promise<void> {
    const deadline = Date.now() + graceMs;
    for (const stream of this.#streams.values()) stream.end();
    while (this.#streams.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    // forceShutdown also drops idle HTTP/2 sessions that a graceful shutdown would wait on forever.
    this.#server.forceShutdown();
  }

  #handler(mode: StreamMode, onlyType: ResourceTypeUrl | undefined) {
    return (stream: grpc.ServerDuplexStream<AnyRequest, Buffer>): void => {
      this.#handleStream(stream, mode, onlyType);
    };
  }

  #handleStream(stream: grpc.ServerDuplexStream<AnyRequest, Buffer>, mode: StreamMode, onlyType: ResourceTypeUrl | undefined): void {
    const id = `${++this.#connectionCounter}`;
    const connection = new XdsConnection({
      id,
      peer: stream.getPeer(),
      mode,
      ...(onlyType ? { onlyType } : {}),
      generate: this.#options.generate,
      currentPush: this.#options.currentPush,
      controlPlaneId: this.#options.controlPlaneId ?? `meshpilot-${hostname()}`,
      nextNonce,
      write: (bytes, written) => {
        stream.write(bytes, () => {
          written();
        });
      },
      subscriptions: this.#subscriptions,
      budget: this.budget,
      log: this.#log.child({ conn: id }),
      onWritable: (c) => {
        this.#scheduler.schedule(c);
      },
      ...(this.#options.highWaterBytes !== undefined ? { highWaterBytes: this.#options.highWaterBytes } : {}),
      ...(this.#options.events ? { events: this.#options.events } : {}),
    });
    this.#connections.set(id, connection);
    this.#streams.set(id, stream);
    const close = (reason: string): void => {
      if (!this.#connections.delete(id)) return;
      this.#streams.delete(id);
      this.budget.waiting.delete(connection);
      connection.close();
      connection.log.info({ reason }, 'proxy disconnected');
    };
    stream.on('data', (request: AnyRequest) => {
      try {
        if (mode === 'delta') connection.handleDeltaRequest(request as DeltaDiscoveryRequest);
        else connection.handleRequest(request as DiscoveryRequest);
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
  }
}
