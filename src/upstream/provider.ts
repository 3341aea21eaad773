// The service provider (Curator x-discovery's ServiceProvider): which instance gets the next try
// of a service, and what the try came to. Protocol-neutral: HTTP, WebSocket, and later TCP and
// Thrift ask it for instances and tell it outcomes.
import type { PickContext } from '../balancer/balancer.js';
import type { Instance } from '../discovery/provider-table.js';
import type { InstanceSource, Resolution } from '../discovery/source.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import type { InstanceHealthView } from '../health/view.js';
import type { TryOutcome } from '../outcome.js';
import { RetryBudget } from './retry-budget.js';
import { SlowStart } from './slow-start.js';
import { ZonePreference, type ZoneOptions } from './zones.js';
import type { ServiceSettings } from './settings.js';
import type { LookupFunction } from 'node:net';

export interface ServiceProviderDeps {
  readonly source: InstanceSource;
  readonly health: OutlierDetector;
  /** The settings in force for a service (its balancer, retries, limits); read per pick and per request. */
  readonly settings: (service: string) => ServiceSettings;
  /** The clock (ms) of retry budgets and slow start; injected by tests. */
  readonly now?: () => number;
  /** This proxy's zone, when it has one (services with zoneAware prefer it). */
  readonly zone?: ZoneOptions;
  readonly random?: () => number;
  /** A connect-time lookup for an instance's host name that refuses forbidden results (see AddressPolicy). */
  readonly lookupFor?: (port: number) => LookupFunction;
}

/**
 * Candidates are the source's set, minus ejected instances (all of them in panic mode), minus
 * the instances to exclude (by address), handed to the balancer. Every instance handed out is
 * counted in flight until its `noteOutcome`, which also feeds health.
 */
export class ServiceProvider {
  readonly #source: InstanceSource;
  readonly #health: OutlierDetector;
  readonly #settings: (service: string) => ServiceSettings;
  readonly #lookupFor: ((port: number) => LookupFunction) | undefined;
  readonly #inFlight = new Map<string, number>();
  readonly #budgets = new Map<string, RetryBudget>();
  readonly #retriesDenied = new Map<string, number>();
  readonly #now: () => number;
  readonly #zones: ZonePreference | undefined;
  readonly #zoneCounts = new Map<string, { local: number; remote: number }>();
  /** Instances ramping up (slow start): joined, or back from an ejection. */
  readonly slowStart: SlowStart;
  readonly #ctx: { -readonly [K in keyof PickContext]: PickContext[K] };

