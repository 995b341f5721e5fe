// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: the
// holder renews every retry period; a candidate takes the Lease only once it has seen the record
// unchanged for a whole lease duration (by its own clock), or when the holder released it; every
// write carries the resourceVersion it read, so two candidates never both win.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { CoordinationV1Api, V1Lease, V1LeaseSpec, V1MicroTime, V1ObjectMeta } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { MeshpilotError } from '../../errors.ts';
import { apiClient, apiErrorMessage, apiStatusCode } from './api-clients.ts';
import type { KubeConnection } from './kube-api.ts';
import { STATUS_LEADER_LEASE } from './resources.ts';

export interface LeaderElectionTiming {
  /** A follower waits this long after the record last changed before taking the Lease. */
  readonly leaseDurationMs: number;
  /** A leader that could not renew for this long stops leading (before anyone may take over). */
  readonly renewDeadlineMs: number;
  /** How often the leader renews and followers look. */
  readonly retryPeriodMs: number;
}

/** client-go's defaults. */
export const DEFAULT_LEADER_ELECTION_TIMING: LeaderElectionTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** client-go's jitter on a follower's wait, so candidates do not ask in lockstep. */
const JITTER_FACTOR = 1.2;

/** client-go's rules: a leader must give up before a follower may take over. */
export function checkTiming(timing: LeaderElectionTiming): LeaderElectionTiming {
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = timing;
  if (!(retryPeriodMs > 0) || !(renewDeadlineMs > JITTER_FACTOR * retryPeriodMs) || !(leaseDurationMs > renewDeadlineMs)) {
    throw new MeshpilotError(
      'MP_CONFIG',
      `leader election needs --leader-lease-duration (${leaseDurationMs} ms) > --leader-renew-deadline (${renewDeadlineMs} ms) > 1.2 x --leader-retry-period (${retryPeriodMs} ms) > 0`,
    );
  }
  return timing;
}

/** The holder identity: the pod's name plus a random suffix, so a restarted pod is a new candidate. */
export function holderIdentity(podName = process.env['POD_NAME'] ?? hostname()): string {
  return `${podName}_${randomBytes(4).toString('hex')}`;
}

export interface LeaderElectionState {
  readonly lease: string;
  readonly identity: string;
  /** Who holds the Lease as last seen ('' when released, undefined before the first read). */
  readonly leader: string | undefined;
  readonly leading: boolean;
  /** When this replica last became leader. */
  readonly leadingSince?: string;
  /** The Lease's leaseTransitions as last seen. */
  readonly transitions: number;
  readonly timing: LeaderElectionTiming;
  readonly lastError?: string;
}

export interface LeaderElectorOptions {
  readonly connection: KubeConnection;
  readonly namespace: string;
  readonly name?: string;
  readonly identity?: string;
  readonly timing?: Partial<LeaderElectionTiming>;
  readonly log: Logger;
}

interface LeaseRecord {
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime: string;
  readonly renewTime: string;
  readonly leaseTransitions: number;
}

function timeText(value: unknown): string {
  // client-node hands a read MicroTime back as the server's string.
  return value instanceof Date ? value.toISOString() : typeof value === 'string' ? value : '';
}

function recordOf(lease: V1Lease): LeaseRecord {
  const spec = lease.spec;
  return {
    holderIdentity: spec?.holderIdentity ?? '',
    leaseDurationSeconds: spec?.leaseDurationSeconds ?? 0,
    acquireTime: timeText(spec?.acquireTime),
    renewTime: timeText(spec?.renewTime),
    leaseTransitions: spec?.leaseTransitions ?? 0,
  };
}

function sameRecord(a: LeaseRecord | undefined, b: LeaseRecord): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

export class LeaderElector {
  readonly identity: string;
  readonly namespace: string;
  readonly name: string;
  readonly timing: LeaderElectionTiming;
  readonly #api: CoordinationV1Api;
  readonly #log: Logger;
  readonly #leadingListeners = new Set<(leading: boolean) => void>();
  /** The Lease as last read or written (its resourceVersion guards the next write). */
  #lease: V1Lease | undefined;
  #observed: LeaseRecord | undefined;
  /** When the record last changed, by this process's monotonic clock. */
  #observedAt = 0;
  #leading = false;
  #leadingSince: Date | undefined;
  /** When this replica last renewed successfully. */
  #renewedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #inFlight: Promise<unknown> = Promise.resolve();
  #lastError: string | undefined;
  #failing = false;

