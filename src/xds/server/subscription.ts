// Subscriptions shared between streams: a thousand sidecars asking for the same thousand
// names hold one frozen name set between them, not a thousand copies.

export interface Subscription {
  readonly names: readonly string[];
  readonly set: ReadonlySet<string>;
  /** The names as the request that created it carried them on the wire: later ACKs are compared byte for byte. */
  readonly wire?: Buffer;
}

interface Entry {
  readonly subscription: Subscription;
  refs: number;
  /** Request digests known to carry exactly these names. */
  readonly digests: Set<string>;
}

export const EMPTY_SUBSCRIPTION: Subscription = { names: [], set: new Set() };

export class SubscriptionPool {
  readonly #entries = new Map<string, Entry>();
  readonly #keys = new WeakMap<Subscription, string>();
  readonly #byDigest = new Map<string, Entry>();

  /**
   * The shared subscription for these names (duplicates dropped, order ignored). `digest`
   * identifies the request bytes the names came from: a list seen before is found without sorting
   * (or, when `names` is a function, without reading them at all).
   */
  acquire(names: Iterable<string> | (() => Iterable<string>), digest?: string, wire?: Buffer): Subscription {
    const known = digest ? this.#byDigest.get(digest) : undefined;
    if (known) {
      known.refs++;
      return known.subscription;
    }
    const entry = this.#entry(typeof names === 'function' ? names() : names, wire);
    if (!entry) return EMPTY_SUBSCRIPTION;
    entry.refs++;
    if (digest) {
      entry.digests.add(digest);
      this.#byDigest.set(digest, entry);
    }
    return entry.subscription;
  }

  #entry(names: Iterable<string>, wire: Buffer | undefined): Entry | undefined {
    const sorted = [...new Set(names)].sort();
    if (sorted.length === 0) return undefined;
    const key = sorted.join('\n');
    let entry = this.#entries.get(key);
    if (!entry) {
      const subscription: Subscription = { names: Object.freeze(sorted), set: new Set(sorted), ...(wire ? { wire: Buffer.from(wire) } : {}) };
      entry = { subscription, refs: 0, digests: new Set() };
      this.#entries.set(key, entry);
      this.#keys.set(subscription, key);
    }
    return entry;
  }

  release(subscription: Subscription): void {
    const key = this.#keys.get(subscription);
    if (key === undefined) return;
    const entry = this.#entries.get(key);
    if (entry && --entry.refs <= 0) {
      this.#entries.delete(key);
      for (const digest of entry.digests) this.#byDigest.delete(digest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
