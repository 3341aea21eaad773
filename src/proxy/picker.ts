import type { Balancer, PickContext } from '../balancer/balancer.js';
import type { Resolution } from '../discovery/discovery.js';
import type { Instance } from '../discovery/provider-table.js';
import { ProxyError } from '../errors.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import type { OutcomeKind } from './forwarder.js';

/** The part of Discovery the proxy reads. */
export interface InstanceSource {
  /** The current set, synchronously, when the service is already watched. */
  instances(service: string): readonly Instance[] | undefined;
  /** Watches the service on first use and waits (bounded) for its first snapshot. */
  resolve(service: string): Promise<Resolution>;
}

export interface PickerDeps {
  readonly discovery: InstanceSource;
  readonly health: OutlierDetector;
  readonly balancer: Balancer;
}

/**
 * The request -> candidates -> pick step: the discovery table, minus ejected instances (or all
 * of them in panic mode), minus instances this request already tried, handed to the balancer.
 * Counts requests in flight per instance for p2c.
 */
export class Picker {
  readonly #deps: PickerDeps;
  readonly #inFlight = new Map<string, number>();
  readonly #ctx: { -readonly [K in keyof PickContext]: PickContext[K] };

  constructor(deps: PickerDeps) {
    this.#deps = deps;
    this.#ctx = { service: '', inFlight: (instance) => this.#inFlight.get(instance.uid) ?? 0 };
  }

  /** The service's instances when it is watched and has some (synchronous), else undefined. */
  knownInstances(service: string): readonly Instance[] | undefined {
    const known = this.#deps.discovery.instances(service);
    return known && known.length > 0 ? known : undefined;
  }

  /** The service's instances, or the error a request for it gets. */
  async instancesFor(service: string): Promise<readonly Instance[] | ProxyError> {
    const known = this.knownInstances(service);
    if (known) return known;
    const resolution = await this.#deps.discovery.resolve(service);
    switch (resolution.kind) {
      case 'instances':
        return resolution.instances;
      case 'empty':
        return new ProxyError('no_providers', `service ${service} has no instances registered right now`, service);
      case 'unknown':
        return new ProxyError('unknown_service', `service ${service} is not registered in ZooKeeper`, service);
      case 'timeout':
        return new ProxyError('discovery_unavailable', `could not read service ${service} from ZooKeeper in time`, service);
    }
  }

  /** Picks an instance not in `tried` (by address): a healthy one if any is left, else any untried one. */
  pick(service: string, tried: readonly Instance[]): Instance | undefined {
    const all = this.#deps.discovery.instances(service);
    if (!all || all.length === 0) return undefined;
    const { instances: healthy } = this.#deps.health.candidates(service, all);
    let candidates = healthy;
    if (tried.length > 0) {
      // By address: a server re-registered under a new znode is still the server that failed.
      const untried = (i: Instance) => !tried.some((t) => t.address === i.address);
      candidates = healthy.filter(untried);
      if (candidates.length === 0) candidates = all.filter(untried);
      if (candidates.length === 0) return undefined;
    }
    // One context object reused for every pick (the hot path allocates nothing for it).
    this.#ctx.service = service;
    return this.#deps.balancer(candidates, this.#ctx);
  }

  /** Marks a try started; call `end` with its outcome. */
  begin(instance: Instance): void {
    this.#inFlight.set(instance.uid, (this.#inFlight.get(instance.uid) ?? 0) + 1);
  }

  end(instance: Instance, outcome: OutcomeKind): void {
    const n = (this.#inFlight.get(instance.uid) ?? 1) - 1;
    if (n <= 0) this.#inFlight.delete(instance.uid);
    else this.#inFlight.set(instance.uid, n);
    this.#deps.health.record(instance, outcome, this.#deps.discovery.instances(instance.service) ?? [instance]);
  }

  inFlight(instance: Instance): number {
    return this.#inFlight.get(instance.uid) ?? 0;
  }
}
