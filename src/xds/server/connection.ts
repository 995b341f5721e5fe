// One xDS stream's connection: the shell around its protocol (stream-protocol.ts). It feeds the
// protocol requests and pushes, encodes what it answers (one shared body per distinct response,
// then this stream's nonce) and writes it under back-pressure: its own high water, and the
// server-wide write budget that parks a proxy which stopped reading.
import type { Logger } from 'pino';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy, VerifiedIdentity } from '../../model/proxy.ts';
import { NO_CREDENTIALS } from '../../model/credentials.ts';
import { secretAccess } from '../generate/secret.ts';
import type { EnvoyResource } from '../resource.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import { PUSH_ORDER, SECRET_TYPE, SHORT_TYPE } from '../type-urls.ts';
import type { DeltaDiscoveryRequest, DiscoveryRequest, NodeInfo } from './messages.ts';
import { nonceField } from './messages.ts';
import type { PushResponses } from './push-responses.ts';
import type { PushScope } from './push-scope.ts';
import type { ProtocolEvent, RequestOutcome, StreamShared } from './stream-protocol.ts';
import { StreamProtocol } from './stream-protocol.ts';
import type { ConnectionEvents, StreamMode, WatchState } from './watch-state.ts';
import type { WriteBudget } from './write-budget.ts';

export type { AckRecord, ConnectionEvents, NackRecord, SentResponse, SyncStatus, WatchState } from './watch-state.ts';
export { syncStatus } from './watch-state.ts';
export { WriteBudget } from './write-budget.ts';

export type { StreamMode } from './watch-state.ts';

export interface ConnectionOptions {
  readonly id: string;
  readonly peer: string;
  readonly mode: StreamMode;
  /** Per-type services (CDS, EDS, LDS, RDS outside ADS) serve one type only. */
  readonly onlyType?: ResourceTypeUrl;
  readonly currentPush: () => PushContext | undefined;
  /** The server's responses for a push: resources, and bodies shared by every stream. */
  readonly responses: (push: PushContext) => PushResponses;
  /** The server's subscriptions and shared lists. */
  readonly shared: StreamShared;
  /** Writes one encoded response, in pieces; calls `written` once it has left the process's buffers. */
  readonly write: (message: readonly Buffer[], written: () => void) => void;
  readonly log: Logger;
  readonly events?: ConnectionEvents;
  /** Above this many unwritten bytes the connection stops sending until they drain. */
  readonly highWaterBytes?: number;
  /** Shared by all streams: bytes in flight across the server, so memory stays bounded with many proxies. */
  readonly budget?: WriteBudget;
  /** Called when a blocked connection can send again. */
  readonly onWritable?: (connection: XdsConnection) => void;
  /** Ends the stream at once, dropping what it has not written (a proxy that stopped reading). */
  readonly reset?: (reason: string) => void;
  /** `claimed`: a plaintext stream whose node's namespace is trusted for Secrets (--xds-plaintext-secrets). */
  readonly identity?: 'claimed';
}

// Whole sets are shared buffers, so a stream may have a few responses in flight without copying any.
export const DEFAULT_HIGH_WATER_BYTES = 4 * 1024 * 1024;

export class XdsConnection {
  readonly id: string;
  readonly peer: string;
  readonly mode: StreamMode;
  readonly connectedAt = new Date();
  /** Bytes handed to the transport and not yet written out. */
  inFlightBytes = 0;
  maxInFlightBytes = 0;
  bytesSent = 0;
  responsesSent = 0;
  #blocked = false;
  #closed = false;
  /** Writes not finished yet, oldest first, with the shared body each holds and when each began (performance.now()). */
  readonly #outstanding: { body: Buffer; size: number; at: number }[] = [];
  #stalled = false;
  /** Secrets this stream was refused, each warned about once. */
  readonly #deniedSecrets = new Set<string>();
  #log: Logger;
  readonly #options: ConnectionOptions;
  readonly #highWater: number;
  readonly #protocol: StreamProtocol;

