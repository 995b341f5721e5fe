// A controller's work queue reduced to what the test cluster needs: pokes coalesce into one
// pending reconcile, reconciles run one at a time, and a stopped loop runs no more.
export class ReconcileLoop {
  #queue: Promise<void> = Promise.resolve();
  #dirty = false;
  #stopped = false;

  /** `name` prefixes the errors a reconcile throws (written to stderr; the next poke tries again). */
  constructor(
    private readonly name: string,
    private readonly reconcile: () => Promise<void>,
  ) {}

  /** Schedules a reconcile of everything (coalesced; one at a time). */
  poke(): void {
    if (this.#dirty || this.#stopped) return;
    this.#dirty = true;
    this.#queue = this.#queue.then(async () => {
      this.#dirty = false;
      if (this.#stopped) return;
      await this.reconcile().catch((error: unknown) => {
        process.stderr.write(`${this.name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      });
    });
  }

  /** No reconcile starts after this; resolves when the running one (if any) has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#queue;
  }
}
