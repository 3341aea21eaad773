// A retry budget per service, as Finagle's RetryBudget: over the last 10 seconds, retries may be
// at most a share of the requests, plus a floor of 10 a second, so that a service-wide failure
// is not met with two or three times its load.

const WINDOW_SEC = 10;
/** Retries always allowed per second, whatever the share (Finagle's minRetriesPerSec). */
export const RETRY_FLOOR_PER_SEC = 10;

export class RetryBudget {
  readonly #now: () => number;
  /** Per second of the window: its Unix second, requests, retries. */
  readonly #seconds = new Float64Array(WINDOW_SEC);
  readonly #requests = new Uint32Array(WINDOW_SEC);
  readonly #retries = new Uint32Array(WINDOW_SEC);

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A request arrived (its first try). */
  deposit(): void {
    this.#requests[this.#slot()]! += 1;
  }

  /** May one more retry go now, with `percent` of the window's requests allowed? (Does not spend it.) */
  allows(percent: number): boolean {
    this.#slot();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < WINDOW_SEC; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    return retries + 1 <= (percent / 100) * requests + RETRY_FLOOR_PER_SEC * WINDOW_SEC;
  }

  /** A retry went. */
  spend(): void {
    this.#retries[this.#slot()]! += 1;
  }

  /** This second's slot, cleared if it last held an older second. */
  #slot(): number {
    const sec = Math.floor(this.#now() / 1000);
    const i = sec % WINDOW_SEC;
    if (this.#seconds[i] !== sec) {
      // Seconds skipped since: their slots hold counts older than the window.
      for (let j = 0; j < WINDOW_SEC; j++) if (this.#seconds[j]! <= sec - WINDOW_SEC) {
        this.#requests[j] = 0;
        this.#retries[j] = 0;
      }
      this.#seconds[i] = sec;
      this.#requests[i] = 0;
      this.#retries[i] = 0;
    }
    return i;
  }
}
