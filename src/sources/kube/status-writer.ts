// The leader's status writer: while this replica leads, each Istio object whose validation
// messages differ from what its status shows gets them written (PUT .../status with the
// resourceVersion it was read at), one object at a time, at a bounded rate; nothing is written
// when the status already says it, so a push or a resync causes no status churn.
import { CustomObjectsApi } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PushContext } from '../../model/push-context.ts';
import { apiClient, apiErrorMessage, apiStatusCode } from './api-clients.ts';
import type { KubeConnection } from './kube-api.ts';
import type { KubeSource, StatusTarget } from './kube-source.ts';
import type { LeaderElector } from './leader-election.ts';
import type { ObjectFindings } from './validation-messages.ts';
import { findingsByLocation, statusToWrite } from './validation-messages.ts';
import { gatewayStatusesByLocation, gatewayStatusToWrite, routeStatusesByLocation, routeStatusToWrite, statusSignature } from './route-status.ts';
import type { GatewayObjectStatus, RouteStatus } from '../../model/route-status.ts';
import { GATEWAY_API_GROUP, GATEWAY_API_X_GROUP } from '../gateway-api-objects.ts';

export interface StatusWriterTuning {
  /** Status writes per second (a token bucket), and how many may go at once above it. */
  readonly writesPerSecond: number;
  readonly burst: number;
  readonly timeoutMs: number;
  /** A failed write is retried after this long, doubled per failure up to `backoffMaxMs`. */
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
}

export const DEFAULT_STATUS_WRITER_TUNING: StatusWriterTuning = { writesPerSecond: 10, burst: 20, timeoutMs: 10_000, backoffInitialMs: 1000, backoffMaxMs: 30_000 };

export interface StatusWriterStats {
  readonly leading: boolean;
  readonly written: number;
  readonly conflicts: number;
  readonly failed: number;
  /** Objects waiting for a write. */
  readonly pending: number;
  readonly lastWriteAt?: string;
  readonly lastError?: string;
}

export interface StatusWriterOptions {
  readonly connection: KubeConnection;
  readonly source: Pick<KubeSource, 'statusTargets' | 'statusTarget' | 'onStatusTarget'>;
  readonly elector: Pick<LeaderElector, 'leading' | 'onLeadingChange'>;
  readonly currentPush: () => PushContext | undefined;
  readonly log: Logger;
  readonly tuning?: Partial<StatusWriterTuning>;
}

interface Written {
  /** The resourceVersion the write was made against: until the informer shows a newer one, the write stands for the status. */
  readonly baseResourceVersion: string | undefined;
  readonly status: string;
}

export class StatusWriter {
  readonly #options: StatusWriterOptions;
  readonly #tuning: StatusWriterTuning;
  readonly #api: CustomObjectsApi;
  readonly #log: Logger;
  readonly #queue = new Set<string>();
  readonly #written = new Map<string, Written>();
  readonly #retries = new Map<string, { failures: number; timer: NodeJS.Timeout }>();
  readonly #unsubscribe: (() => void)[] = [];
  #findings: { sequence: number; byLocation: Map<string, ObjectFindings> } | undefined;
  #routeStatuses: { sequence: number; byLocation: Map<string, RouteStatus> } | undefined;
  #gatewayStatuses: { sequence: number; byLocation: Map<string, GatewayObjectStatus> } | undefined;
  #working: Promise<void> | undefined;
  #tokens: number;
  #refilledAt = performance.now();
  #stopped = false;
  #counts = { written: 0, conflicts: 0, failed: 0 };
  #lastWriteAt: Date | undefined;
  #lastError: string | undefined;
  #failing = false;
  /** Ends a wait for a token at once (on stop). */
  #wake: (() => void) | undefined;

  constructor(options: StatusWriterOptions) {
    this.#options = options;
    this.#tuning = { ...DEFAULT_STATUS_WRITER_TUNING, ...options.tuning };
    this.#tokens = this.#tuning.burst;
    this.#api = apiClient(options.connection, CustomObjectsApi, this.#tuning.timeoutMs);
    this.#log = options.log;
  }