  constructor(options: ConnectionOptions) {
    this.id = options.id;
    this.peer = options.peer;
    this.mode = options.mode;
    this.#options = options;
    this.#log = options.log;
    this.#highWater = options.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES;
    this.#protocol = new StreamProtocol({
      id: options.id,
      mode: options.mode,
      shared: options.shared,
      ...(options.onlyType ? { onlyType: options.onlyType } : {}),
      ...(options.identity ? { identity: options.identity } : {}),
    });
  }

  get log(): Logger {
    return this.#log;
  }

  /** Per type: subscription, what was sent, what the proxy said back. */
  get watches(): ReadonlyMap<ResourceTypeUrl, WatchState> {
    return this.#protocol.watches;
  }

  get node(): NodeInfo | undefined {
    return this.#protocol.node;
  }

  get proxy(): Proxy | undefined {
    return this.#protocol.proxy;
  }

  /** True while the client has not read what was already written (back-pressure). */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** True while this stream's unwritten bytes are parked outside the shared budget (it stopped reading). */
  get stalled(): boolean {
    return this.#stalled;
  }

  /** When the oldest write still unfinished began (performance.now()), if any. */
  get oldestWriteAt(): number | undefined {
    return this.#outstanding[0]?.at;
  }

  /**
   * Marks the stream stalled when its oldest write has waited `stallMs` or it is over its own
   * high water, and reading again when neither holds; its bytes move out of (or back into) the
   * shared budget. Returns whether it is stalled.
   */
  checkStall(now: number, stallMs: number): boolean {
    const oldest = this.#outstanding[0]?.at;
    const stalled = !this.#closed && (this.#blocked || (oldest !== undefined && now - oldest >= stallMs));
    if (stalled !== this.#stalled) this.#setStalled(stalled);
    return stalled;
  }

  /** The shared budget has room again: send what waits. */
  wake(): void {
    if (!this.#closed) this.#options.onWritable?.(this);
  }

  /** Resets the stream: the proxy stopped reading and the server needs the memory back. */
  evict(reason: string): void {
    if (this.#closed) return;
    this.#log.warn({ code: 'MP_XDS_SLOW_PROXY', unwrittenBytes: this.inFlightBytes }, `MP_XDS_SLOW_PROXY: ${reason}`);
    this.#options.reset?.(reason);
  }

  #setStalled(stalled: boolean): void {
    this.#stalled = stalled;
    const budget = this.#options.budget;
    if (budget) for (const write of this.#outstanding) budget.stall(write.body, stalled);
  }

  /** Types with changes not yet sent (merged, never queued response by response). */
  pendingTypes(): ResourceTypeUrl[] {
    return this.#protocol.pendingTypes();
  }

  /** The identity the stream's credentials proved, before its requests are read (the secure port). */
  verify(identity: VerifiedIdentity): void {
    this.#protocol.verify(identity);
  }

  /** Handles one SotW DiscoveryRequest; may send a response. */
  handleRequest(request: DiscoveryRequest): void {
    this.#act(this.#protocol.request(request, new Date()));
  }

  /** Handles one DeltaDiscoveryRequest; may send a response. */
  handleDeltaRequest(request: DeltaDiscoveryRequest): void {
    this.#act(this.#protocol.deltaRequest(request, new Date()));
  }

  /** Merges what a push may have changed for this proxy into this connection's pending work. */
  enqueue(scope: PushScope, sourceAt?: number): void {
    this.#protocol.enqueue(scope, sourceAt);
  }

  /** Sends pending changes in CDS, EDS, LDS, RDS order until done or the client stops reading. */
  flush(): 'done' | 'blocked' {
    for (const typeUrl of PUSH_ORDER) {
      if (!this.#mayWrite()) return 'blocked';
      if (this.watches.get(typeUrl)?.pending !== undefined) this.#send(typeUrl);
    }
    return this.#blocked ? 'blocked' : 'done';
  }

  /** Sends every subscribed type whose content changed (a full comparison). */
  push(): void {
    this.#protocol.enqueueAll();
    this.flush();
  }

  /** What this connection would be sent now for a type, without sending it. */
  resourcesFor(typeUrl: ResourceTypeUrl, push: PushContext): readonly EnvoyResource[] {
    return this.#protocol.resourcesFor(typeUrl, this.#options.responses(push));
  }

  /** Releases shared state; the transport calls it when the stream ends. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#protocol.close();
  }

  /** Records what a request meant, then answers what it asks for while the client reads. */
  #act(outcome: RequestOutcome): void {
    for (const event of outcome.events) this.#report(event);
    if (outcome.answer.includes(SECRET_TYPE)) this.#warnDeniedSecrets();
    for (const typeUrl of outcome.answer) {
      if (this.watches.get(typeUrl)?.pending === undefined) continue;
      if (!this.#mayWrite()) return;
      this.#send(typeUrl);
    }
  }

  /** Istio's "attempted to access unauthorized certificates", once per name: which, and why not. */
  #warnDeniedSecrets(): void {
    const proxy = this.proxy;
    const names = this.watches.get(SECRET_TYPE)?.subscription.names ?? [];
    if (!proxy || names.length === 0) return;
    for (const { name, reason } of secretAccess(proxy, names, this.#options.currentPush()?.credentials ?? NO_CREDENTIALS).denied) {
      if (this.#deniedSecrets.has(name)) continue;
      this.#deniedSecrets.add(name);
      this.#log.warn({ code: 'MP_SECRET_DENIED', secret: clip(name, 300) }, `MP_SECRET_DENIED: proxy ${proxy.id} is not sent Secret ${clip(name, 300)}: ${reason}`);
      this.#options.events?.onSecretDenied?.(this, name);
    }
  }

  /** Logs an event and tells the observers (metrics, the NACK ledger, convergence). */
  #report(event: ProtocolEvent): void {
    const events = this.#options.events;
    switch (event.kind) {
      case 'identified': {
        const { proxy, node } = event;
        this.#log = this.#log.child({ proxy: proxy.id });
        this.#log.info({ peer: this.peer, mode: this.mode, generator: proxy.generator, userAgent: node?.userAgentName, grpcLimits: proxy.grpcLimits }, 'proxy connected');
        return;
      }
      case 'unserved-type':
        this.#log.warn({ typeUrl: clip(event.typeUrl, 200), code: 'MP_XDS_BAD_REQUEST' }, 'MP_XDS_BAD_REQUEST: resource type not served on this stream; ignored');
        return;
      case 'stale-nonce':
        if (event.ignored) this.#log.debug({ type: SHORT_TYPE[event.typeUrl], nonce: clip(event.nonce, 100) }, 'stale nonce ignored');
        events?.onStaleNonce?.(this, event.typeUrl);
        return;
      case 'nack': {
        const { typeUrl, nack } = event;
        this.#log.warn(
          { type: SHORT_TYPE[typeUrl], version: nack.version, nonce: clip(nack.nonce, 100), error: clip(nack.message, 4096), code: 'MP_XDS_NACK' },
          `MP_XDS_NACK: proxy rejected ${SHORT_TYPE[typeUrl]} version ${nack.version}: ${clip(nack.message, 4096)}`,
        );
        events?.onNack?.(this, typeUrl, nack, event.rejected);
        return;
      }
      case 'ack': {
        const { typeUrl, acked } = event;
        events?.onAck?.(this, typeUrl, event.ack);
        if (acked.sourceAt !== undefined) events?.onConverged?.(this, typeUrl, performance.now() - acked.sourceAt, acked.pushSequence);
        return;
      }
    }
  }

  /** Encodes and writes the response that sends a type's pending changes, if the client lacks any. */
  #send(typeUrl: ResourceTypeUrl): void {
    const push = this.#options.currentPush();
    if (!push) return;
    const started = performance.now();
    const responses = this.#options.responses(push);
    const planned = this.#protocol.respond(typeUrl, responses, new Date());
    if (!planned) return;
    const body = responses.body(this.mode, planned);
    const nonce = nonceField(planned.nonce);
    const generateMs = performance.now() - started;
    this.#write(body, nonce);
    this.#options.events?.onSend?.(this, typeUrl, planned.sent, { bytes: body.length + nonce.length, generateMs });
    this.#log.debug({ type: SHORT_TYPE[typeUrl], version: planned.version, nonce: planned.nonce, count: planned.sent.count }, 'pushed');
  }

  /** False while this client is not reading, or while the server as a whole has too much unwritten. */
  #mayWrite(): boolean {
    if (this.#blocked) return false;
    const budget = this.#options.budget;
    if (!budget || budget.hasRoom()) return true;
    budget.waiting.add(this);
    return false;
  }

  /** One message: the body shared with other streams, then this stream's nonce (a few bytes, its own). */
  #write(body: Buffer, nonce: Buffer): void {
    const size = body.length + nonce.length;
    const budget = this.#options.budget;
    // The budget counts the shared body once however many streams write it.
    budget?.take(body, this.#stalled);
    const write = { body, size, at: performance.now() };
    this.#outstanding.push(write);
    this.inFlightBytes += size;
    this.maxInFlightBytes = Math.max(this.maxInFlightBytes, this.inFlightBytes);
    this.bytesSent += size;
    this.responsesSent++;
    if (this.inFlightBytes > this.#highWater) {
      this.#blocked = true;
      if (!this.#stalled) this.#setStalled(true);
    }
    this.#options.write([body, nonce], () => {
      this.inFlightBytes -= size;
      // A stream's writes finish in order; the search only guards against a transport that does not.
      const at = this.#outstanding.indexOf(write);
      if (at >= 0) this.#outstanding.splice(at, 1);
      budget?.release(body, this.#stalled);
      const unblocked = this.#blocked && this.inFlightBytes <= this.#highWater / 4 && !this.#closed;
      if (unblocked) this.#blocked = false;
      // Reading again with nothing left unwritten: its bytes count against the shared budget once more.
      if (this.#stalled && !this.#blocked && this.#outstanding.length === 0) this.#setStalled(false);
      if (unblocked && this.pendingTypes().length > 0) this.#options.onWritable?.(this);
      if (budget) wakeWaiting(budget);
    });
  }
}

/** Streams waiting for the shared budget go on once it has room again (below half, so they do not wake one write at a time). */
export function wakeWaiting(budget: WriteBudget): void {
  if (budget.waiting.size === 0 || budget.inFlight >= budget.limit / 2) return;
  const waiting = [...budget.waiting];
  budget.waiting.clear();
  for (const c of waiting) c.wake();
}

/** What a client sent, cut to a length a log line can carry. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}
