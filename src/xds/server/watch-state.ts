// What a stream knows per resource type (subscription, what was sent, what the proxy said back),
// and the events it reports.
import type { EnvoyResource } from '../resource.ts';
import type { HeldResources } from './held.ts';
import type { ResourceTypeUrl } from '../type-urls.ts';
import type { XdsConnection } from './connection.ts';
import type { TypeScope } from './push-scope.ts';
import type { Subscription } from './subscription.ts';

export type StreamMode = 'sotw' | 'delta';

export interface SentResponse {
  readonly version: string;
  readonly nonce: string;
  readonly at: Date;
  /** What the proxy holds of this type after the response (computed when asked). */
  readonly resources: readonly EnvoyResource[];
  /** PushContext sequence the response was generated from. */
  readonly pushSequence: number;
  /** Resources in this response (Delta and partial SotW EDS/RDS responses carry only changes). */
  readonly count: number;
  readonly removed: readonly string[];
  /** performance.now() of the earliest source change this response carries, for convergence. */
  readonly sourceAt?: number;
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
  /** Explicitly subscribed names; undefined: a wildcard subscription with no explicit names. */
  names: readonly string[] | undefined;
  wildcard: boolean;
  subscription: Subscription;
  sent?: SentResponse;
  acked?: AckRecord;
  nack?: NackRecord;
  requests: number;
  /** SotW: digest of the resource names in the last request (see DiscoveryRequest.namesDigest). */
  namesDigest?: string;
  /** SotW: the subscription changed while the client was not reading; send the whole set when it does. */
  resendWhole?: boolean;
  /** SotW: version of the last complete set sent. */
  setVersion?: string;
  /** Name -> version of what the client holds (Delta; SotW EDS/RDS, which are sent incrementally). */
  held: HeldResources;
  pending?: TypeScope;
  pendingSince?: number;
  /** Delta: names just subscribed, answered in removed_resources when they do not exist. */
  announce?: Set<string>;
  /** Delta: a reconnected client's initial_resource_versions were all current, so nothing was sent. */
  heldCurrent?: { readonly pushSequence: number; readonly at: Date };
}

export function syncStatus(watch: WatchState | undefined): SyncStatus {
  // A reconnected Delta client that already held everything was sent nothing, and is in sync.
  if (!watch?.sent) return watch?.heldCurrent && watch.pending === undefined ? 'SYNCED' : 'NOT SENT';
  if (watch.nack?.nonce === watch.sent.nonce) return 'ERROR';
  // A newer config waits to be sent (the proxy is slow, or the push has not reached it): not in sync.
  if (watch.pending !== undefined) return 'STALE';
  if (watch.acked?.nonce === watch.sent.nonce) return 'SYNCED';
  return 'STALE';
}

export interface SendStats {
  readonly bytes: number;
  readonly generateMs: number;
}

export interface ConnectionEvents {
  onAck?(connection: XdsConnection, typeUrl: ResourceTypeUrl, ack: AckRecord): void;
  onNack?(connection: XdsConnection, typeUrl: ResourceTypeUrl, nack: NackRecord, rejected: SentResponse | undefined): void;
  onStaleNonce?(connection: XdsConnection, typeUrl: ResourceTypeUrl): void;
  /** A response was written: its encoded size, and how long generating and encoding it took. */
  onSend?(connection: XdsConnection, typeUrl: ResourceTypeUrl, sent: SentResponse, stats: SendStats): void;
  /** A response carrying a source change was ACKed `ms` after the change happened. */
  onConverged?(connection: XdsConnection, typeUrl: ResourceTypeUrl, ms: number, pushSequence: number): void;
  /** A proxy asked for a Secret it may not read (warned once per stream and name). */
  onSecretDenied?(connection: XdsConnection, name: string): void;
}
