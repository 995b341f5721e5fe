// One ADS stream's state machine, per Envoy's xds_protocol (SotW): subscriptions, versions,
// nonces, ACK and NACK. Transport-agnostic: it is handed requests and a function to send.
import type { Logger } from 'pino';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { parseProxy } from '../../model/proxy.ts';
import type { GenerateFn } from '../generate/index.ts';
import { parseHostPort } from '../generate/names.ts';
import type { EnvoyResource } from '../resource.ts';
import { versionOfSet } from '../resource.ts';
import type { ResourceTypeUrl, ShortType } from '../type-urls.ts';
import { LISTENER_TYPE, PUSH_ORDER, SHORT_TYPE, WILDCARD_TYPES, isResourceTypeUrl } from '../type-urls.ts';
import type { DiscoveryRequest, DiscoveryResponseFields, NodeInfo } from './messages.ts';

export interface SentResponse {
  readonly version: string;
  readonly nonce: string;
  readonly at: Date;
  readonly resources: readonly EnvoyResource[];
  /** PushContext sequence the response was generated from. */
  readonly pushSequence: number;
}

export interface AckRecord {
  readonly version: string;
  readonly nonce: string;
  readonly at: Date;
}

export interface NackRecord extends AckRecord {
  readonly message: string;
  readonly code: number;
}

export type SyncStatus = 'SYNCED' | 'STALE' | 'NOT SENT' | 'ERROR';

export interface WatchState {
  /** undefined: wildcard subscription. */
  names: readonly string[] | undefined;
  sent?: SentResponse;
  acked?: AckRecord;
  nack?: NackRecord;
  requests: number;
}

export function syncStatus(watch: WatchState | undefined): SyncStatus {
  if (!watch?.sent) return 'NOT SENT';
  if (watch.nack?.nonce === watch.sent.nonce) return 'ERROR';
  if (watch.acked?.nonce === watch.sent.nonce) return 'SYNCED';
  return 'STALE';
}

export interface ConnectionEvents {
  onAck?(connection: XdsConnection, typeUrl: ResourceTypeUrl, ack: AckRecord): void;
  onNack?(connection: XdsConnection, typeUrl: ResourceTypeUrl, nack: NackRecord, rejected: SentResponse | undefined): void;
  onStaleNonce?(connection: XdsConnection, typeUrl: ResourceTypeUrl): void;
  /** A response was sent; `generateMs` is how long generating it took. */
  onSend?(connection: XdsConnection, typeUrl: ResourceTypeUrl, sent: SentResponse, generateMs: number): void;
}

export interface ConnectionOptions {
  readonly id: string;
  readonly peer: string;
  readonly generate: GenerateFn;
  readonly currentPush: () => PushContext | undefined;
  readonly send: (response: DiscoveryResponseFields) => void;
  readonly nextNonce: () => string;
  readonly controlPlaneId: string;
  readonly log: Logger;
  readonly events?: ConnectionEvents;
}

function sameNames(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((n) => set.has(n));
}

/** A gRPC library identifies itself in the node's user agent; Envoy says "envoy". */
function looksLikeGrpc(node: NodeInfo): boolean {
  return /grpc/i.test(node.userAgentName);
}

export class XdsConnection {
  readonly id: string;
  readonly peer: string;
  readonly connectedAt = new Date();
  readonly watches = new Map<ResourceTypeUrl, WatchState>();
  node: NodeInfo | undefined;
  proxy: Proxy | undefined;
  #log: Logger;
  readonly #options: ConnectionOptions;

  constructor(options: ConnectionOptions) {
    this.id = options.id;
    this.peer = options.peer;
    this.#options = options;
    this.#log = options.log;
  }

  get log(): Logger {
    return this.#log;
  }

  /** Handles one DiscoveryRequest; may send a response through `send`. */
  handleRequest(request: DiscoveryRequest): void {
    if (!this.proxy) this.#identify(request.node);
    const typeUrl = request.typeUrl;
    if (!isResourceTypeUrl(typeUrl)) {
      this.#log.warn({ typeUrl, code: 'MP_XDS_BAD_REQUEST' }, 'MP_XDS_BAD_REQUEST: resource type not served by meshpilot; ignored');
      return;
    }
    const watch = this.watches.get(typeUrl);
    if (request.responseNonce !== '') {
      if (!watch?.sent || watch.sent.nonce !== request.responseNonce) {
        // Answers a response that a newer one has superseded (xds_protocol: ignore it).
        this.#log.debug({ type: SHORT_TYPE[typeUrl], nonce: request.responseNonce }, 'stale nonce ignored');
        this.#options.events?.onStaleNonce?.(this, typeUrl);
        return;
      }
      this.#recordReply(typeUrl, watch, request);
    }
    this.#maybeGrpc(typeUrl, request.resourceNames);
    const names = this.#subscription(typeUrl, request.resourceNames, watch);
    if (!watch) {
      this.watches.set(typeUrl, { names, requests: 1 });
      this.#respond(typeUrl);
      return;
    }
    watch.requests++;
    if (!sameNames(watch.names, names)) {
      watch.names = names;
      this.#respond(typeUrl);
    }
  }

