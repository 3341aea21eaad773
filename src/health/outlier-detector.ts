import { EventEmitter } from 'node:events';
import NodeCache from 'node-cache';
import type { Logger } from 'pino';
import type { Instance } from '../discovery/provider-table.js';
import type { OutcomeKind } from '../outcome.js';

export interface OutlierOptions {
  /** Consecutive 5xx responses that eject an instance (Envoy's consecutive_5xx). */
  readonly consecutive5xx: number;
  /** Ejection time is this times the instance's number of ejections... */
  readonly ejectionBaseMs: number;
  /** ...capped here. */
  readonly ejectionMaxMs: number;
  /** Never eject more than this share of a service's instances (at least one may go). */
  readonly maxEjectionPercent: number;
  /** Random extra ejection time, as a fraction of the ejection time (default 0.1). */
  readonly jitterFraction?: number;
}

export interface OutlierDeps {
  readonly logger: Logger;
  readonly random?: () => number;
}

interface HealthState {
  consecutive5xx: number;
  ejections: number;
  readmittedAt: number | undefined;
  lastFailure: { readonly outcome: OutcomeKind; readonly at: number } | undefined;
}

/** What health knows of one instance (for the admin API). */
export interface InstanceHealth {
  readonly healthy: boolean;
  /** When the current ejection ends (ms since epoch). */
  readonly ejectedUntil: number | undefined;
  readonly ejectionReason: string | undefined;
  /** Ejections so far (the multiplier of the next ejection time). */
  readonly ejections: number;
  readonly consecutiveFailures: number;
  readonly lastFailure: { readonly outcome: OutcomeKind; readonly at: number } | undefined;
}

interface Ejection {
  readonly instance: Instance;
  readonly untilMs: number;
  readonly reason: string;
  /** Decided by another worker (cluster mode): its end is counted there, not here. */
  readonly shared?: boolean;
}

export interface HealthCandidates {
  readonly instances: readonly Instance[];
  /** True when every instance was ejected and all of them are offered anyway. */
  readonly panic: boolean;
}

export interface OutlierStats {
  readonly ejected: number;
  readonly ejectionsTotal: number;
  readonly ejectionsSkippedByPercent: number;
  readonly readmissionsTotal: number;
  readonly panicsTotal: number;
}

// Failures that mean the instance is unreachable or broken now: one is enough to eject.
const EJECT_AT_ONCE: ReadonlySet<OutcomeKind> = new Set(['connect-failed', 'reset-before-response', 'timeout']);

/**
 * Passive health: a filter over the discovery table, never an edit of it. Ejections are
 * node-cache entries whose TTL is the ejection time; an expired entry is a re-admission. State
 * is keyed by znode uid, so an instance re-created in ZooKeeper starts clean.
 *
 * Events: `ejected` (instance, reason, durationMs), `readmitted` (instance; ejections decided
 * here), `released` (instance; any ejection's end, another worker's too), `panic` (service).
 */
export class OutlierDetector extends EventEmitter {
  /** The options in force for a service (they may change between calls: a reload). */
  readonly #options: (service: string) => OutlierOptions;
  readonly #logger: Logger;
  readonly #random: () => number;
  readonly #ejections: NodeCache;
  readonly #state = new Map<string, HealthState>();
  readonly #panicking = new Set<string>();
  /** candidates() answers per service, valid while the epoch and the set are the same. */
  readonly #filtered = new Map<string, { instances: readonly Instance[]; epoch: number; untilMs: number; result: HealthCandidates }>();
  /** Bumped by every ejection, re-admission and forget. */
  #epoch = 0;
  #ejectionsTotal = 0;
  #skipped = 0;
  #readmissions = 0;
  #panics = 0;