  constructor(deps: ServiceProviderDeps) {
    this.#source = deps.source;
    this.#health = deps.health;
    this.#settings = deps.settings;
    this.#lookupFor = deps.lookupFor;
    this.#now = deps.now ?? Date.now;
    this.#zones = deps.zone ? new ZonePreference(deps.zone, deps.random) : undefined;
    this.slowStart = new SlowStart(this.#now);
    this.#ctx = { service: '', inFlight: (instance) => this.#inFlight.get(instance.uid) ?? 0 };
  }

  /** The service's instances when it is watched and has some (synchronous), else undefined. */
  known(service: string): readonly Instance[] | undefined {
    const known = this.#source.instances(service);
    return known && known.length > 0 ? known : undefined;
  }

  /** The service's instances, watching it on first use (see InstanceSource.resolve). */
  resolve(service: string): Promise<Resolution> {
    const known = this.known(service);
    return known ? Promise.resolve({ kind: 'instances', instances: known }) : this.#source.resolve(service);
  }

  /**
   * An instance for the next try, not in `exclude` (by address: a server re-registered under a
   * new znode is still the server that failed): a healthy one if any is left, else any. Counted
   * in flight: call `noteOutcome` exactly once for it.
   */
  getInstance(service: string, exclude: readonly Instance[] = [], subset?: (instance: Instance) => boolean): Instance | undefined {
    let all = this.#source.instances(service);
    if (!all || all.length === 0) return undefined;
    const settings = this.#settings(service);
    let { instances: healthy } = this.#health.candidates(service, all);
    if (subset) {
      // Only the subset's instances: healthy ones, else all of them (panic inside the subset).
      all = all.filter(subset);
      if (all.length === 0) return undefined;
      healthy = healthy.filter(subset);
      if (healthy.length === 0) healthy = all;
    }
    let candidates = healthy;
    if (this.#zones && settings.zoneAware) {
      const chosen = this.#zones.choose(all, healthy);
      candidates = chosen.candidates;
      let counts = this.#zoneCounts.get(service);
      if (!counts) this.#zoneCounts.set(service, (counts = { local: 0, remote: 0 }));
      if (chosen.local) counts.local += 1;
      else counts.remote += 1;
    }
    if (exclude.length > 0) {
      const untried = (i: Instance) => !exclude.some((t) => t.address === i.address);
      candidates = candidates.filter(untried);
      if (candidates.length === 0) candidates = healthy.filter(untried);
      if (candidates.length === 0) candidates = all.filter(untried);
      if (candidates.length === 0) return undefined;
    }
    // One context object reused for every pick (the hot path allocates nothing for it).
    this.#ctx.service = service;
    let instance: Instance | undefined;
    const weighed = settings.slowStartMs > 0 ? this.slowStart.weigh(candidates, settings.slowStartMs) : candidates;
    if (weighed === candidates) instance = settings.pick(candidates, this.#ctx);
    else {
      // Some weights ramp: the pick is a copy standing for its instance; hand out the table's own object.
      const picked = settings.pick(weighed, this.#ctx);
      instance = picked && candidates.find((i) => i.uid === picked.uid);
    }
    if (instance) this.#inFlight.set(instance.uid, (this.#inFlight.get(instance.uid) ?? 0) + 1);
    return instance;
  }

  /** Picks per service that went to the local zone or elsewhere (zone preference on). */
  zoneCounts(): ReadonlyMap<string, { readonly local: number; readonly remote: number }> {
    return this.#zoneCounts;
  }

  /** How a try on an instance from `getInstance` ended: no longer in flight; health learns it. */
  noteOutcome(instance: Instance, outcome: TryOutcome): void {
    // Kept at 0 (not deleted): deleting the last entry and adding it again resizes the Map on
    // every request. Entries go when their instance leaves the table (forget).
    this.#inFlight.set(instance.uid, Math.max(0, (this.#inFlight.get(instance.uid) ?? 1) - 1));
    this.#health.record(instance, outcome.kind, this.#source.instances(instance.service) ?? [instance]);
  }

  /** Instances that left the table: their in-flight counts go (tries still running end at 0). */
  forget(uids: readonly string[]): void {
    for (const uid of uids) if (this.#inFlight.get(uid) === 0) this.#inFlight.delete(uid);
    this.slowStart.forget(uids);
  }

  /** The settings in force for `service`: read them per request, so a reload applies to the next one. */
  settings(service: string): ServiceSettings {
    return this.#settings(service);
  }

  /** A request of `service` began (its retry budget grows with requests). */
  noteRequest(service: string): void {
    if (this.#settings(service).retryBudgetPercent !== null) this.#budget(service).deposit();
  }

  /** May `service` retry once more now (its retry budget; unbounded when off)? Counts a denial. */
  retryAllowed(service: string): boolean {
    const percent = this.#settings(service).retryBudgetPercent;
    if (percent === null || this.#budget(service).allows(percent)) return true;
    this.#retriesDenied.set(service, (this.#retriesDenied.get(service) ?? 0) + 1);
    return false;
  }

  /** A retry of `service` went. */
  spendRetry(service: string): void {
    if (this.#settings(service).retryBudgetPercent !== null) this.#budget(service).spend();
  }

  /** Retries refused by each service's budget so far. */
  retriesDenied(): ReadonlyMap<string, number> {
    return this.#retriesDenied;
  }

  /** A service left ZooKeeper: its budget and counts go. */
  forgetService(service: string): void {
    this.#budgets.delete(service);
    this.#retriesDenied.delete(service);
    this.#zoneCounts.delete(service);
  }

  #budget(service: string): RetryBudget {
    let budget = this.#budgets.get(service);
    if (!budget) this.#budgets.set(service, (budget = new RetryBudget(this.#now)));
    return budget;
  }

  /** The lookup a protocol connects an instance's host name with (undefined: the system's). */
  lookupFor(port: number): LookupFunction | undefined {
    return this.#lookupFor?.(port);
  }

  /** Tries in flight to an instance now. */
  inFlight(instance: Instance): number {
    return this.#inFlight.get(instance.uid) ?? 0;
  }

  /** Health and tries in flight of every instance, as of now (a protocol adds its own counts). */
  healthView(): (instance: Instance) => Omit<InstanceHealthView, 'tcpConnections' | 'thriftConnections'> {
    return (instance) => ({ ...this.#health.describe(instance), inFlight: this.inFlight(instance) });
  }
}