  /** Sends every subscribed type whose content changed, in CDS, EDS, LDS, RDS order. */
  push(): void {
    for (const typeUrl of PUSH_ORDER) if (this.watches.has(typeUrl)) this.#respond(typeUrl);
  }

  /** What this connection would be sent now for a type, without sending it. */
  resourcesFor(typeUrl: ResourceTypeUrl, push: PushContext): readonly EnvoyResource[] {
    const watch = this.watches.get(typeUrl);
    if (!this.proxy || !watch) return [];
    return this.#options.generate(typeUrl, push, this.proxy, watch.names);
  }

  shortStatus(): Record<ShortType, SyncStatus> {
    return {
      cds: syncStatus(this.watches.get(PUSH_ORDER[0] as ResourceTypeUrl)),
      eds: syncStatus(this.watches.get(PUSH_ORDER[1] as ResourceTypeUrl)),
      lds: syncStatus(this.watches.get(PUSH_ORDER[2] as ResourceTypeUrl)),
      rds: syncStatus(this.watches.get(PUSH_ORDER[3] as ResourceTypeUrl)),
    };
  }

  #identify(node: NodeInfo | undefined): void {
    this.node = node;
    const id = node?.id && node.id.length > 0 ? node.id : `anonymous-${this.id}`;
    const metadata = { ...(node?.metadata ?? {}) };
    if (node && metadata['GENERATOR'] === undefined && looksLikeGrpc(node)) metadata['GENERATOR'] = 'grpc';
    this.proxy = parseProxy(id, metadata);
    this.#log = this.#log.child({ proxy: id });
    this.#log.info({ peer: this.peer, generator: this.proxy.generator, userAgent: node?.userAgentName }, 'proxy connected');
  }

  /** A client that asks for `host:port` listeners by name is a proxyless gRPC client. */
  #maybeGrpc(typeUrl: ResourceTypeUrl, names: readonly string[]): void {
    if (typeUrl !== LISTENER_TYPE || !this.proxy || this.proxy.generator === 'grpc') return;
    if (names.length > 0 && names.every((n) => parseHostPort(n) !== undefined)) {
      this.proxy = parseProxy(this.proxy.id, { ...this.proxy.metadata, GENERATOR: 'grpc' });
    }
  }

  /**
   * xds_protocol SotW: for LDS/CDS, "*" is a wildcard, and so is an empty list on the first
   * request (legacy wildcard) or while the watch already is one; after explicit names, an empty
   * list unsubscribes from everything. For EDS/RDS an empty list is always "nothing".
   */
  #subscription(typeUrl: ResourceTypeUrl, names: readonly string[], watch: WatchState | undefined): readonly string[] | undefined {
    if (WILDCARD_TYPES.has(typeUrl)) {
      if (names.includes('*')) return undefined;
      if (names.length === 0 && (!watch || watch.names === undefined)) return undefined;
    }
    return [...new Set(names)].sort();
  }

  #recordReply(typeUrl: ResourceTypeUrl, watch: WatchState, request: DiscoveryRequest): void {
    const at = new Date();
    if (request.errorDetail) {
      const nack: NackRecord = {
        version: watch.sent?.version ?? '',
        nonce: request.responseNonce,
        at,
        code: request.errorDetail.code,
        message: request.errorDetail.message,
      };
      watch.nack = nack;
      this.#log.warn(
        { type: SHORT_TYPE[typeUrl], version: nack.version, nonce: nack.nonce, error: nack.message, code: 'MP_XDS_NACK' },
        `MP_XDS_NACK: proxy rejected ${SHORT_TYPE[typeUrl]} version ${nack.version}: ${nack.message}`,
      );
      this.#options.events?.onNack?.(this, typeUrl, nack, watch.sent);
      return;
    }
    const ack: AckRecord = { version: request.versionInfo, nonce: request.responseNonce, at };
    watch.acked = ack;
    this.#options.events?.onAck?.(this, typeUrl, ack);
  }

  #respond(typeUrl: ResourceTypeUrl): void {
    const push = this.#options.currentPush();
    const watch = this.watches.get(typeUrl);
    if (!push || !watch || !this.proxy) return;
    const started = performance.now();
    const resources = this.#options.generate(typeUrl, push, this.proxy, watch.names);
    const version = versionOfSet(resources);
    if (watch.sent?.version === version) return;
    // Nothing to say yet about named resources that do not exist; they are sent when they appear.
    if (!watch.sent && resources.length === 0 && !WILDCARD_TYPES.has(typeUrl)) return;
    const nonce = this.#options.nextNonce();
    watch.sent = { version, nonce, at: new Date(), resources, pushSequence: push.sequence };
    this.#options.send({ versionInfo: version, typeUrl, nonce, resources, controlPlaneId: this.#options.controlPlaneId });
    this.#options.events?.onSend?.(this, typeUrl, watch.sent, performance.now() - started);
    this.#log.debug({ type: SHORT_TYPE[typeUrl], version, nonce, count: resources.length }, 'pushed');
  }
}