  constructor(options: OutlierOptions | ((service: string) => OutlierOptions), deps: OutlierDeps) {
    super();
    this.#options = typeof options === 'function' ? options : () => options;
    this.#logger = deps.logger.child({ component: 'health' });
    this.#random = deps.random ?? Math.random;
    // Expiry is also checked on every read, so re-admission is on time; the sweep only tidies.
    this.#ejections = new NodeCache({ stdTTL: 0, checkperiod: 1, useClones: false, deleteOnExpire: true });
    this.#ejections.on('expired', (uid: string, ejection: Ejection) => this.#readmit(uid, ejection));
  }

  /**
   * The instances to balance over: the healthy ones, or all of them in panic mode. The answer
   * is kept per service until the set, an ejection or the earliest ejection end changes, so a
   * 1,000-instance service with an ejected instance is not scanned on every request.
   */
  candidates(service: string, instances: readonly Instance[]): HealthCandidates {
    if (this.#ejections.getStats().keys === 0 || instances.length === 0) return { instances, panic: false };
    const cached = this.#filtered.get(service);
    if (cached && cached.instances === instances && cached.epoch === this.#epoch && Date.now() < cached.untilMs) return cached.result;
    let healthy: Instance[] | undefined;
    let untilMs = Infinity;
    for (let i = 0; i < instances.length; i++) {
      const instance = instances[i]!;
      // get() also expires a due ejection (the re-admission is announced then).
      const ejection = this.#ejections.get<Ejection>(instance.uid);
      if (ejection) {
        healthy ??= instances.slice(0, i);
        untilMs = Math.min(untilMs, ejection.untilMs);
      } else if (healthy) {
        healthy.push(instance);
      }
    }
    let result: HealthCandidates;
    if (!healthy) {
      this.#panicking.delete(service);
      result = { instances, panic: false };
    } else if (healthy.length > 0) {
      this.#panicking.delete(service);
      result = { instances: healthy, panic: false };
    } else {
      if (!this.#panicking.has(service)) {
        this.#panicking.add(service);
        this.#panics += 1;
        this.#logger.warn({ service, instances: instances.length }, 'every instance is ejected: balancing over all of them (panic mode)');
        this.emit('panic', service);
      }
      result = { instances, panic: true };
    }
    this.#filtered.set(service, { instances, epoch: this.#epoch, untilMs, result });
    return result;
  }

  isEjected(instance: Instance): boolean {
    return this.#ejections.has(instance.uid);
  }

  /** Feeds one try's outcome; `serviceInstances` is the service's current set (for the cap). */
  record(instance: Instance, outcome: OutcomeKind, serviceInstances: readonly Instance[]): void {
    if (outcome === 'client-aborted' || outcome === 'overloaded') return;
    if (outcome === 'ok') {
      const state = this.#state.get(instance.uid);
      if (state) state.consecutive5xx = 0;
      return;
    }
    const state = this.#stateOf(instance.uid);
    state.lastFailure = { outcome, at: Date.now() };
    if (EJECT_AT_ONCE.has(outcome)) {
      this.#eject(instance, outcome, state, serviceInstances);
      return;
    }
    // upstream-5xx, response-interrupted: eject after enough in a row.
    state.consecutive5xx += 1;
    const { consecutive5xx } = this.#options(instance.service);
    if (state.consecutive5xx >= consecutive5xx) this.#eject(instance, `${consecutive5xx} consecutive 5xx`, state, serviceInstances);
  }

  /** The health of one instance, for operators. */
  describe(instance: Instance): InstanceHealth {
    const ejection = this.#ejections.get<Ejection>(instance.uid);
    const state = this.#state.get(instance.uid);
    return {
      healthy: ejection === undefined,
      ejectedUntil: ejection?.untilMs,
      ejectionReason: ejection?.reason,
      ejections: state?.ejections ?? 0,
      consecutiveFailures: state?.consecutive5xx ?? 0,
      lastFailure: state?.lastFailure,
    };
  }

  /** Drops the health state of instances (by uid) that left the table. */
  forget(uids: Iterable<string>): void {
    for (const uid of uids) {
      this.#state.delete(uid);
      if (this.#ejections.del(uid) > 0) this.#epoch += 1;
    }
  }

  stats(): OutlierStats {
    return {
      ejected: this.#ejections.getStats().keys,
      ejectionsTotal: this.#ejectionsTotal,
      ejectionsSkippedByPercent: this.#skipped,
      readmissionsTotal: this.#readmissions,
      panicsTotal: this.#panics,
    };
  }

  close(): void {
    this.#ejections.close();
    this.#ejections.flushAll();
    this.#filtered.clear();
  }

  #stateOf(uid: string): HealthState {
    let state = this.#state.get(uid);
    if (!state) this.#state.set(uid, (state = { consecutive5xx: 0, ejections: 0, readmittedAt: undefined, lastFailure: undefined }));
    return state;
  }

  #eject(instance: Instance, reason: string, state: HealthState, serviceInstances: readonly Instance[]): void {
    if (this.#ejections.has(instance.uid)) return;
    const options = this.#options(instance.service);
    const { maxEjectionPercent, ejectionBaseMs, ejectionMaxMs } = options;
    let ejected = 0;
    for (const other of serviceInstances) if (this.#ejections.has(other.uid)) ejected += 1;
    const allowed = maxEjectionPercent <= 0 ? 0 : Math.max(1, Math.floor((serviceInstances.length * maxEjectionPercent) / 100));
    if (ejected >= allowed) {
      this.#skipped += 1;
      this.#logger.debug({ service: instance.service, instance: instance.address, reason, ejected, allowed }, 'not ejecting: --max-ejection-percent reached');
      return;
    }
    // A long healthy spell since the last re-admission forgets earlier ejections.
    if (state.readmittedAt !== undefined && Date.now() - state.readmittedAt > ejectionMaxMs) state.ejections = 0;
    state.ejections += 1;
    state.consecutive5xx = 0;
    const base = Math.min(ejectionBaseMs * state.ejections, ejectionMaxMs);
    const durationMs = Math.round(base * (1 + (options.jitterFraction ?? 0.1) * this.#random()));
    const ejection: Ejection = { instance, untilMs: Date.now() + durationMs, reason };
    this.#ejections.set(instance.uid, ejection, durationMs / 1000);
    this.#epoch += 1;
    this.#ejectionsTotal += 1;
    this.#logger.info({ service: instance.service, instance: instance.address, id: instance.id, reason, durationMs, ejections: state.ejections }, 'instance ejected');
    this.emit('ejected', instance, reason, durationMs);
  }

  /**
   * Ejects an instance as another worker decided, until `untilMs` (no cap check: the decider
   * applied it; not counted or emitted here, so the cluster's totals count it once).
   */
  applyEjection(instance: Instance, reason: string, untilMs: number): void {
    const durationMs = untilMs - Date.now();
    if (durationMs <= 0 || this.#ejections.has(instance.uid)) return;
    this.#ejections.set(instance.uid, { instance, untilMs, reason, shared: true }, durationMs / 1000);
    this.#epoch += 1;
    this.#logger.debug({ service: instance.service, instance: instance.address, reason, durationMs }, 'instance ejected by another worker');
  }

  #readmit(uid: string, ejection: Ejection): void {
    this.#epoch += 1;
    // Back in the candidates (decided here or by another worker): slow start ramps it again.
    this.emit('released', ejection.instance);
    if (ejection.shared) return;
    const state = this.#state.get(uid);
    if (state) {
      state.readmittedAt = Date.now();
      state.consecutive5xx = 0;
    }
    this.#readmissions += 1;
    this.#logger.info({ service: ejection.instance.service, instance: ejection.instance.address, id: ejection.instance.id }, 'instance re-admitted');
    this.emit('readmitted', ejection.instance);
  }
}

/** Creates the passive health filter. */
/** `options`: one set for every service, or the set in force for a service (read at each decision). */
export function createOutlierDetector(options: OutlierOptions | ((service: string) => OutlierOptions), deps: OutlierDeps): OutlierDetector {
  return new OutlierDetector(options, deps);
}
