// The dashboard's figures: per-second rings of requests, errors and latency per service and per
// instance, kept in memory and bounded (a key with no traffic for the whole window goes). Each
// process keeps its own; a cluster's primary adds the workers' snapshots up (mergeSnapshots).

/** Upper bounds (ms) of the latency buckets; one more bucket holds everything slower. */
export const LATENCY_BOUNDS_MS: readonly number[] = [0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];
const BUCKETS = LATENCY_BOUNDS_MS.length + 1;

export interface StatsOptions {
  /** Seconds of requests and errors kept (the sparklines). */
  readonly windowSec: number;
  /** Seconds of latency kept (the percentiles). */
  readonly latencySec: number;
}

export const DEFAULT_STATS_OPTIONS: StatsOptions = { windowSec: 180, latencySec: 60 };

/** One key's figures as of `atSec`, oldest second first. */
export interface SeriesSnapshot {
  readonly service: string;
  /** host:port, or undefined for the whole service. */
  readonly instance: string | undefined;
  /** Per second, `windowSec` entries ending at the snapshot's second (the last one is still filling). */
  readonly requests: number[];
  readonly errors: number[];
  /** Latency bucket counts over the last `latencySec` seconds (see LATENCY_BOUNDS_MS). */
  readonly latency: number[];
}

/** Every key's figures at one second; what a worker sends its primary. */
export interface StatsSnapshot {
  /** The second (Unix time) the series end at. */
  readonly atSec: number;
  readonly windowSec: number;
  readonly series: SeriesSnapshot[];
}

class Ring {
  readonly requests: Uint32Array;
  readonly errors: Uint32Array;
  /** latencySec rows of BUCKETS counts. */
  readonly latency: Uint32Array;
  lastSec: number;
  /** The last second a request was recorded (snapshots move lastSec, not this). */
  lastActiveSec: number;

  constructor(readonly service: string, readonly instance: string | undefined, readonly options: StatsOptions, sec: number) {
    this.requests = new Uint32Array(options.windowSec);
    this.errors = new Uint32Array(options.windowSec);
    this.latency = new Uint32Array(options.latencySec * BUCKETS);
    this.lastSec = sec;
    this.lastActiveSec = sec;
  }

  /** Moves to `sec`, zeroing the seconds skipped since the last one written. */
  advance(sec: number): void {
    if (sec <= this.lastSec) return;
    const { windowSec, latencySec } = this.options;
    const gap = Math.min(sec - this.lastSec, windowSec);
    for (let s = sec - gap + 1; s <= sec; s++) {
      this.requests[s % windowSec] = 0;
      this.errors[s % windowSec] = 0;
      if (sec - s < latencySec) this.latency.fill(0, (s % latencySec) * BUCKETS, (s % latencySec + 1) * BUCKETS);
    }
    this.lastSec = sec;
  }

  record(sec: number, failed: boolean, bucket: number): void {
    this.advance(sec);
    this.lastActiveSec = sec;
    const { windowSec, latencySec } = this.options;
    this.requests[sec % windowSec]! += 1;
    if (failed) this.errors[sec % windowSec]! += 1;
    this.latency[(sec % latencySec) * BUCKETS + bucket]! += 1;
  }

  snapshot(sec: number): SeriesSnapshot {
    this.advance(sec);
    const { windowSec, latencySec } = this.options;
    const requests: number[] = [];
    const errors: number[] = [];
    for (let s = sec - windowSec + 1; s <= sec; s++) {
      requests.push(this.requests[((s % windowSec) + windowSec) % windowSec]!);
      errors.push(this.errors[((s % windowSec) + windowSec) % windowSec]!);
    }
    const latency = new Array<number>(BUCKETS).fill(0);
    for (let row = 0; row < latencySec; row++) for (let b = 0; b < BUCKETS; b++) latency[b]! += this.latency[row * BUCKETS + b]!;
    return { service: this.service, instance: this.instance, requests, errors, latency };
  }
}

function bucketOf(durationMs: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (durationMs <= LATENCY_BOUNDS_MS[i]!) return i;
  return LATENCY_BOUNDS_MS.length;
}

/**
 * Per-second figures of one process. record() is a clock read, two map lookups and a few
 * increments (the service's ring and the instance's); snapshot() drops rings idle for the window.
 */
export class RequestStats {
  readonly #options: StatsOptions;
  readonly #now: () => number;
  /** Per service: its own ring and one per instance (nested maps: no key string built per request). */
  readonly #services = new Map<string, { readonly ring: Ring; readonly instances: Map<string, Ring> }>();

  constructor(options: StatsOptions = DEFAULT_STATS_OPTIONS, now: () => number = Date.now) {
    this.#options = options;
    this.#now = now;
  }

