// Convergence: time from a source change (as the push controller first saw it) to each
// proxy's ACK of the response carrying it. Keeps a bounded window of recent samples.
import type { ConnectionEvents } from '../xds/server/connection.ts';
import type { ResourceTypeUrl } from '../xds/type-urls.ts';

export interface ConvergenceSummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** One proxy's ACK of a response that carried a source change. */
export interface ConvergenceSample {
  readonly ms: number;
  readonly pushSequence: number;
  readonly proxyId?: string;
  readonly typeUrl?: ResourceTypeUrl;
}

export class ConvergenceTracker {
  readonly #samples: number[] = [];
  readonly #limit: number;
  readonly #listeners = new Set<(sample: ConvergenceSample) => void>();

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  readonly events: ConnectionEvents = {
    onConverged: (connection, typeUrl, ms, pushSequence) => {
      this.record({ ms, pushSequence, typeUrl, ...(connection.proxy ? { proxyId: connection.proxy.id } : {}) });
    },
  };

  record(sample: ConvergenceSample): void {
    this.#samples.push(sample.ms);
    if (this.#samples.length > this.#limit) this.#samples.splice(0, this.#samples.length - this.#limit);
    for (const listener of this.#listeners) listener(sample);
  }

  /** Each sample as it is recorded, with the proxy and type it came from. */
  onSample(listener: (sample: ConvergenceSample) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  summary(): ConvergenceSummary {
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0 };
  }

  reset(): void {
    this.#samples.length = 0;
  }
}
