import { EventEmitter } from 'node:events';
import { request, type Dispatcher } from 'undici';

/** One probe: resolves true when healthy. Never rejects. */
export type Probe = () => Promise<boolean>;

export interface HealthCheckOptions {
  readonly intervalMs: number;
  /** Healthy results in a row that make a down instance up. */
  readonly rise: number;
  /** Failed results in a row that make an up instance down. */
  readonly fall: number;
}

/**
 * Nerve-style rise/fall over a probe run every interval. Starts down; emits `up` after `rise`
 * successes in a row and `down` after `fall` failures in a row (only on changes).
 */
export class HealthCheck extends EventEmitter {
  readonly #options: HealthCheckOptions;
  readonly #probe: Probe;
  #up = false;
  #streak = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(options: HealthCheckOptions, probe: Probe) {
    super();
    this.#options = options;
    this.#probe = probe;
  }

  get up(): boolean {
    return this.#up;
  }

  /** Feeds one result (also what the timer does); returns the state after it. */
  observe(healthy: boolean): boolean {
    if (healthy === this.#up) {
      this.#streak = 0;
      return this.#up;
    }
    this.#streak += 1;
    if (this.#streak >= (healthy ? this.#options.rise : this.#options.fall)) {
      this.#up = healthy;
      this.#streak = 0;
      this.emit(healthy ? 'up' : 'down');
    }
    return this.#up;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const tick = async () => {
      if (!this.#running) return;
      const healthy = await this.#probe();
      if (!this.#running) return;
      this.observe(healthy);
      this.#timer = setTimeout(() => void tick(), this.#options.intervalMs);
    };
    void tick();
  }

  close(): void {
    this.#running = false;
    clearTimeout(this.#timer);
  }
}

/** An HTTP GET probe: 2xx and 3xx are healthy; any other status, an error or a timeout is not. */
export function httpProbe(url: string, timeoutMs: number, dispatcher?: Dispatcher): Probe {
  return async () => {
    try {
      const res = await request(url, {
        method: 'GET',
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
        ...(dispatcher ? { dispatcher } : {}),
      });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 400;
    } catch {
      return false;
    }
  };
}