  start(): void {
    this.#unsubscribe.push(
      this.#options.elector.onLeadingChange((leading) => {
        if (leading) this.reconcile();
        else this.#clear();
      }),
      this.#options.source.onStatusTarget((key) => {
        if (this.#options.elector.leading) this.#enqueue(key);
      }),
    );
    this.reconcile();
  }

  /** Looks at every object again (a new push, or leadership won). */
  reconcile(): void {
    if (!this.#options.elector.leading) return;
    for (const target of this.#options.source.statusTargets()) this.#enqueue(target.key);
  }

  stats(): StatusWriterStats {
    return {
      leading: this.#options.elector.leading,
      ...this.#counts,
      pending: this.#queue.size,
      ...(this.#lastWriteAt ? { lastWriteAt: this.#lastWriteAt.toISOString() } : {}),
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
    };
  }

  /** `meshpilot_status_writes_total{result}` and client-go's `leader_election_master_status{name}`. */
  registerMetrics(registry: Registry, leaseName: string): void {
    const stats = (): StatusWriterStats => this.stats();
    new Counter({
      name: 'meshpilot_status_writes_total',
      help: 'Status writes by the leader: written, conflict (the object changed first; retried), failed.',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        const now = stats();
        this.reset();
        this.inc({ result: 'written' }, now.written);
        this.inc({ result: 'conflict' }, now.conflicts);
        this.inc({ result: 'failed' }, now.failed);
      },
    });
    const elector = this.#options.elector;
    new Gauge({
      name: 'leader_election_master_status',
      help: 'Whether this replica leads the election (1) or not (0), as client-go names it.',
      labelNames: ['name'],
      registers: [registry],
      collect() {
        this.set({ name: leaseName }, elector.leading ? 1 : 0);
      },
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#clear();
    this.#wake?.();
    await this.#working;
  }

  #clear(): void {
    this.#queue.clear();
    for (const retry of this.#retries.values()) clearTimeout(retry.timer);
    this.#retries.clear();
  }

  #enqueue(key: string): void {
    if (this.#stopped || this.#retries.has(key)) return;
    this.#queue.add(key);
    this.#kick();
  }

  /** One worker at a time; it is started again for what was queued while it was finishing. */
  #kick(): void {
    if (this.#working || this.#queue.size === 0 || !this.#mayWrite()) return;
    this.#working = this.#work().finally(() => {
      this.#working = undefined;
      this.#kick();
    });
  }

  #routeStatusesFor(push: PushContext): Map<string, RouteStatus> {
    if (this.#routeStatuses?.sequence !== push.sequence) this.#routeStatuses = { sequence: push.sequence, byLocation: routeStatusesByLocation(push) };
    return this.#routeStatuses.byLocation;
  }

  #gatewayStatusesFor(push: PushContext): Map<string, GatewayObjectStatus> {
    if (this.#gatewayStatuses?.sequence !== push.sequence) this.#gatewayStatuses = { sequence: push.sequence, byLocation: gatewayStatusesByLocation(push) };
    return this.#gatewayStatuses.byLocation;
  }

  #findingsFor(push: PushContext): Map<string, ObjectFindings> {
    if (this.#findings?.sequence !== push.sequence) this.#findings = { sequence: push.sequence, byLocation: findingsByLocation(push) };
    return this.#findings.byLocation;
  }

  /** The status `target` should get, unless it has it (or our write of it is on its way to the informer). */
  #wanted(target: StatusTarget): Record<string, unknown> | undefined {
    const push = this.#options.currentPush();
    if (!push) return undefined;
    // Gateway API routes get `status.parents`, Gateways, classes and XMeshes their conditions; Istio's kinds get validation messages.
    const status =
      target.group !== GATEWAY_API_GROUP && target.group !== GATEWAY_API_X_GROUP
        ? statusToWrite(target, this.#findingsFor(push).get(target.path))
        : target.kind === 'Gateway' || target.kind === 'GatewayClass' || target.kind === 'XMesh'
          ? gatewayStatusToWrite(target, this.#gatewayStatusesFor(push).get(target.path), new Date())
          : routeStatusToWrite(target, this.#routeStatusesFor(push).get(target.path), new Date());
    if (!status) return undefined;
    const written = this.#written.get(target.key);
    if (written && written.baseResourceVersion === target.resourceVersion && written.status === statusSignature(status)) return undefined;
    return status;
  }

  async #work(): Promise<void> {
    for (;;) {
      const [key] = this.#queue;
      if (key === undefined || !this.#mayWrite()) return;
      this.#queue.delete(key);
      const target = this.#options.source.statusTarget(key);
      if (!target || !this.#wanted(target)) continue;
      await this.#takeToken();
      // Leadership and the object are read again after the wait: either may have changed.
      const current = this.#options.source.statusTarget(key);
      const status = current && this.#wanted(current);
      if (!current || !status || !this.#mayWrite()) continue;
      await this.#write(current, status);
    }
  }

  /** Read through a method: leadership and stopping change while a write waits. */
  #mayWrite(): boolean {
    return !this.#stopped && this.#options.elector.leading;
  }

  /** Waits for a token of the bucket; returns early when writing stops. */
  async #takeToken(): Promise<void> {
    while (this.#mayWrite()) {
      const now = performance.now();
      this.#tokens = Math.min(this.#tuning.burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#tuning.writesPerSecond);
      this.#refilledAt = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ((1 - this.#tokens) / this.#tuning.writesPerSecond) * 1000);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async #write(target: StatusTarget, status: Record<string, unknown>): Promise<void> {
    const label = `${target.kind} ${target.namespace}/${target.name}`;
    try {
      const { group, version, plural, name, namespace } = target;
      const body = { apiVersion: `${group}/${version}`, kind: target.kind, metadata: { name, ...(namespace !== '' ? { namespace } : {}), resourceVersion: target.resourceVersion }, status };
      // A GatewayClass or an XMesh is cluster-scoped.
      if (namespace === '') await this.#api.replaceClusterCustomObjectStatus({ group, version, plural, name, body });
      else await this.#api.replaceNamespacedCustomObjectStatus({ group, version, namespace, plural, name, body });
    } catch (error) {
      const code = apiStatusCode(error);
      // 409: the object changed since it was read; its update event brings it back here. 404: it is gone.
      if (code === 409) this.#counts.conflicts++;
      if (code === 409 || code === 404) return;
      this.#counts.failed++;
      this.#lastError = `${label}: ${apiErrorMessage(error)}`;
      if (!this.#failing) {
        this.#failing = true;
        this.#log.warn({ code: 'MP_STATUS_WRITE_FAILED', object: label, err: error }, `MP_STATUS_WRITE_FAILED: status of ${this.#lastError}; retried with backoff (meshpilot needs update on ${target.plural}/status: deploy/02-rbac.yaml)`);
      }
      this.#retryLater(target.key);
      return;
    }
    this.#counts.written++;
    this.#lastWriteAt = new Date();
    this.#written.set(target.key, { baseResourceVersion: target.resourceVersion, status: statusSignature(status) });
    this.#retries.delete(target.key);
    if (this.#failing) {
      this.#failing = false;
      this.#log.info({ object: label }, 'status writes succeed again');
    }
    this.#log.debug({ object: label, observedGeneration: status['observedGeneration'] }, 'wrote status');
  }

  #retryLater(key: string): void {
    const failures = (this.#retries.get(key)?.failures ?? 0) + 1;
    const delayMs = Math.min(this.#tuning.backoffMaxMs, this.#tuning.backoffInitialMs * 2 ** Math.min(failures - 1, 20));
    const timer = setTimeout(() => {
      this.#retries.delete(key);
      if (this.#options.elector.leading) this.#enqueue(key);
    }, delayMs);
    timer.unref();
    this.#retries.set(key, { failures, timer });
  }
}
