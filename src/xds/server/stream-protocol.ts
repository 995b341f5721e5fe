// One xDS stream's protocol, per Envoy's xds_protocol, SotW and Delta: subscriptions and their
// wildcards, nonces, ACK/NACK, what the client holds and what it is to be sent next (each
// response's content is decided in stream-responses.ts). It does no I/O and keeps no timers or
// clocks: the connection hands it requests, push scopes and a source of resources, and it
// answers with events to record and responses to write.
import { createHash } from 'node:crypto';
import type { Proxy, VerifiedIdentity } from '../../model/proxy.ts';
import { parseProxy } from '../../model/proxy.ts';
import { parseHostPort } from '../generate/names.ts';
import type { EnvoyResource } from '../resource.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, WILDCARD_TYPES, isResourceTypeUrl } from '../type-urls.ts';
import { HeldResources } from './held.ts';
import type { DeltaDiscoveryRequest, DiscoveryRequest, NodeInfo } from './messages.ts';
import type { PushScope, TypeScope } from './push-scope.ts';
import { FULL_SCOPE, mergeTypeScope } from './push-scope.ts';
import type { SharedLists } from './shared-lists.ts';
import type { NextResponse, ResourceSource } from './stream-responses.ts';
import { generateAll, nextDelta, nextSotw } from './stream-responses.ts';
import type { Subscription, SubscriptionPool } from './subscription.ts';
import { EMPTY_SUBSCRIPTION } from './subscription.ts';
import type { AckRecord, NackRecord, SentResponse, StreamMode, WatchState } from './watch-state.ts';

export type { ResourceSource } from './stream-responses.ts';

/** What the streams of one server share: subscriptions and facts about shared lists. */
export interface StreamShared {
  readonly subscriptions: SubscriptionPool;
  readonly lists: SharedLists;
}

/** What a request, or a reply in it, means for the operator's records. */
export type ProtocolEvent =
  | { readonly kind: 'identified'; readonly proxy: Proxy; readonly node: NodeInfo | undefined }
  | { readonly kind: 'unserved-type'; readonly typeUrl: string }
  /** A reply to a response a newer one superseded; SotW ignores the whole request, Delta still reads its subscription changes. */
  | { readonly kind: 'stale-nonce'; readonly typeUrl: ResourceTypeUrl; readonly nonce: string; readonly ignored: boolean }
  | { readonly kind: 'ack'; readonly typeUrl: ResourceTypeUrl; readonly ack: AckRecord; readonly acked: SentResponse }
  /** `rejected` is what the client held after the rejected response, as it was when the NACK came. */
  | { readonly kind: 'nack'; readonly typeUrl: ResourceTypeUrl; readonly nack: NackRecord; readonly rejected: SentResponse | undefined };

export interface RequestOutcome {
  readonly events: readonly ProtocolEvent[];
  /** Types with something to send that are answered now if the client reads, in this order. */
  readonly answer: readonly ResourceTypeUrl[];
}

/** One response to write: the connection encodes it (sharing `shared`'s encoding) and adds the nonce. */
export interface PlannedResponse {
  readonly typeUrl: ResourceTypeUrl;
  readonly nonce: string;
  readonly version: string;
  readonly resources: readonly EnvoyResource[];
  /** Delta: names the client is to drop. */
  readonly removed: readonly string[];
  /** A list sent whole that other streams may be sent too: its encoding is shared. */
  readonly shared: readonly EnvoyResource[] | undefined;
  /** What the watch now records as sent. */
  readonly sent: SentResponse;
}

const NOTHING: readonly ResourceTypeUrl[] = [];

export class StreamProtocol {
  readonly id: string;
  readonly mode: StreamMode;
  readonly watches = new Map<ResourceTypeUrl, WatchState>();
  node: NodeInfo | undefined;
  proxy: Proxy | undefined;
  readonly #onlyType: ResourceTypeUrl | undefined;
  readonly #shared: StreamShared;
  /** Who the stream authenticated as, or `claimed` to take the node's own namespace (development only). */
  #identity: VerifiedIdentity | 'claimed' | undefined;
  #nonces = 0;

  /** `onlyType`: the per-type services (CDS, EDS, LDS, RDS outside ADS) serve one type only. */
  constructor(options: { id: string; mode: StreamMode; onlyType?: ResourceTypeUrl; shared: StreamShared; identity?: VerifiedIdentity | 'claimed' }) {
    this.id = options.id;
    this.mode = options.mode;
    this.#onlyType = options.onlyType;
    this.#shared = options.shared;
    this.#identity = options.identity;
  }

