/**
 * At most `limit` tasks at once; the rest wait their turn. Shared by every watcher of a
 * discovery client, so loading a thousand services at start-up keeps a bounded number of
 * ZooKeeper reads (and their buffers) in flight.
 */
export class Limiter {
  readonly #limit: number;
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#queue.push(resolve));
    this.#running += 1;
    try {
      return await task();
    } finally {
      this.#running -= 1;
      this.#queue.shift()?.();
    }
  }
}
