// Convergence: time from a source change (as the push controller first saw it) to each
// proxy's ACK of the response carrying it. Keeps a bounded window of recent samples.
import type { ConnectionEvents } from '../xds/server/connection.ts';

export interface ConvergenceSummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export class ConvergenceTracker {
  readonly #samples: number[] = [];
  readonly #limit: number;
  readonly #listeners = new Set<(ms: number, pushSequence: number) => void>();

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  readonly events: ConnectionEvents = {
    onConverged: (_connection, _typeUrl, ms, pushSequence) => {
      this.record(ms, pushSequence);
    },
  };

  record(ms: number, pushSequence: number): void {
    this.#samples.push(ms);
    if (this.#samples.length > this.#limit) this.#samples.splice(0, this.#samples.length - this.#limit);
    for (const listener of this.#listeners) listener(ms, pushSequence);
  }

  onSample(listener: (ms: number, pushSequence: number) => void): () => void {
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