  /** The identity the stream's credentials proved (its gate answers before any request is read). */
  verify(identity: VerifiedIdentity): void {
    this.#identity = identity;
  }

  /** Types with changes not yet sent (merged, never queued response by response). */
  pendingTypes(): ResourceTypeUrl[] {
    return PUSH_ORDER.filter((t) => this.watches.get(t)?.pending !== undefined);
  }

  /** A SotW DiscoveryRequest, received `at`. */
  request(request: DiscoveryRequest, at: Date): RequestOutcome {
    const events: ProtocolEvent[] = [];
    const typeUrl = this.#typeOf(request, events);
    if (!typeUrl) return { events, answer: NOTHING };
    const watch = this.watches.get(typeUrl);
    if (request.responseNonce !== '') {
      if (!watch?.sent || watch.sent.nonce !== request.responseNonce) {
        // Answers a response that a newer one has superseded (xds_protocol: ignore it).
        events.push({ kind: 'stale-nonce', typeUrl, nonce: request.responseNonce, ignored: true });
        return { events, answer: NOTHING };
      }
      events.push(this.#reply(typeUrl, watch, watch.sent, request.versionInfo, request.errorDetail, at));
    }
    if (watch) {
      watch.requests++;
      // Clients repeat their whole subscription in every ACK: the same bytes as last time change nothing.
      const wire = watch.subscription.wire;
      if (wire && !watch.wildcard && wire.equals(request.namesSpan)) return { events, answer: NOTHING };
      if (watch.namesDigest === request.namesDigest) return { events, answer: NOTHING };
    }
    // Names are read only where needed: a new EDS subscription found by its digest is not read at all.
    if (typeUrl === LISTENER_TYPE) this.#maybeGrpc(typeUrl, request.resourceNames);
    const wildcard = WILDCARD_TYPES.has(typeUrl) && sotwWildcard(request.resourceNames, watch);
    const explicit = (): readonly string[] => (wildcard ? [] : request.resourceNames);
    if (watch && watch.wildcard === wildcard && sameNames(watch.subscription, explicit())) {
      watch.namesDigest = request.namesDigest;
      return { events, answer: NOTHING };
    }
    const state = this.#watch(typeUrl);
    state.namesDigest = request.namesDigest;
    this.#resubscribe(state, explicit, wildcard, wildcard ? undefined : { digest: request.namesDigest, wire: request.namesSpan });
    for (const name of [...state.held.keys()]) if (!wildcard && !state.subscription.set.has(name)) state.held.delete(name);
    // A new subscription is answered with the whole set: now if the client reads, else when it does.
    state.resendWhole = true;
    enqueueType(state, 'all', undefined);
    return { events, answer: typeUrl === CLUSTER_TYPE ? [CLUSTER_TYPE, ENDPOINT_TYPE] : [typeUrl] };
  }

  /** A DeltaDiscoveryRequest, received `at`. */
  deltaRequest(request: DeltaDiscoveryRequest, at: Date): RequestOutcome {
    const events: ProtocolEvent[] = [];
    const typeUrl = this.#typeOf(request, events);
    if (!typeUrl) return { events, answer: NOTHING };
    const existing = this.watches.get(typeUrl);
    if (request.responseNonce !== '') {
      if (existing?.sent?.nonce === request.responseNonce) {
        events.push(this.#reply(typeUrl, existing, existing.sent, existing.sent.version, request.errorDetail, at));
      } else {
        // A superseded nonce: nothing to record, but the subscription changes in it still count.
        events.push({ kind: 'stale-nonce', typeUrl, nonce: request.responseNonce, ignored: false });
      }
    }
    this.#maybeGrpc(typeUrl, request.subscribe);
    const watch = existing ?? this.#watch(typeUrl);
    if (existing) {
      watch.requests++;
      // An ACK or NACK that changes no subscription: only what waits is sent (the common case).
      if (request.subscribe.length === 0 && request.unsubscribe.length === 0) return { events, answer: [typeUrl] };
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
      enqueueType(watch, 'all', undefined);
      // Every name it asked for is answered: sent, or in removed_resources when it does not exist.
      if (watch.held.size === 0) watch.announce = names.size > 0 ? names : undefined;
      else for (const name of names) if (!watch.held.has(name)) (watch.announce ??= new Set()).add(name);
    } else if (added.includes('*')) {
      enqueueType(watch, 'all', undefined);
    } else if (added.length > 0) {
      // Re-subscribed resources are re-sent even if unchanged: the client dropped them.
      for (const name of added) {
        watch.held.delete(name);
        (watch.announce ??= new Set()).add(name);
      }
      enqueueType(watch, new Set(added), undefined);
    }
    if (!wildcard && names.size === 0) watch.held.clear();
    return { events, answer: typeUrl === CLUSTER_TYPE ? [CLUSTER_TYPE, ENDPOINT_TYPE] : [typeUrl] };
  }

  /** Merges what a push may have changed (already narrowed to what this proxy sees) into the pending work. */
  enqueue(scope: PushScope, sourceAt?: number): void {
    for (const [typeUrl, typeScope] of scope) {
      const watch = this.watches.get(typeUrl);
      if (watch) enqueueType(watch, typeScope, sourceAt);
    }
  }

  /** Every subscribed type is compared whole with what the client holds at the next response. */
  enqueueAll(): void {
    this.enqueue(FULL_SCOPE);
  }

  /**
   * The response that sends a type's pending changes, recorded as sent `at`; undefined when the
   * client already holds them all (or the stream has not said who it is).
   */
  respond(typeUrl: ResourceTypeUrl, source: ResourceSource, at: Date): PlannedResponse | undefined {
    const watch = this.watches.get(typeUrl);
    if (!this.proxy || watch?.pending === undefined) return undefined;
    const lists = this.#shared.lists;
    const next = this.mode === 'delta' ? nextDelta(typeUrl, watch, this.proxy, source, lists) : nextSotw(typeUrl, watch, this.proxy, source, lists);
    if (!next) {
      if (this.mode === 'delta' && !watch.sent && watch.held.size > 0) watch.heldCurrent = { pushSequence: source.sequence, at };
      return undefined;
    }
    const planned = this.#record(typeUrl, watch, source, next, at);
    this.#rewarmEndpoints(next.rewarm);
    return planned;
  }

  /** What this stream would be sent now for a type, without sending it. */
  resourcesFor(typeUrl: ResourceTypeUrl, source: ResourceSource): readonly EnvoyResource[] {
    const watch = this.watches.get(typeUrl);
    if (!this.proxy || !watch) return [];
    return generateAll(typeUrl, watch, this.proxy, source);
  }

  /** Lets go of the shared subscriptions (the stream ended). */
  close(): void {
    for (const watch of this.watches.values()) this.#shared.subscriptions.release(watch.subscription);
  }

  #record(typeUrl: ResourceTypeUrl, watch: WatchState, source: ResourceSource, next: NextResponse, at: Date): PlannedResponse {
    const { sentWhole, resources, removed, version } = next;
    // Unique within the stream, and across the server's streams (the stream id leads).
    const nonce = `${this.id}-${(++this.#nonces).toString(36)}`;
    const sent: SentResponse = {
      version,
      nonce,
      at,
      pushSequence: source.sequence,
      count: resources.length,
      removed,
      ...(next.sourceAt !== undefined ? { sourceAt: next.sourceAt } : {}),
      // What was sent, never generated again: the whole set, or what the client holds since.
      get resources(): readonly EnvoyResource[] {
        return sentWhole ?? watch.held.sent();
      },
    };
    watch.sent = sent;
    return { typeUrl, nonce, version, resources, removed, shared: next.shared, sent };
  }

  /**
   * Envoy warms every cluster it is sent changed (or anew) and uses it only once that cluster's
   * endpoints arrive, even if they did not change: queue them again, after the clusters.
   */
  #rewarmEndpoints(clusters: readonly EnvoyResource[]): void {
    if (clusters.length === 0) return;
    const eds = this.watches.get(ENDPOINT_TYPE);
    if (!eds || clusters.length === 0) return;
    const names = clusters.map((c) => c.name).filter((name) => eds.held.has(name));
    if (names.length === 0) return;
    for (const name of names) eds.held.delete(name);
    enqueueType(eds, new Set(names), undefined);
  }

