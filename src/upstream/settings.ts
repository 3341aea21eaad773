// The traffic settings in force: balancing, retries, time limits and ejection, read per request
// (and per try, per connection, per call) through the provider, so that a reload (SIGHUP)
// applies to the next request without rebuilding anything.
import { createBalancer, type Balancer, type BalancerName, type RandomSource } from '../balancer/index.js';
import type { OutlierOptions } from '../health/outlier-detector.js';

/** What a reload may change for traffic. */
export interface TrafficSettings extends OutlierOptions {
  readonly balancer: BalancerName;
  /** Retries after the first try, each on an instance not yet tried. */
  readonly retries: number;
  /** Upstream TCP connect limit per try. */
  readonly connectTimeoutMs: number;
  /** Per-try limit on waiting for a response (headers, a Thrift reply). */
  readonly tryTimeoutMs: number;
  /** Overall limit, all tries included. */
  readonly deadlineMs: number;
}

/** The settings one service's traffic uses now. */
export interface ServiceSettings extends TrafficSettings {
  /** The balancer named `balancer`. */
  readonly pick: Balancer;
}

/** The keys of TrafficSettings (what `trafficSettings` copies out of a larger config). */
export const TRAFFIC_KEYS = ['balancer', 'retries', 'connectTimeoutMs', 'tryTimeoutMs', 'deadlineMs', 'consecutive5xx', 'ejectionBaseMs', 'ejectionMaxMs', 'maxEjectionPercent', 'jitterFraction'] as const;

/** The traffic settings out of a config holding them (and more). */
export function trafficSettings(config: TrafficSettings): TrafficSettings {
  const out: Record<string, unknown> = {};
  for (const key of TRAFFIC_KEYS) if (config[key] !== undefined) out[key] = config[key];
  return Object.freeze(out) as unknown as TrafficSettings;
}

/**
 * The settings in force. `for(service)` is what the hot path calls: it returns a frozen object
 * that `replace` swaps whole. One balancer per name is kept across replacements, so switching
 * back to round-robin continues its rotation.
 */
export class Settings {
  readonly #random: RandomSource | undefined;
  readonly #balancers = new Map<BalancerName, Balancer>();
  #current: ServiceSettings;

  constructor(initial: TrafficSettings, random?: RandomSource) {
    this.#random = random;
    this.#current = this.#resolve(initial);
  }

  /** The settings `service` uses now. */
  for(_service: string): ServiceSettings {
    return this.#current;
  }

  /** From the next request on, these settings. */
  replace(next: TrafficSettings): void {
    this.#current = this.#resolve(next);
  }

  #resolve(settings: TrafficSettings): ServiceSettings {
    let pick = this.#balancers.get(settings.balancer);
    if (!pick) this.#balancers.set(settings.balancer, (pick = createBalancer(settings.balancer, this.#random)));
    return Object.freeze({ ...trafficSettings(settings), pick });
  }
}
