// Cancelling one request's tries: the caller going away or the request's deadline passing.

/**
 * A one-shot cancel with a reason and at most one listener: what an AbortController gives,
 * without the EventTarget machinery on every request.
 */
export class Cancellation {
  #reason: Error | undefined;
  #listener: ((reason: Error) => void) | undefined;

  get reason(): Error | undefined {
    return this.#reason;
  }

  cancel(reason: Error): void {
    if (this.#reason) return;
    this.#reason = reason;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.(reason);
  }

  /** Sets the listener (replacing the last one); it runs at once if already cancelled. */
  onCancel(listener: ((reason: Error) => void) | undefined): void {
    if (this.#reason && listener) listener(this.#reason);
    else this.#listener = listener;
  }
}

/** The cancel reason when the caller went away: the try ends as `client-aborted`. */
export const CLIENT_GONE = new Error('client went away');
/** The cancel reason when the request's overall deadline passed: the try ends as `timeout`. */
export const DEADLINE_PASSED = new Error('request deadline passed');
