// One xDS stream's state machine, per Envoy's xds_protocol, for both variants: SotW and Delta.
// Subscriptions, what the client holds, nonces, ACK/NACK, and what is still to be sent.
// Transport-agnostic: it is handed requests and a function that writes encoded responses.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { parseProxy } from '../../model/proxy.ts';
import type { GenerateFn } from '../generate/index.ts';
import { parseHostPort } from '../generate/names.ts';
import type { EnvoyResource } from '../resource.ts';
import { versionOfSet } from '../resource.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, SHORT_TYPE, WILDCARD_TYPES, isResourceTypeUrl } from '../type-urls.ts';
import type { DeltaDiscoveryRequest, DiscoveryRequest, NodeInfo } from './messages.ts';
import type { PushScope, TypeScope } from './push-scope.ts';
import { mergeTypeScope } from './push-scope.ts';
import type { Subscription, SubscriptionPool } from './subscription.ts';
import { EMPTY_SUBSCRIPTION } from './subscription.ts';
import { HeldResources } from './held.ts';
import type { AckRecord, ConnectionEvents, NackRecord, SentResponse, StreamMode, WatchState } from './watch-state.ts';
import type { WriteBudget } from './write-budget.ts';
import { ResponseEncoder, namesOf, setVersionOf, sharedAssignments } from './response-cache.ts';

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
  readonly generate: GenerateFn;
  readonly currentPush: () => PushContext | undefined;
  /** Writes an encoded response; calls `written` once it has left the process's buffers. */
  readonly write: (bytes: Buffer, written: () => void) => void;
  readonly nextNonce: () => string;
  readonly controlPlaneId: string;
  readonly log: Logger;
  readonly subscriptions: SubscriptionPool;
  readonly events?: ConnectionEvents;
  /** Above this many unwritten bytes the connection stops sending until they drain. */
  readonly highWaterBytes?: number;
  /** Shared by all streams: bytes in flight across the server, so memory stays bounded with many proxies. */
  readonly budget?: WriteBudget;
  /** Called when a blocked connection can send again. */
  readonly onWritable?: (connection: XdsConnection) => void;
  /** Ends the stream at once, dropping what it has not written (a proxy that stopped reading). */
  readonly reset?: (reason: string) => void;
}

// Whole sets are shared buffers, so a stream may have a few responses in flight without copying any.
export const DEFAULT_HIGH_WATER_BYTES = 4 * 1024 * 1024;

/** A gRPC library identifies itself in the node's user agent; Envoy says "envoy". */
function looksLikeGrpc(node: NodeInfo): boolean {
  return /grpc/i.test(node.userAgentName);
}

export class XdsConnection {
  readonly id: string;
  readonly peer: string;
  readonly mode: StreamMode;
  readonly connectedAt = new Date();
  readonly watches = new Map<ResourceTypeUrl, WatchState>();
  node: NodeInfo | undefined;
  proxy: Proxy | undefined;
  /** Bytes handed to the transport and not yet written out. */
  inFlightBytes = 0;
  maxInFlightBytes = 0;
  bytesSent = 0;
  responsesSent = 0;
  #blocked = false;
  #closed = false;
  /** Writes not finished yet, oldest first, with when each began (performance.now()). */
  readonly #outstanding: { bytes: Buffer; at: number }[] = [];
  #stalled = false;
  #log: Logger;
  readonly #options: ConnectionOptions;
  readonly #highWater: number;
  readonly #encoder: ResponseEncoder;

  constructor(options: ConnectionOptions) {
    this.id = options.id;
    this.peer = options.peer;
    this.mode = options.mode;
    this.#options = options;
    this.#log = options.log;
    this.#highWater = options.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES;
    this.#encoder = new ResponseEncoder(options.mode, options.controlPlaneId, options.nextNonce);
  }

