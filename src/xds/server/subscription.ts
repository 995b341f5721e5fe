// Subscriptions shared between streams: a thousand sidecars asking for the same thousand
// names hold one frozen name set between them, not a thousand copies.

export interface Subscription {
  readonly names: readonly string[];
  readonly set: ReadonlySet<string>;
}

interface Entry {
  readonly subscription: Subscription;
  refs: number;
}

export const EMPTY_SUBSCRIPTION: Subscription = { names: [], set: new Set() };

export class SubscriptionPool {
  readonly #entries = new Map<string, Entry>();
  readonly #keys = new WeakMap<Subscription, string>();

  /** The shared subscription for these names (duplicates dropped, order ignored). */
  acquire(names: Iterable<string>): Subscription {
    const sorted = [...new Set(names)].sort();
    if (sorted.length === 0) return EMPTY_SUBSCRIPTION;
    const key = sorted.join('\n');
    let entry = this.#entries.get(key);
    if (!entry) {
      const subscription: Subscription = { names: Object.freeze(sorted), set: new Set(sorted) };
      entry = { subscription, refs: 0 };
      this.#entries.set(key, entry);
      this.#keys.set(subscription, key);
    }
    entry.refs++;
    return entry.subscription;
  }

  release(subscription: Subscription): void {
    const key = this.#keys.get(subscription);
    if (key === undefined) return;
    const entry = this.#entries.get(key);
    if (entry && --entry.refs <= 0) this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
