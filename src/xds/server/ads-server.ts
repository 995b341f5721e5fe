// The gRPC transport: ADS (SotW and Delta) and the per-type CDS/EDS/LDS/RDS services on one
// TCP port, one XdsConnection per stream.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { VerifiedIdentity } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { GenerateFn } from '../generate/index.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../type-urls.ts';
import type { ConnectionEvents, StreamMode } from './connection.ts';
import { WriteBudget, XdsConnection, wakeWaiting } from './connection.ts';
import { DEFAULT_STALL_MS } from './write-budget.ts';
import type { DeltaDiscoveryRequest, DiscoveryRequest, NodeInfo } from './messages.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from './messages.ts';
import type { PushChange } from '../../push/proxy-scope.ts';
import { FULL_CHANGE, scopeForProxy } from '../../push/proxy-scope.ts';
import { PushResponses } from './push-responses.ts';
import type { BodyStats } from './push-responses.ts';
import { SharedLists } from './shared-lists.ts';
import type { StreamShared } from './stream-protocol.ts';
import { SubscriptionPool } from './subscription.ts';
import { ResourceWire } from './wire.ts';
import type { GrpcCall, GrpcTransportOptions, TransportLimits, TransportStats } from './grpc-transport.ts';
import { GrpcStatus, GrpcTransport } from './grpc-transport.ts';
import type { XdsCall, XdsTransport } from './transport.ts';

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
  { service: 'envoy.service.secret.v3.SecretDiscoveryService', sotw: 'StreamSecrets', delta: 'DeltaSecrets', onlyType: SECRET_TYPE },
];

/** Unwritten bytes across all streams (a buffer shared by many counts once) above which streams wait their turn. */
export const DEFAULT_TOTAL_HIGH_WATER_BYTES = 64 * 1024 * 1024;

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
  /** Bounds of the gRPC transport (message size, buffers, streams, ages, rates). */
  readonly transport?: Partial<TransportLimits>;
  /** The gRPC server of the plaintext port (default: the hand-written one over node:http2). */
  readonly createTransport?: (options: GrpcTransportOptions) => XdsTransport;
  /** A stream that sends no DiscoveryRequest within this long is closed (it is not a proxy). */
  readonly firstRequestTimeoutMs?: number;
  /** A write unfinished this long marks its stream stalled: its bytes leave the shared budget. */
  readonly stallMs?: number;
  /** Development only: Secrets on the plaintext port, to any proxy of their namespace by its node's own word. */
  readonly plaintextSecrets?: boolean;
}

/** A gate's answer: the stream ends with this status, or is served as this verified identity. */
export type GateVerdict = { readonly refused: { readonly status: number; readonly message: string } } | { readonly identity: VerifiedIdentity };

/**
 * Decides, from the call (its credentials) and the node its first request names, whether a
 * stream is served and as whom; a refusal ends it with that status. Requests wait until it has answered.
 */
export type StreamGate<Call extends XdsCall = GrpcCall> = (call: Call, node: NodeInfo | undefined) => Promise<GateVerdict>;

/** Requests a stream may send while its gate decides (a client sends one, then waits for an answer). */
const MAX_WAITING_REQUESTS = 16;

/** Streams that say nothing are closed after this long. */
export const DEFAULT_FIRST_REQUEST_TIMEOUT_MS = 30_000;

export class AdsServer {
  readonly #transport: XdsTransport;
  readonly #connections = new Map<string, XdsConnection>();
  /** What this server's streams share, and nothing else does: subscriptions, list facts, resource encodings. */
  readonly #shared: StreamShared = { subscriptions: new SubscriptionPool(), lists: new SharedLists() };
  readonly #wire = new ResourceWire();
  readonly #controlPlaneId: string;
  /** Each push's resources and shared bodies (the current one's, a preview's), kept while the push lives. */
  readonly #responses = new WeakMap<PushContext, PushResponses>();
  readonly budget: WriteBudget;
  readonly #options: AdsServerOptions;
  readonly #log: Logger;
  #scheduler: ConnectionScheduler;
  #connectionCounter = 0;
  #port: number | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  /** Streams reset because they stopped reading while parked bytes were over their cap. */
  slowStreamsReset = 0;

