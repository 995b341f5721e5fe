// Coalesces bursts of changes: fire after `quietMs` without a new event, or `maxMs` after the first.
export interface DebounceOptions {
  readonly quietMs: number;
  readonly maxMs: number;
}

export class Debouncer<T> {
  readonly #options: DebounceOptions;
  readonly #fire: (events: T[], waitedMs: number) => void;
  #pending: T[] = [];
  #firstAt = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: DebounceOptions, fire: (events: T[], waitedMs: number) => void) {
    this.#options = options;
    this.#fire = fire;
  }

  add(event: T): void {
    const now = Date.now();
    if (this.#pending.length === 0) this.#firstAt = now;
    this.#pending.push(event);
    if (this.#timer) clearTimeout(this.#timer);
    const untilMax = this.#firstAt + this.#options.maxMs - now;
    this.#timer = setTimeout(() => {
      this.flush();
    }, Math.max(0, Math.min(this.#options.quietMs, untilMax)));
  }

  /** Fires now with whatever is pending. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const events = this.#pending;
    this.#pending = [];
    this.#fire(events, Date.now() - this.#firstAt);
  }

  cancel(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = [];
  }
}
