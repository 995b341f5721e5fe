// The server-wide budget of unwritten response bytes, fair to every proxy. Bytes a proxy reads
// count against the budget all streams share; bytes of a stream that stopped reading (a write
// pending longer than the stall time, or a stream over its own high water) are parked: they
// no longer hold the healthy streams back. Parked bytes have a cap of their own: past it, the
// streams stalled longest are reset (the proxy reconnects and starts over), so a proxy that
// cannot keep up costs only itself and memory stays bounded.
import type { XdsConnection } from './connection.ts';

interface Holders {
  /** Writes of this buffer not yet finished, across streams. */
  writers: number;
  /** Of those, writes by stalled streams. */
  stalled: number;
}

/** Where a buffer's bytes count: against the shared budget, parked, or nowhere once written. */
type Place = 'flowing' | 'parked' | 'none';

function placeOf(holders: Holders | undefined): Place {
  if (!holders || holders.writers === 0) return 'none';
  return holders.writers > holders.stalled ? 'flowing' : 'parked';
}

export class WriteBudget {
  /** Bytes written to streams that read, not yet out: what the shared limit bounds. */
  inFlight = 0;
  maxInFlight = 0;
  /** Bytes held only by stalled streams. */
  parked = 0;
  maxParked = 0;
  readonly limit: number;
  /** Parked bytes above which the longest-stalled streams are reset. */
  readonly parkedLimit: number;
  /** Streams waiting for the shared budget to have room. */
  readonly waiting = new Set<XdsConnection>();
  readonly #buffers = new Map<Buffer, Holders>();

  constructor(limit: number, parkedLimit = limit) {
    this.limit = limit;
    this.parkedLimit = parkedLimit;
  }

  /** A stream starts writing `bytes`; a buffer many streams write at once is memory once, and counts once. */
  take(bytes: Buffer, stalled: boolean): void {
    this.#change(bytes, (h) => {
      h.writers++;
      if (stalled) h.stalled++;
    });
  }

  /** A stream's write of `bytes` finished (or its stream ended). */
  release(bytes: Buffer, stalled: boolean): void {
    this.#change(bytes, (h) => {
      h.writers--;
      if (stalled) h.stalled--;
    });
  }

  /** A stream holding `bytes` stalled (true) or reads again (false). */
  stall(bytes: Buffer, stalled: boolean): void {
    this.#change(bytes, (h) => {
      h.stalled += stalled ? 1 : -1;
    });
  }

  /** Whether the shared budget has room for more writes. */
  hasRoom(): boolean {
    return this.inFlight < this.limit;
  }

  #change(bytes: Buffer, update: (holders: Holders) => void): void {
    let holders = this.#buffers.get(bytes);
    const before = placeOf(holders);
    if (!holders) {
      holders = { writers: 0, stalled: 0 };
      this.#buffers.set(bytes, holders);
    }
    update(holders);
    const after = placeOf(holders);
    if (after === 'none') this.#buffers.delete(bytes);
    if (before === after) return;
    const size = bytes.length;
    if (before === 'flowing') this.inFlight -= size;
    if (before === 'parked') this.parked -= size;
    if (after === 'flowing') this.inFlight += size;
    if (after === 'parked') this.parked += size;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.maxParked = Math.max(this.maxParked, this.parked);
  }
}

/** How long a write may stay unfinished before its stream counts as stalled. */
export const DEFAULT_STALL_MS = 5000;