  #reply(
    typeUrl: ResourceTypeUrl,
    watch: WatchState,
    /** The response replied to (its nonce is the reply's). */
    sent: SentResponse,
    version: string,
    errorDetail: { code: number; message: string } | undefined,
    at: Date,
  ): ProtocolEvent {
    const nonce = sent.nonce;
    if (errorDetail) {
      const nack: NackRecord = { version: sent.version, nonce, at, code: errorDetail.code, message: errorDetail.message };
      watch.nack = nack;
      // Read now: what the client holds may change with the rest of this request.
      return { kind: 'nack', typeUrl, nack, rejected: { ...sent } };
    }
    const ack: AckRecord = { version, nonce, at };
    watch.acked = ack;
    return { kind: 'ack', typeUrl, ack, acked: sent };
  }

  /** The type a request is about; its first request also says who the proxy is. */
  #typeOf(request: { readonly node?: NodeInfo; readonly typeUrl: string }, events: ProtocolEvent[]): ResourceTypeUrl | undefined {
    if (!this.proxy) events.push(this.#identify(request.node));
    const typeUrl = request.typeUrl === '' && this.#onlyType ? this.#onlyType : request.typeUrl;
    if (!isResourceTypeUrl(typeUrl) || (this.#onlyType && typeUrl !== this.#onlyType)) {
      events.push({ kind: 'unserved-type', typeUrl });
      return undefined;
    }
    return typeUrl;
  }

  #watch(typeUrl: ResourceTypeUrl): WatchState {
    let watch = this.watches.get(typeUrl);
    if (!watch) {
      watch = { names: [], wildcard: false, subscription: EMPTY_SUBSCRIPTION, requests: 1, held: new HeldResources(this.#shared.lists) };
      this.watches.set(typeUrl, watch);
    }
    return watch;
  }

  #resubscribe(watch: WatchState, names: Iterable<string> | (() => Iterable<string>), wildcard: boolean, request?: { digest: string; wire?: Buffer }): void {
    const next = this.#shared.subscriptions.acquire(names, request?.digest, request?.wire);
    this.#shared.subscriptions.release(watch.subscription);
    watch.subscription = next;
    watch.wildcard = wildcard;
    watch.names = wildcard && next.names.length === 0 ? undefined : next.names;
  }

  #identify(node: NodeInfo | undefined): ProtocolEvent {
    this.node = node;
    const id = node?.id && node.id.length > 0 ? node.id : `anonymous-${this.id}`;
    const metadata = { ...(node?.metadata ?? {}) };
    // A gRPC library identifies itself in the node's user agent; Envoy says "envoy".
    if (node && metadata['GENERATOR'] === undefined && /grpc/i.test(node.userAgentName)) metadata['GENERATOR'] = 'grpc';
    this.proxy = this.#verified(parseProxy(id, metadata, node));
    return { kind: 'identified', proxy: this.proxy, node };
  }

  /** A client that asks for `host:port` listeners by name is a proxyless gRPC client. */
  #maybeGrpc(typeUrl: ResourceTypeUrl, names: readonly string[]): void {
    if (typeUrl !== LISTENER_TYPE || !this.proxy || this.proxy.generator === 'grpc') return;
    const explicit = names.filter((n) => n !== '*');
    if (explicit.length > 0 && explicit.every((n) => parseHostPort(n) !== undefined)) {
      this.proxy = this.#verified(parseProxy(this.proxy.id, { ...this.proxy.metadata, GENERATOR: 'grpc' }, this.node));
    }
  }

  #verified(proxy: Proxy): Proxy {
    const identity = this.#identity === 'claimed' ? (proxy.namespace === undefined ? undefined : { namespace: proxy.namespace, via: 'plaintext' as const }) : this.#identity;
    return identity ? { ...proxy, verifiedIdentity: identity } : proxy;
  }
}

function enqueueType(watch: WatchState, scope: TypeScope, sourceAt: number | undefined): void {
  watch.pending = mergeTypeScope(watch.pending, scope);
  if (sourceAt !== undefined) watch.pendingSince = Math.min(watch.pendingSince ?? sourceAt, sourceAt);
}

/**
 * xds_protocol SotW, for LDS/CDS: "*" is a wildcard, and so is an empty list on the first
 * request (legacy wildcard) or while the watch already is one; after explicit names, an empty
 * list unsubscribes from everything. (EDS/RDS are never wildcards.)
 */
function sotwWildcard(names: readonly string[], watch: WatchState | undefined): boolean {
  if (names.includes('*')) return true;
  return names.length === 0 && (!watch || watch.wildcard);
}

function sameNames(subscription: Subscription, names: readonly string[]): boolean {
  // Clients repeat their whole subscription in every ACK: the common case is the same list again.
  if (names.length === subscription.names.length && names.every((n, i) => n === subscription.names[i])) return true;
  const set = new Set(names);
  return set.size === subscription.names.length && subscription.names.every((n) => set.has(n));
}
