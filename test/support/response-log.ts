// The responses a raw test client has received, and waiting for the next one that matches.
export class ResponseLog<T> {
  readonly items: T[] = [];
  #waiters: (() => void)[] = [];

  add(item: T): void {
    this.items.push(item);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until an item matching `predicate` arrives (or has arrived after index `from`). */
  async next(predicate: (item: T) => boolean, from: number, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.items.slice(from).find(predicate);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching response within ${timeoutMs} ms (got ${this.items.length})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves with the items that arrived within `ms` after index `from` (to assert silence). */
  async quiet(ms: number, from: number): Promise<T[]> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.items.slice(from);
  }
}