  /** One finished request (or Thrift call) of `service`, last tried on `instance` if any. */
  record(service: string, instance: string | undefined, failed: boolean, durationMs: number): void {
    const sec = Math.floor(this.#now() / 1000);
    const bucket = bucketOf(durationMs);
    let entry = this.#services.get(service);
    if (!entry) this.#services.set(service, (entry = { ring: new Ring(service, undefined, this.#options, sec), instances: new Map() }));
    entry.ring.record(sec, failed, bucket);
    if (instance === undefined) return;
    let ring = entry.instances.get(instance);
    if (!ring) entry.instances.set(instance, (ring = new Ring(service, instance, this.#options, sec)));
    ring.record(sec, failed, bucket);
  }

  /** Forgets a service that left ZooKeeper, with its instances. */
  forget(service: string): void {
    this.#services.delete(service);
  }

  snapshot(): StatsSnapshot {
    const sec = Math.floor(this.#now() / 1000);
    const idle = (ring: Ring) => ring.lastActiveSec <= sec - this.#options.windowSec;
    const series: SeriesSnapshot[] = [];
    for (const [service, entry] of this.#services) {
      if (idle(entry.ring)) {
        this.#services.delete(service);
        continue;
      }
      series.push(entry.ring.snapshot(sec));
      for (const [address, ring] of entry.instances) {
        if (idle(ring)) entry.instances.delete(address);
        else series.push(ring.snapshot(sec));
      }
    }
    return { atSec: sec, windowSec: this.#options.windowSec, series };
  }
}

/**
 * Adds snapshots up (a cluster's workers), aligned to the latest second: a snapshot taken a
 * second earlier is shifted so its seconds line up. Latency windows are added as they are.
 */
export function mergeSnapshots(snapshots: readonly StatsSnapshot[]): StatsSnapshot {
  const atSec = Math.max(0, ...snapshots.map((s) => s.atSec));
  const windowSec = Math.max(1, ...snapshots.map((s) => s.windowSec));
  const merged = new Map<string, SeriesSnapshot>();
  for (const snapshot of snapshots) {
    // Entry i of this snapshot is second atSec - windowSec + 1 + i of the merged one, less the lag.
    const lag = atSec - snapshot.atSec;
    const offset = windowSec - snapshot.windowSec - lag;
    for (const s of snapshot.series) {
      const key = s.instance === undefined ? s.service : `${s.service}\u0000${s.instance}`;
      let into = merged.get(key);
      if (!into) {
        into = { service: s.service, instance: s.instance, requests: new Array<number>(windowSec).fill(0), errors: new Array<number>(windowSec).fill(0), latency: new Array<number>(BUCKETS).fill(0) };
        merged.set(key, into);
      }
      for (let i = 0; i < s.requests.length; i++) {
        const at = i + offset;
        if (at < 0 || at >= windowSec) continue;
        into.requests[at]! += s.requests[i]!;
        into.errors[at]! += s.errors[i] ?? 0;
      }
      for (let b = 0; b < BUCKETS; b++) into.latency[b]! += s.latency[b] ?? 0;
    }
  }
  return { atSec, windowSec, series: [...merged.values()] };
}

/** The `q` quantile (0..1) of a bucketed latency, interpolated inside its bucket; null without data. */
export function quantileMs(latency: readonly number[], q: number): number | null {
  const total = latency.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let b = 0; b < latency.length; b++) {
    const n = latency[b]!;
    if (n > 0 && seen + n >= rank) {
      const lower = b === 0 ? 0 : LATENCY_BOUNDS_MS[b - 1]!;
      // The overflow bucket has no upper bound: its lower one is the honest answer.
      if (b >= LATENCY_BOUNDS_MS.length) return lower;
      const upper = LATENCY_BOUNDS_MS[b]!;
      return lower + ((upper - lower) * (rank - seen)) / n;
    }
    seen += n;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
}

/** What the dashboard shows of one series. */
export interface SeriesSummary {
  /** Requests per second over the last `rateSec` complete seconds. */
  readonly rps: number;
  /** Requests and errors over the last minute (or the latency window). */
  readonly requestsLastMinute: number;
  readonly errorsLastMinute: number;
  /** errors / requests over the last minute; null without requests. */
  readonly errorShare: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Requests and errors per second, oldest first, ending at the last complete second. */
  readonly sparkRequests: number[];
  readonly sparkErrors: number[];
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Rates, error share and percentiles of one series (complete seconds only: the current one is filling). */
export function summarize(s: SeriesSnapshot | undefined, rateSec = 5, minuteSec = 60): SeriesSummary {
  // No traffic in the window: no sparkline either (the page draws an empty one).
  if (!s) return { rps: 0, requestsLastMinute: 0, errorsLastMinute: 0, errorShare: null, p50Ms: null, p99Ms: null, sparkRequests: [], sparkErrors: [] };
  const complete = s.requests.length - 1;
  const sum = (values: readonly number[], seconds: number) => {
    let n = 0;
    for (let i = Math.max(0, complete - seconds); i < complete; i++) n += values[i]!;
    return n;
  };
  const requestsLastMinute = sum(s.requests, minuteSec);
  const errorsLastMinute = sum(s.errors, minuteSec);
  const p50 = quantileMs(s.latency, 0.5);
  const p99 = quantileMs(s.latency, 0.99);
  return {
    rps: round(sum(s.requests, rateSec) / rateSec, 1),
    requestsLastMinute,
    errorsLastMinute,
    errorShare: requestsLastMinute === 0 ? null : round(errorsLastMinute / requestsLastMinute, 4),
    p50Ms: p50 === null ? null : round(p50, 3),
    p99Ms: p99 === null ? null : round(p99, 3),
    sparkRequests: s.requests.slice(0, complete),
    sparkErrors: s.errors.slice(0, complete),
  };
}
