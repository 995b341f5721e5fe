// Convergence, defined once: a proxy converged on a change when it ACKs the response that carried
// it, after the time from the change (as the push controller first saw it) to that ACK. The
// connection reports each such ACK; metrics, the bench and tests all read the samples from here.
import type { ConnectionEvents } from '../xds/server/connection.ts';
import type { ResourceTypeUrl } from '../xds/type-urls.ts';

/** One proxy's ACK of a response that carried a source change. */
export interface ConvergenceSample {
  readonly ms: number;
  readonly pushSequence: number;
  readonly proxyId?: string;
  readonly typeUrl?: ResourceTypeUrl;
}

export class ConvergenceTracker {
  readonly #listeners = new Set<(sample: ConvergenceSample) => void>();

  readonly events: ConnectionEvents = {
    onConverged: (connection, typeUrl, ms, pushSequence) => {
      const sample: ConvergenceSample = { ms, pushSequence, typeUrl, ...(connection.proxy ? { proxyId: connection.proxy.id } : {}) };
      for (const listener of this.#listeners) listener(sample);
    },
  };

  /** Each sample as it is recorded, with the proxy and type it came from. */
  onSample(listener: (sample: ConvergenceSample) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