  constructor(options: LeaderElectorOptions) {
    this.timing = checkTiming({ ...DEFAULT_LEADER_ELECTION_TIMING, ...options.timing });
    this.namespace = options.namespace;
    this.name = options.name ?? STATUS_LEADER_LEASE;
    this.identity = options.identity ?? holderIdentity();
    // Two calls (a read and an update) fit in one renew deadline.
    this.#api = apiClient(options.connection, CoordinationV1Api, this.timing.renewDeadlineMs / 2);
    this.#log = options.log.child({ lease: `${this.namespace}/${this.name}`, identity: this.identity });
  }

  /** True while this replica holds the Lease and renewed it within the renew deadline. */
  get leading(): boolean {
    return this.#leading && performance.now() - this.#renewedAt < this.timing.renewDeadlineMs;
  }

  state(): LeaderElectionState {
    return {
      lease: `${this.namespace}/${this.name}`,
      identity: this.identity,
      leader: this.#observed?.holderIdentity,
      leading: this.leading,
      ...(this.#leadingSince ? { leadingSince: this.#leadingSince.toISOString() } : {}),
      transitions: this.#observed?.leaseTransitions ?? 0,
      timing: this.timing,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
    };
  }

  /** Called with true when this replica starts leading, false when it stops. */
  onLeadingChange(listener: (leading: boolean) => void): () => void {
    this.#leadingListeners.add(listener);
    return () => this.#leadingListeners.delete(listener);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Stops; a leader releases the Lease (holder cleared) so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    await this.#inFlight;
    // Also when a round won the Lease just as the stop came.
    if (this.#observed?.holderIdentity === this.identity) await this.#release();
    this.#setLeading(false);
  }

  /** Stops without a word to the API server, as a crashed process would: the Lease runs out. */
  abandon(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#setLeading(false);
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      this.#inFlight = this.#round().catch((error: unknown) => {
        this.#failed('update', error);
        this.#schedule(this.timing.retryPeriodMs);
      });
    }, ms);
    this.#timer.unref();
  }

  async #round(): Promise<void> {
    const ok = await this.#tryAcquireOrRenew();
    if (!this.#running) return;
    if (ok) {
      this.#renewedAt = performance.now();
      if (!this.#leading) {
        this.#leadingSince = new Date();
        this.#log.info({ transitions: this.#observed?.leaseTransitions }, `became the leader (Lease ${this.namespace}/${this.name}): this replica writes status`);
        this.#setLeading(true);
      }
      this.#schedule(this.timing.retryPeriodMs);
      return;
    }
    if (this.#leading && performance.now() - this.#renewedAt >= this.timing.renewDeadlineMs) {
      this.#log.warn({ leader: this.#observed?.holderIdentity }, `stopped leading: the Lease ${this.namespace}/${this.name} could not be renewed within ${this.timing.renewDeadlineMs} ms`);
      this.#setLeading(false);
    }
    // A leader retries at its pace until the deadline; a follower waits with jitter.
    this.#schedule(this.#leading ? this.timing.retryPeriodMs : this.timing.retryPeriodMs * (1 + Math.random() * JITTER_FACTOR));
  }

  #setLeading(leading: boolean): void {
    if (this.#leading === leading) return;
    this.#leading = leading;
    if (!leading) this.#leadingSince = undefined;
    for (const listener of this.#leadingListeners) listener(leading);
  }

  #record(acquiredAt: string, transitions: number): LeaseRecord {
    const now = new V1MicroTime().toISOString();
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.timing.leaseDurationMs / 1000)),
      acquireTime: acquiredAt || now,
      renewTime: now,
      leaseTransitions: transitions,
    };
  }

  /** The Lease to write: `base`'s metadata (its resourceVersion guards the write) with `record` as its spec. */
  #body(record: LeaseRecord, base?: V1Lease): V1Lease {
    const lease = new V1Lease();
    lease.apiVersion = 'coordination.k8s.io/v1';
    lease.kind = 'Lease';
    lease.metadata = Object.assign(new V1ObjectMeta(), base?.metadata, { name: this.name, namespace: this.namespace });
    lease.spec = Object.assign(new V1LeaseSpec(), base?.spec, {
      holderIdentity: record.holderIdentity,
      leaseDurationSeconds: record.leaseDurationSeconds,
      // Sent as the string the API server parses (six fractional digits).
      acquireTime: new V1MicroTime(record.acquireTime),
      renewTime: new V1MicroTime(record.renewTime),
      leaseTransitions: record.leaseTransitions,
    });
    return lease;
  }

  /** One attempt, as client-go's tryAcquireOrRenew: true when this replica holds the Lease afterwards. */
  async #tryAcquireOrRenew(): Promise<boolean> {
    // A leader's fast path: update what it wrote last; any failure falls back to reading.
    if (this.#leading && this.#lease && this.#observed?.holderIdentity === this.identity) {
      const record = this.#record(this.#observed.acquireTime, this.#observed.leaseTransitions);
      if (await this.#replace(record, this.#lease)) return true;
    }
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (error) {
      if (apiStatusCode(error) !== 404) return this.#failed('read', error);
      const record = this.#record('', 0);
      try {
        this.#lease = await this.#api.createNamespacedLease({ namespace: this.namespace, body: this.#body(record) });
      } catch (createError) {
        // 409: another candidate created it first; it leads.
        return this.#failed('create', createError);
      }
      this.#observe(record);
      this.#recovered();
      return true;
    }
    this.#lease = lease;
    const current = recordOf(lease);
    this.#observe(current);
    const heldByOther = current.holderIdentity !== '' && current.holderIdentity !== this.identity;
    if (heldByOther && performance.now() - this.#observedAt < this.timing.leaseDurationMs) {
      this.#recovered();
      return false;
    }
    const mine = current.holderIdentity === this.identity;
    const record = this.#record(mine ? current.acquireTime : '', mine ? current.leaseTransitions : current.leaseTransitions + 1);
    return this.#replace(record, lease);
  }

  async #replace(record: LeaseRecord, base: V1Lease): Promise<boolean> {
    try {
      this.#lease = await this.#api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: this.#body(record, base) });
    } catch (error) {
      // 409: someone else wrote since our read; the next round reads again.
      return this.#failed('update', error);
    }
    this.#observe(record);
    this.#recovered();
    return true;
  }

  #observe(record: LeaseRecord): void {
    if (sameRecord(this.#observed, record)) return;
    const previousHolder = this.#observed?.holderIdentity;
    this.#observed = record;
    this.#observedAt = performance.now();
    if (previousHolder !== record.holderIdentity && record.holderIdentity !== this.identity) {
      this.#log.info({ leader: record.holderIdentity || null }, record.holderIdentity ? `the leader is ${record.holderIdentity}` : 'the Lease was released; a follower takes it over');
    }
  }

  #failed(what: 'read' | 'create' | 'update', error: unknown): boolean {
    const code = apiStatusCode(error);
    if (code === 409) return false;
    this.#lastError = `${what} Lease ${this.namespace}/${this.name}: ${apiErrorMessage(error)}`;
    if (!this.#failing) {
      this.#failing = true;
      this.#log.warn({ code: 'MP_LEADER_ELECTION', err: error }, `MP_LEADER_ELECTION: ${this.#lastError}; retried every ${this.timing.retryPeriodMs} ms (meshpilot needs get, create and update on leases in ${this.namespace}: deploy/02-rbac.yaml)`);
    }
    return false;
  }

  #recovered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#lastError = undefined;
    this.#log.info(`the Lease ${this.namespace}/${this.name} is reachable again`);
  }

  async #release(): Promise<void> {
    if (!this.#lease || !this.#observed) return;
    const now = new V1MicroTime().toISOString();
    // client-go's release: no holder, a one-second lease, the transitions kept.
    const record: LeaseRecord = { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: this.#observed.leaseTransitions };
    try {
      await this.#api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: this.#body(record, this.#lease) });
      this.#observed = record;
      this.#log.info(`released the Lease ${this.namespace}/${this.name}`);
    } catch (error) {
      this.#log.info({ err: error }, `could not release the Lease ${this.namespace}/${this.name} (${apiErrorMessage(error)}); it runs out in ${this.timing.leaseDurationMs} ms`);
    }
  }
}
