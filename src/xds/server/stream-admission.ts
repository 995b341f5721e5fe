// New streams admitted per second across a server, with a burst above the rate: a token bucket
// (Istio's PILOT_MAX_REQUESTS_PER_SECOND idea), so every proxy reconnecting at once is spread out.
export class StreamAdmission {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #tokensAt = performance.now();

  /** `rate` new streams a second (0: no limit), `burst` deep. */
  constructor(rate: number, burst: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** Whether one more stream may start now (it takes a token when it may). */
  admit(): boolean {
    if (this.#rate <= 0) return true;
    const now = performance.now();
    this.#tokens = Math.min(Math.max(1, this.#burst), this.#tokens + ((now - this.#tokensAt) * this.#rate) / 1000);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