  get log(): Logger {
    return this.#log;
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
    if (budget) for (const write of this.#outstanding) budget.stall(write.bytes, stalled);
  }

  /** Types with changes not yet sent (merged, never queued response by response). */
  pendingTypes(): ResourceTypeUrl[] {
    return PUSH_ORDER.filter((t) => this.watches.get(t)?.pending !== undefined);
  }

  /** Handles one SotW DiscoveryRequest; may send a response. */
  handleRequest(request: DiscoveryRequest): void {
    if (!this.proxy) this.#identify(request.node);
    const typeUrl = this.#typeOf(request.typeUrl);
    if (!typeUrl) return;
    const watch = this.watches.get(typeUrl);
    if (request.responseNonce !== '') {
      if (!watch?.sent || watch.sent.nonce !== request.responseNonce) {
        // Answers a response that a newer one has superseded (xds_protocol: ignore it).
        this.#log.debug({ type: SHORT_TYPE[typeUrl], nonce: clip(request.responseNonce, 100) }, 'stale nonce ignored');
        this.#options.events?.onStaleNonce?.(this, typeUrl);
        return;
      }
      this.#recordReply(typeUrl, watch, request.responseNonce, request.versionInfo, request.errorDetail);
    }
    if (watch) {
      watch.requests++;
      // Clients repeat their whole subscription in every ACK: the same bytes as last time change nothing.
      const wire = watch.subscription.wire;
      if (wire && !watch.wildcard && wire.equals(request.namesSpan)) return;
      if (watch.namesDigest === request.namesDigest) return;
    }
    // Names are read only where needed: a new EDS subscription found by its digest is not read at all.
    if (typeUrl === LISTENER_TYPE) this.#maybeGrpc(typeUrl, request.resourceNames);
    const wildcard = WILDCARD_TYPES.has(typeUrl) && this.#sotwWildcard(typeUrl, request.resourceNames, watch);
    const explicit = (): readonly string[] => (wildcard ? [] : request.resourceNames);
    if (watch && watch.wildcard === wildcard && sameNames(watch.subscription, explicit())) {
      watch.namesDigest = request.namesDigest;
      return;
    }
    const state = this.#watch(typeUrl);
    state.namesDigest = request.namesDigest;
    this.#resubscribe(state, explicit, wildcard, wildcard ? undefined : { digest: request.namesDigest, wire: request.namesSpan });
    for (const name of [...state.held.keys()]) if (!wildcard && !state.subscription.set.has(name)) state.held.delete(name);
    if (this.#mayWrite()) {
      this.#sendSotw(typeUrl, state, 'all', true);
      if (typeUrl === CLUSTER_TYPE) this.#sendPendingEndpoints();
    } else {
      // Sent whole when the client reads again (and so shared with other streams, like any whole set).
      state.resendWhole = true;
      this.#enqueueType(state, 'all', undefined);
    }
  }

  /** Handles one DeltaDiscoveryRequest; may send a response. */
  handleDeltaRequest(request: DeltaDiscoveryRequest): void {
    if (!this.proxy) this.#identify(request.node);
    const typeUrl = this.#typeOf(request.typeUrl);
    if (!typeUrl) return;
    const existing = this.watches.get(typeUrl);
    if (request.responseNonce !== '') {
      if (existing?.sent?.nonce === request.responseNonce) {
        this.#recordReply(typeUrl, existing, request.responseNonce, existing.sent.version, request.errorDetail);
      } else {
        // A superseded nonce: nothing to record, but the subscription changes in it still count.
        this.#options.events?.onStaleNonce?.(this, typeUrl);
      }
    }
    this.#maybeGrpc(typeUrl, request.subscribe);
    const watch = existing ?? this.#watch(typeUrl);
    if (existing) {
      watch.requests++;
      // An ACK or NACK that changes no subscription: nothing more to do (the common case).
      if (request.subscribe.length === 0 && request.unsubscribe.length === 0) {
        if (watch.pending !== undefined && this.#mayWrite()) this.#sendDelta(typeUrl, watch);
        return;
      }
    }
    let wildcard = watch.wildcard;
    const names = new Set(watch.subscription.names);
    const added: string[] = [];
    // xds_protocol: a first request with no names for LDS/CDS is a (legacy) wildcard.
    if (!existing && request.subscribe.length === 0 && WILDCARD_TYPES.has(typeUrl)) wildcard = true;
    for (const name of request.subscribe) {
      if (name === '*') {
        if (!wildcard) added.push('*');
        wildcard = true;
      } else {
        names.add(name);
        added.push(name);
      }
    }
    for (const name of request.unsubscribe) {
      if (name === '*') wildcard = false;
      else {
        names.delete(name);
        watch.held.delete(name);
      }
    }
    if (!existing) for (const [name, version] of request.initialVersions) watch.held.claim(name, version);
    // A first request's list is what other proxies like it sent: found by its digest, not sorted again.
    const firstList = !existing && request.unsubscribe.length === 0 && request.subscribe.length > 0;
    const digest = firstList ? `delta\n${createHash('sha1').update(request.subscribe.join('\n')).digest('base64')}` : undefined;
    this.#resubscribe(watch, names, wildcard, digest ? { digest } : undefined);
    if (!existing) {
      // A new (or reconnected) stream: compare everything with what the client says it holds.
      this.#enqueueType(watch, 'all', undefined);
      // Every name it asked for is answered: sent, or in removed_resources when it does not exist.
      if (watch.held.size === 0) watch.announce = names.size > 0 ? names : undefined;
      else for (const name of names) if (!watch.held.has(name)) (watch.announce ??= new Set()).add(name);
    } else if (added.includes('*')) {
      this.#enqueueType(watch, 'all', undefined);
    } else if (added.length > 0) {
      // Re-subscribed resources are re-sent even if unchanged: the client dropped them.
      for (const name of added) {
        watch.held.delete(name);
        (watch.announce ??= new Set()).add(name);
      }
      this.#enqueueType(watch, new Set(added), undefined);
    }
    if (!wildcard && names.size === 0) watch.held.clear();
    if (watch.pending !== undefined && this.#mayWrite()) {
      this.#sendDelta(typeUrl, watch);
      if (typeUrl === CLUSTER_TYPE) this.#sendPendingEndpoints();
    }
  }

  /** Merges what a push may have changed for this proxy into this connection's pending work. */
  enqueue(scope: PushScope, sourceAt?: number): void {
    for (const [typeUrl, typeScope] of scope) {
      const watch = this.watches.get(typeUrl);
      if (watch) this.#enqueueType(watch, typeScope, sourceAt);
    }
  }

  /** Sends pending changes in CDS, EDS, LDS, RDS order until done or the client stops reading. */
  flush(): 'done' | 'blocked' {
    for (const typeUrl of PUSH_ORDER) {
      if (!this.#mayWrite()) return 'blocked';
      const watch = this.watches.get(typeUrl);
      if (watch?.pending === undefined) continue;
      if (this.mode === 'delta') this.#sendDelta(typeUrl, watch);
      else this.#sendSotw(typeUrl, watch, watch.pending, watch.resendWhole === true);
    }
    return this.#blocked ? 'blocked' : 'done';
  }

  /** Sends every subscribed type whose content changed (a full comparison). */
  push(): void {
    for (const watch of this.watches.values()) this.#enqueueType(watch, 'all', undefined);
    this.flush();
  }

  /** What this connection would be sent now for a type, without sending it. */
  resourcesFor(typeUrl: ResourceTypeUrl, push: PushContext): readonly EnvoyResource[] {
    const watch = this.watches.get(typeUrl);
    if (!this.proxy || !watch) return [];
    return this.#generateAll(typeUrl, watch, push);
  }

  /** Releases shared state; the transport calls it when the stream ends. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const watch of this.watches.values()) this.#options.subscriptions.release(watch.subscription);
  }

  #typeOf(url: string): ResourceTypeUrl | undefined {
    const typeUrl = url === '' && this.#options.onlyType ? this.#options.onlyType : url;
    if (!isResourceTypeUrl(typeUrl) || (this.#options.onlyType && typeUrl !== this.#options.onlyType)) {
      this.#log.warn({ typeUrl: clip(typeUrl, 200), code: 'MP_XDS_BAD_REQUEST' }, 'MP_XDS_BAD_REQUEST: resource type not served on this stream; ignored');
      return undefined;
    }
    return typeUrl;
  }

  #watch(typeUrl: ResourceTypeUrl): WatchState {
    let watch = this.watches.get(typeUrl);
    if (!watch) {
      watch = { names: [], wildcard: false, subscription: EMPTY_SUBSCRIPTION, requests: 1, held: new HeldResources() };
      this.watches.set(typeUrl, watch);
    }
    return watch;
  }

  #resubscribe(watch: WatchState, names: Iterable<string> | (() => Iterable<string>), wildcard: boolean, request?: { digest: string; wire?: Buffer }): void {
    const next = this.#options.subscriptions.acquire(names, request?.digest, request?.wire);
    this.#options.subscriptions.release(watch.subscription);
    watch.subscription = next;
    watch.wildcard = wildcard;
    watch.names = wildcard && next.names.length === 0 ? undefined : next.names;
  }

  #enqueueType(watch: WatchState, scope: TypeScope, sourceAt: number | undefined): void {
    watch.pending = mergeTypeScope(watch.pending, scope);
    if (sourceAt !== undefined) watch.pendingSince = Math.min(watch.pendingSince ?? sourceAt, sourceAt);
  }

  #identify(node: NodeInfo | undefined): void {
    this.node = node;
    const id = node?.id && node.id.length > 0 ? node.id : `anonymous-${this.id}`;
    const metadata = { ...(node?.metadata ?? {}) };
    if (node && metadata['GENERATOR'] === undefined && looksLikeGrpc(node)) metadata['GENERATOR'] = 'grpc';
    this.proxy = parseProxy(id, metadata, node);
    this.#log = this.#log.child({ proxy: id });
    this.#log.info({ peer: this.peer, mode: this.mode, generator: this.proxy.generator, userAgent: node?.userAgentName, grpcLimits: this.proxy.grpcLimits }, 'proxy connected');
  }

  /** A client that asks for `host:port` listeners by name is a proxyless gRPC client. */
  #maybeGrpc(typeUrl: ResourceTypeUrl, names: readonly string[]): void {
    if (typeUrl !== LISTENER_TYPE || !this.proxy || this.proxy.generator === 'grpc') return;
    const explicit = names.filter((n) => n !== '*');
    if (explicit.length > 0 && explicit.every((n) => parseHostPort(n) !== undefined)) {
      this.proxy = parseProxy(this.proxy.id, { ...this.proxy.metadata, GENERATOR: 'grpc' }, this.node);
    }
  }

  /**
   * xds_protocol SotW: for LDS/CDS, "*" is a wildcard, and so is an empty list on the first
   * request (legacy wildcard) or while the watch already is one; after explicit names, an empty
   * list unsubscribes from everything. For EDS/RDS an empty list is always "nothing".
   */
  #sotwWildcard(typeUrl: ResourceTypeUrl, names: readonly string[], watch: WatchState | undefined): boolean {
    if (!WILDCARD_TYPES.has(typeUrl)) return false;
    if (names.includes('*')) return true;
    return names.length === 0 && (!watch || watch.wildcard);
  }

  #recordReply(
    typeUrl: ResourceTypeUrl,
    watch: WatchState,
    nonce: string,
    version: string,
    errorDetail: { code: number; message: string } | undefined,
  ): void {
    const at = new Date();
    if (errorDetail) {
      const nack: NackRecord = { version: watch.sent?.version ?? '', nonce, at, code: errorDetail.code, message: errorDetail.message };
      watch.nack = nack;
      this.#log.warn(
        { type: SHORT_TYPE[typeUrl], version: nack.version, nonce: clip(nack.nonce, 100), error: clip(nack.message, 4096), code: 'MP_XDS_NACK' },
        `MP_XDS_NACK: proxy rejected ${SHORT_TYPE[typeUrl]} version ${nack.version}: ${clip(nack.message, 4096)}`,
      );
      this.#options.events?.onNack?.(this, typeUrl, nack, watch.sent);
      return;
    }
    const ack: AckRecord = { version, nonce, at };
    watch.acked = ack;
    this.#options.events?.onAck?.(this, typeUrl, ack);
    const sent = watch.sent;
    if (sent?.sourceAt !== undefined) this.#options.events?.onConverged?.(this, typeUrl, performance.now() - sent.sourceAt, sent.pushSequence);
  }

  /** Every resource the watch covers: the wildcard set plus explicit names. */
  #generateAll(typeUrl: ResourceTypeUrl, watch: WatchState, push: PushContext): readonly EnvoyResource[] {
    const proxy = this.proxy as Proxy;
    const names = watch.subscription.names;
    if (!watch.wildcard) {
      if (names.length === 0) return [];
      // Load assignments do not depend on the proxy: streams with the same subscription share one list.
      if (typeUrl === ENDPOINT_TYPE) return sharedAssignments(push, watch.subscription, () => this.#options.generate(typeUrl, push, proxy, names));
      return this.#options.generate(typeUrl, push, proxy, names);
    }
    const all = this.#options.generate(typeUrl, push, proxy, undefined);
    if (names.length === 0) return all;
    const have = new Set(all.map((r) => r.name));
    const extra = names.filter((n) => !have.has(n));
    return extra.length === 0 ? all : [...all, ...this.#options.generate(typeUrl, push, proxy, extra)];
  }

  /** Resources in `scope` that differ from what the client holds, and held names that are gone. */
  #changes(
    typeUrl: ResourceTypeUrl,
    watch: WatchState,
    push: PushContext,
    scope: TypeScope,
  ): { updated: readonly EnvoyResource[]; removed: string[]; generated: readonly EnvoyResource[] } {
    let generated: readonly EnvoyResource[];
    let universe: Iterable<string>;
    if (scope === 'all') {
      generated = this.#generateAll(typeUrl, watch, push);
      // A client that holds nothing yet (a first subscription) is sent all of it: no comparison to make.
      if (watch.held.size === 0) return { updated: generated, removed: [], generated };
      universe = watch.held.keys();
    } else {
      const candidates = [...scope].filter((n) => watch.wildcard || watch.subscription.set.has(n) || watch.held.has(n));
      generated = candidates.length === 0 ? [] : this.#options.generate(typeUrl, push, this.proxy as Proxy, candidates);
      universe = candidates;
    }
    const present = new Set<string>();
    const updated: EnvoyResource[] = [];
    for (const resource of generated) {
      present.add(resource.name);
      if (watch.held.get(resource.name) !== resource.version) updated.push(resource);
    }
    const removed: string[] = [];
    for (const name of universe) if (!present.has(name) && watch.held.has(name)) removed.push(name);
    return { updated, removed, generated };
  }

  #sendSotw(typeUrl: ResourceTypeUrl, watch: WatchState, scope: TypeScope, subscriptionChanged: boolean): void {
    const push = this.#options.currentPush();
    if (!push || !this.proxy) return;
    const started = performance.now();
    const sourceAt = watch.pendingSince;
    watch.pending = undefined;
    watch.pendingSince = undefined;
    watch.resendWhole = undefined;
    // LDS and CDS are always sent whole; so is EDS/RDS after the client changes its subscription.
    if (WILDCARD_TYPES.has(typeUrl) || subscriptionChanged) {
      const resources = this.#generateAll(typeUrl, watch, push);
      const version = setVersionOf(resources);
      if (watch.setVersion === version && watch.sent) return;
      // Nothing to say yet about named resources that do not exist; they are sent when they appear.
      if (!watch.sent && resources.length === 0 && !WILDCARD_TYPES.has(typeUrl)) return;
      if (!WILDCARD_TYPES.has(typeUrl)) watch.held.replaceAll(resources);
      const before = typeUrl === CLUSTER_TYPE ? new Map((watch.sent?.resources ?? []).map((r) => [r.name, r.version])) : undefined;
      watch.setVersion = version;
      this.#writeSotw(typeUrl, watch, push, { resources, whole: resources, version, sourceAt, started });
      if (before) this.#rewarmEndpoints(resources.filter((r) => before.get(r.name) !== r.version));
      return;
    }
    // EDS and RDS changes go out as just the changed resources (xds_protocol allows it for these types).
    const { updated, generated } = this.#changes(typeUrl, watch, push, scope);
    if (updated.length === 0) return;
    if (updated === generated) watch.held.replaceAll(generated);
    else this.#hold(watch, updated, []);
    const version = versionOfSet(updated);
    watch.setVersion = undefined;
    this.#writeSotw(typeUrl, watch, push, { resources: updated, whole: undefined, version, sourceAt, started });
  }

  #writeSotw(
    typeUrl: ResourceTypeUrl,
    watch: WatchState,
    push: PushContext,
    out: { resources: readonly EnvoyResource[]; whole: readonly EnvoyResource[] | undefined; version: string; sourceAt: number | undefined; started: number },
  ): void {
    const { resources, whole, version, sourceAt, started } = out;
    const { nonce, bytes } = whole ? this.#encoder.whole(typeUrl, watch, push, whole, version) : this.#encoder.partial(typeUrl, watch, push, resources, [], version);
    this.#record(typeUrl, watch, push, { version, nonce, count: resources.length, removed: [], sourceAt, whole, started }, bytes);
  }

  #sendDelta(typeUrl: ResourceTypeUrl, watch: WatchState): void {
    const push = this.#options.currentPush();
    if (!push || !this.proxy || watch.pending === undefined) return;
    const started = performance.now();
    const scope = watch.pending;
    const sourceAt = watch.pendingSince;
    watch.pending = undefined;
    watch.pendingSince = undefined;
    const { updated, removed, generated } = this.#changes(typeUrl, watch, push, scope);
    // xds_protocol: a subscribed name that does not exist is answered in removed_resources.
    if (watch.announce) {
      const sending = updated === generated ? namesOf(generated) : new Set(updated.map((r) => r.name));
      const gone = new Set(removed);
      for (const name of watch.announce) {
        if (!sending.has(name) && !gone.has(name) && !watch.held.has(name)) removed.push(name);
      }
      watch.announce = undefined;
    }
    if (updated.length === 0 && removed.length === 0) return;
    const version = `${push.sequence}`;
    // A client that gets a whole set (a first subscription, say) gets what others in its place get: shared.
    const whole = scope === 'all' && removed.length === 0 && updated.length === generated.length ? generated : undefined;
    if (whole) watch.held.replaceAll(whole);
    else this.#hold(watch, updated, removed);
    const { nonce, bytes } = whole ? this.#encoder.whole(typeUrl, watch, push, whole, version) : this.#encoder.partial(typeUrl, watch, push, updated, removed, version);
    this.#record(typeUrl, watch, push, { version, nonce, count: updated.length, removed, sourceAt, whole: undefined, started }, bytes);
    if (typeUrl === CLUSTER_TYPE) this.#rewarmEndpoints(updated);
  }

  /**
   * Envoy warms every cluster it is sent changed (or anew) and uses it only once that cluster's
   * endpoints arrive, even if they did not change: queue them again, after the clusters.
   */
  #rewarmEndpoints(clusters: readonly EnvoyResource[]): void {
    const eds = this.watches.get(ENDPOINT_TYPE);
    if (!eds || clusters.length === 0) return;
    const names = clusters.map((c) => c.name).filter((name) => eds.held.has(name));
    if (names.length === 0) return;
    for (const name of names) eds.held.delete(name);
    this.#enqueueType(eds, new Set(names), undefined);
  }

  /** Endpoints queued by `#rewarmEndpoints` outside a push: sent right after the clusters. */
  #sendPendingEndpoints(): void {
    const eds = this.watches.get(ENDPOINT_TYPE);
    if (eds?.pending === undefined || !this.#mayWrite()) return;
    if (this.mode === 'delta') this.#sendDelta(ENDPOINT_TYPE, eds);
    else this.#sendSotw(ENDPOINT_TYPE, eds, eds.pending, false);
  }

  #hold(watch: WatchState, updated: readonly EnvoyResource[], removed: readonly string[]): void {
    for (const r of updated) watch.held.set(r);
    for (const name of removed) watch.held.delete(name);
  }

  #record(
    typeUrl: ResourceTypeUrl,
    watch: WatchState,
    push: PushContext,
    response: {
      version: string;
      nonce: string;
      count: number;
      removed: readonly string[];
      sourceAt: number | undefined;
      whole: readonly EnvoyResource[] | undefined;
      /** performance.now() when generating the response began. */
      started: number;
    },
    bytes: Buffer,
  ): void {
    const whole = response.whole;
    const sent: SentResponse = {
      version: response.version,
      nonce: response.nonce,
      at: new Date(),
      pushSequence: push.sequence,
      count: response.count,
      removed: response.removed,
      ...(response.sourceAt !== undefined ? { sourceAt: response.sourceAt } : {}),
      // What was sent, never generated again: the whole set, or what the client holds since.
      get resources(): readonly EnvoyResource[] {
        return whole ?? watch.held.sent();
      },
    };
    watch.sent = sent;
    const generateMs = performance.now() - response.started;
    this.#write(bytes);
    this.#options.events?.onSend?.(this, typeUrl, sent, { bytes: bytes.length, generateMs });
    this.#log.debug({ type: SHORT_TYPE[typeUrl], version: response.version, nonce: response.nonce, count: response.count }, 'pushed');
  }

  /** False while this client is not reading, or while the server as a whole has too much unwritten. */
  #mayWrite(): boolean {
    if (this.#blocked) return false;
    const budget = this.#options.budget;
    if (!budget || budget.hasRoom()) return true;
    budget.waiting.add(this);
    return false;
  }

  #write(bytes: Buffer): void {
    const size = bytes.length;
    const budget = this.#options.budget;
    budget?.take(bytes, this.#stalled);
    const write = { bytes, at: performance.now() };
    this.#outstanding.push(write);
    this.inFlightBytes += size;
    this.maxInFlightBytes = Math.max(this.maxInFlightBytes, this.inFlightBytes);
    this.bytesSent += size;
    this.responsesSent++;
    if (this.inFlightBytes > this.#highWater) {
      this.#blocked = true;
      if (!this.#stalled) this.#setStalled(true);
    }
    this.#options.write(bytes, () => {
      this.inFlightBytes -= size;
      // A stream's writes finish in order; the search only guards against a transport that does not.
      const at = this.#outstanding.indexOf(write);
      if (at >= 0) this.#outstanding.splice(at, 1);
      budget?.release(bytes, this.#stalled);
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

function sameNames(subscription: Subscription, names: readonly string[]): boolean {
  // Clients repeat their whole subscription in every ACK: the common case is the same list again.
  if (names.length === subscription.names.length && names.every((n, i) => n === subscription.names[i])) return true;
  const set = new Set(names);
  return set.size === subscription.names.length && subscription.names.every((n) => set.has(n));
}