  constructor(options: AdsServerOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#scheduler = options.scheduler ?? IMMEDIATE;
    this.#controlPlaneId = options.controlPlaneId ?? `meshpilot-${hostname()}`;
    this.budget = new WriteBudget(options.totalHighWaterBytes ?? DEFAULT_TOTAL_HIGH_WATER_BYTES);
    const transportOptions: GrpcTransportOptions = { log: options.log, ...(options.transport ? { limits: options.transport } : {}) };
    this.#transport = options.createTransport?.(transportOptions) ?? new GrpcTransport(transportOptions);
    this.serveOn(this.#transport);
  }

  /** Serves the xDS services on `transport` too (the secure port), each stream admitted by `gate`. */
  serveOn<Call extends XdsCall>(transport: XdsTransport<Call>, gate?: StreamGate<Call>): void {
    for (const spec of SERVICES) {
      transport.handle(`/${spec.service}/${spec.sotw}`, (call) => {
        this.#handleCall(call, 'sotw', spec.onlyType, gate);
      });
      transport.handle(`/${spec.service}/${spec.delta}`, (call) => {
        this.#handleCall(call, 'delta', spec.onlyType, gate);
      });
    }
  }

  /** Binds `host:port` (port 0 picks a free one) and resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    this.#port = await this.#transport.listen(host, port);
    const stallMs = this.#options.stallMs ?? DEFAULT_STALL_MS;
    this.#stallTimer ??= setInterval(() => {
      this.checkStalls(stallMs);
    }, Math.max(50, stallMs / 4));
    this.#stallTimer.unref();
    this.#log.info({ address: host, port: this.#port }, 'xDS server listening');
    return this.#port;
  }

  get port(): number | undefined {
    return this.#port;
  }

  /** Proxies: streams that have sent a DiscoveryRequest. */
  connections(): XdsConnection[] {
    return [...this.#connections.values()].filter((c) => c.proxy !== undefined);
  }

  /** What the transport counts (buffers, refusals, errors), for /metrics and tests. */
  transportStats(): TransportStats {
    return this.#transport.stats();
  }

  /** Distinct subscriptions shared by the connected streams. */
  get sharedSubscriptions(): number {
    return this.#shared.subscriptions.size;
  }

  /** Response bodies encoded for the current push, and writes that reused one another stream was sent. */
  get responseBodies(): BodyStats {
    const push = this.#options.currentPush();
    return { ...((push && this.#responses.get(push)?.stats) ?? { encoded: 0, reused: 0 }) };
  }

  #responsesFor(push: PushContext): PushResponses {
    let responses = this.#responses.get(push);
    if (!responses) {
      responses = new PushResponses(push, { generate: this.#options.generate, wire: this.#wire, controlPlaneId: this.#controlPlaneId });
      this.#responses.set(push, responses);
    }
    return responses;
  }

  setScheduler(scheduler: ConnectionScheduler): void {
    this.#scheduler = scheduler;
  }

  /** Queues for each connected proxy what `change` may have changed for it; the scheduler sends it. */
  pushScoped(change: PushChange, sourceAt?: number): void {
    const push = this.#options.currentPush();
    for (const connection of this.#connections.values()) {
      // A Sidecar hides changes to services the proxy cannot see: nothing to send, nothing to regenerate.
      connection.enqueue(push && connection.proxy ? scopeForProxy(change, push, connection.proxy) : change.scope, sourceAt);
      if (connection.pendingTypes().length > 0) this.#scheduler.schedule(connection);
    }
  }

  /** Compares everything with what each proxy holds and sends what changed, in xDS order. */
  pushAll(): void {
    this.pushScoped(FULL_CHANGE);
  }

  /** GOAWAY to every connection, then every stream ends with OK (clients reconnect, to another replica); stops after `graceMs`. */
  async close(graceMs?: number): Promise<void> {
    clearInterval(this.#stallTimer);
    await this.#transport.close(graceMs);
  }

  /**
   * Parks the bytes of streams that stopped reading, so they hold no healthy stream back, and
   * resets the streams stalled longest while parked bytes are over their cap.
   */
  checkStalls(stallMs: number): void {
    const now = performance.now();
    const stalled = [...this.#connections.values()].filter((c) => c.checkStall(now, stallMs));
    let over = this.budget.parked - this.budget.parkedLimit;
    if (over > 0) {
      stalled.sort((a, b) => (a.oldestWriteAt ?? now) - (b.oldestWriteAt ?? now));
      for (const connection of stalled) {
        if (over <= 0) break;
        const seconds = ((now - (connection.oldestWriteAt ?? now)) / 1000).toFixed(1);
        connection.evict(`${connection.proxy?.id ?? connection.peer} has not read ${connection.inFlightBytes} bytes for ${seconds} s while ${this.budget.parked} bytes wait on proxies that stopped reading (cap ${this.budget.parkedLimit}): stream reset, the proxy reconnects`);
        over -= connection.inFlightBytes;
        this.slowStreamsReset++;
      }
    }
    wakeWaiting(this.budget);
  }

  #handleCall<Call extends XdsCall>(call: Call, mode: StreamMode, onlyType: ResourceTypeUrl | undefined, gate?: StreamGate<Call>): void {
    const id = `${++this.#connectionCounter}`;
    const connection = new XdsConnection({
      id,
      peer: call.peer,
      mode,
      ...(onlyType ? { onlyType } : {}),
      currentPush: this.#options.currentPush,
      responses: (push) => this.#responsesFor(push),
      shared: this.#shared,
      write: (message, written) => {
        call.write(message, written);
      },
      budget: this.budget,
      log: this.#log.child({ conn: id }),
      onWritable: (c) => {
        this.#scheduler.schedule(c);
      },
      reset: () => {
        call.reset();
      },
      ...(this.#options.highWaterBytes !== undefined ? { highWaterBytes: this.#options.highWaterBytes } : {}),
      ...(this.#options.events ? { events: this.#options.events } : {}),
      ...(!gate && this.#options.plaintextSecrets === true ? { identity: 'claimed' as const } : {}),
    });
    this.#connections.set(id, connection);
    const silent = setTimeout(() => {
      const seconds = (this.#options.firstRequestTimeoutMs ?? DEFAULT_FIRST_REQUEST_TIMEOUT_MS) / 1000;
      call.end(GrpcStatus.UNAVAILABLE, `no DiscoveryRequest within ${seconds} s of opening the stream`);
    }, this.#options.firstRequestTimeoutMs ?? DEFAULT_FIRST_REQUEST_TIMEOUT_MS);
    silent.unref();
    call.onClose = (reason) => {
      clearTimeout(silent);
      if (!this.#connections.delete(id)) return;
      this.budget.waiting.delete(connection);
      connection.close();
      connection.log.info({ reason }, 'proxy disconnected');
    };
    const decode = (bytes: Buffer): DiscoveryRequest | DeltaDiscoveryRequest | undefined => {
      try {
        return mode === 'delta' ? decodeDeltaDiscoveryRequest(bytes) : decodeDiscoveryRequest(bytes);
      } catch (error) {
        const message = `MP_XDS_BAD_REQUEST: a ${mode === 'delta' ? 'DeltaDiscoveryRequest' : 'DiscoveryRequest'} could not be decoded (${error instanceof Error ? error.message : String(error)})`;
        connection.log.warn({ code: 'MP_XDS_BAD_REQUEST' }, message);
        call.end(GrpcStatus.INVALID_ARGUMENT, message);
        return undefined;
      }
    };
    const serve = (bytes: Buffer): void => {
      const request = decode(bytes);
      if (!request) return;
      try {
        if (mode === 'delta') connection.handleDeltaRequest(request as DeltaDiscoveryRequest);
        else connection.handleRequest(request as DiscoveryRequest);
      } catch (error) {
        connection.log.error({ err: error }, 'failed to handle discovery request');
        call.end(GrpcStatus.INTERNAL, 'meshpilot failed to handle the request; see its log');
      }
    };
    // Behind a gate, requests wait (copied: the transport reuses its buffers) until it has answered.
    let waiting: Buffer[] | undefined = gate ? [] : undefined;
    call.onMessage = (bytes) => {
      clearTimeout(silent);
      if (!waiting) {
        serve(bytes);
        return;
      }
      if (waiting.length >= MAX_WAITING_REQUESTS) {
        call.end(GrpcStatus.RESOURCE_EXHAUSTED, `more than ${MAX_WAITING_REQUESTS} requests sent before the stream was authenticated`);
        return;
      }
      waiting.push(Buffer.from(bytes));
      if (waiting.length > 1 || !gate) return;
      const first = decode(bytes);
      if (!first) return;
      void gate(call, first.node).then(
        (verdict) => {
          if ('refused' in verdict) {
            call.end(verdict.refused.status, verdict.refused.message);
            return;
          }
          connection.verify(verdict.identity);
          const queued = waiting ?? [];
          waiting = undefined;
          for (const message of queued) if (!call.closed) serve(message);
        },
        (error: unknown) => {
          connection.log.error({ err: error }, 'failed to authenticate an xDS stream');
          call.end(GrpcStatus.INTERNAL, 'meshpilot failed to authenticate the stream; see its log');
        },
      );
    };
  }
}
