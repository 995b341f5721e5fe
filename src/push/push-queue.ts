// The per-proxy push queue: a connection with pending changes is queued once (its pending
// changes merge in the connection, never pile up as messages), and a bounded number are sent
// per turn of the event loop so ACKs and new requests keep flowing. A connection whose client
// is not reading is skipped until its bytes drain; it never holds up the others.
import type { ConnectionScheduler } from '../xds/server/ads-server.ts';
import type { XdsConnection } from '../xds/server/connection.ts';

export interface PushQueueOptions {
  /** Connections flushed per event-loop turn. */
  readonly concurrency: number;
}

export const DEFAULT_PUSH_CONCURRENCY = 100;

export class PushQueue implements ConnectionScheduler {
  readonly #queued = new Set<XdsConnection>();
  readonly #concurrency: number;
  #scheduled = false;
  #stopped = false;
  /** Largest number of connections waiting at once. */
  maxQueued = 0;

  constructor(options: PushQueueOptions = { concurrency: DEFAULT_PUSH_CONCURRENCY }) {
    this.#concurrency = Math.max(1, options.concurrency);
  }

  get size(): number {
    return this.#queued.size;
  }

  schedule(connection: XdsConnection): void {
    if (this.#stopped || connection.blocked) return; // a blocked connection is re-scheduled when it drains
    this.#queued.add(connection);
    this.maxQueued = Math.max(this.maxQueued, this.#queued.size);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#drain);
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#queued.clear();
  }

  readonly #drain = (): void => {
    this.#scheduled = false;
    let budget = this.#concurrency;
    for (const connection of this.#queued) {
      if (budget-- <= 0) break;
      this.#queued.delete(connection);
      connection.flush();
    }
    if (this.#queued.size > 0) {
      this.#scheduled = true;
      setImmediate(this.#drain);
    }
  };
}
