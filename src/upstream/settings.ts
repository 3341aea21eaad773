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
  /** Retries at most this share of the last 10 s of requests, plus 10 a second; null: unbounded. */
  readonly retryBudgetPercent: number | null;
  /** New and re-admitted instances ramp from 10% to 100% of their weight over this long; 0: off. */
  readonly slowStartMs: number;
  /** Prefer instances in this proxy's zone. */
  readonly zoneAware: boolean;
}

/** What one service sets apart from the rest (any of TrafficSettings; other keys are ignored here). */
export type TrafficOverride = Partial<TrafficSettings>;

/** The settings one service's traffic uses now. */
export interface ServiceSettings extends TrafficSettings {
  /** The balancer named `balancer`. */
  readonly pick: Balancer;
}

/** The keys of TrafficSettings (what `trafficSettings` copies out of a larger config). */
export const TRAFFIC_KEYS = ['balancer', 'retries', 'connectTimeoutMs', 'tryTimeoutMs', 'deadlineMs', 'consecutive5xx', 'ejectionBaseMs', 'ejectionMaxMs', 'maxEjectionPercent', 'jitterFraction', 'retryBudgetPercent', 'slowStartMs', 'zoneAware'] as const;

/** The traffic settings out of a config holding them (and more). */
export function trafficSettings(config: TrafficSettings): TrafficSettings {
  return pickTraffic(config) as unknown as TrafficSettings;
}

function pickTraffic(config: TrafficOverride): TrafficOverride {
  const out: Record<string, unknown> = {};
  for (const key of TRAFFIC_KEYS) if (config[key] !== undefined) out[key] = config[key];
  return Object.freeze(out) as TrafficOverride;
}

/**
 * The settings in force: the defaults, and per service what its override sets over them.
 * `for(service)` is what the hot path calls (a map lookup): it returns a frozen object that
 * `replace` swaps whole. One balancer per name is kept across replacements, so switching back to
 * round-robin continues its rotation.
 */
export class Settings {
  readonly #random: RandomSource | undefined;
  readonly #balancers = new Map<BalancerName, Balancer>();
  #defaults!: ServiceSettings;
  #perService = new Map<string, ServiceSettings>();

  constructor(defaults: TrafficSettings, overrides: Readonly<Record<string, TrafficOverride>> = {}, random?: RandomSource) {
    this.#random = random;
    this.replace(defaults, overrides);
  }

  /** The settings `service` uses now. */
  for(service: string): ServiceSettings {
    return this.#perService.get(service) ?? this.#defaults;
  }

  /** From the next request on, these settings. */
  replace(defaults: TrafficSettings, overrides: Readonly<Record<string, TrafficOverride>> = {}): void {
    const base = trafficSettings(defaults);
    this.#defaults = this.#resolve(base);
    const perService = new Map<string, ServiceSettings>();
    for (const [service, override] of Object.entries(overrides)) {
      const own = pickTraffic(override);
      if (Object.keys(own).length > 0) perService.set(service, this.#resolve({ ...base, ...own }));
    }
    this.#perService = perService;
  }

  #resolve(settings: TrafficSettings): ServiceSettings {
    let pick = this.#balancers.get(settings.balancer);
    if (!pick) this.#balancers.set(settings.balancer, (pick = createBalancer(settings.balancer, this.#random)));
    return Object.freeze({ ...trafficSettings(settings), pick });
  }
}
