import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { Discovery } from '../discovery/discovery.js';
import type { Instance, ProviderTable } from '../discovery/provider-table.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import type { RequestDone } from '../http/handler.js';
import type { TcpServiceStats } from '../tcp/stats.js';
import type { ThriftServiceStats } from '../thrift/listener.js';

/** What the admin port needs to answer GET /metrics. */
export interface MetricsText {
  /** Text for GET /metrics. */
  render(): Promise<string>;
  readonly contentType: string;
}

export interface ProxyMetricsDeps {
  readonly table: ProviderTable;
  readonly health: OutlierDetector;
  /** Retries refused by each service's retry budget. */
  readonly retriesDenied: () => ReadonlyMap<string, number>;
  /** Picks per service in the local zone and elsewhere (zone preference on). */
  readonly zoneCounts: () => ReadonlyMap<string, { readonly local: number; readonly remote: number }>;
}

const SESSION_STATES = ['connecting', 'connected', 'disconnected', 'expired', 'auth_failed', 'closed', 'starting'] as const;

function statusClass(status: number): string {
  return status === 0 ? 'none' : `${Math.floor(status / 100)}xx`;
}

/** One labelled series of a SeriesHistogram: counts per bucket, sum, count. */
interface HistogramSeries {
  observe(value: number): void;
}

/**
 * A histogram with one `service` label whose series are plain arrays, exposed to prom-client's
 * registry as a metric (its get() is what Registry and AggregatorRegistry read). observe() is a
 * bucket scan and two additions: no label hashing per call.
 */
class SeriesHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, { labels: Readonly<Record<string, string>>; counts: Float64Array; sum: number; count: number }>();

  constructor(readonly name: string, readonly help: string, bounds: readonly number[]) {
    this.#bounds = bounds;
  }

  /** The series of `key`, labelled `labels` (by default {service: key}). */
  series(key: string, labels: Readonly<Record<string, string>> = { service: key }): HistogramSeries {
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, (s = { labels, counts: new Float64Array(this.#bounds.length), sum: 0, count: 0 }));
    const bounds = this.#bounds;
    const data = s;
    return {
      observe(value) {
        for (let i = 0; i < bounds.length; i++) {
          if (value <= bounds[i]!) {
            data.counts[i]! += 1;
            break;
          }
        }
        data.sum += value;
        data.count += 1;
      },
    };
  }

  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const s of this.#series.values()) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ labels: { ...s.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.#series.clear();
  }

  remove(key: string): void {
    this.#series.delete(key);
  }
}

/**
 * The proxy's request and health metrics (prom-client) on `registry`. Per-request work is a
 * map lookup and a few additions; everything reaches prom-client at scrape time. Returns the
 * handler's per-request hook.
 */
export function registerProxyMetrics(registry: Registry, deps: ProxyMetricsDeps): (done: RequestDone) => void {
  const { table, health } = deps;
  // The per-request figures are counted in plain objects and handed to prom-client at scrape
  // time: its inc()/observe() validate and hash the labels on every call.
  const requestCounts = new Map<string, { readonly labels: { service: string; code_class: string; outcome: string }; n: number }>();
  const perService = new Map<string, { readonly duration: HistogramSeries; tries: number; retries: number }>();
  new Counter({
    name: 'zkroute_requests_total', help: 'Requests answered, by service, status class and outcome ("" service: not routed, invalid or unknown names).', labelNames: ['service', 'code_class', 'outcome'], registers: [registry],
    collect() {
      this.reset();
      for (const { labels, n } of requestCounts.values()) this.inc(labels, n);
    },
  });
  const duration = new SeriesHistogram('zkroute_request_duration_seconds', 'Time from request to the end of forwarding (response headers and body sent), by service.', [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
  registry.registerMetric(duration as unknown as Metric);
  const perServiceCounter = (name: string, help: string, read: (s: { tries: number; retries: number }) => number) => new Counter({
    name, help, labelNames: ['service'], registers: [registry],
    collect() {
      this.reset();
      for (const [service, s] of perService) this.inc({ service }, read(s));
    },
  });
  perServiceCounter('zkroute_upstream_tries_total', 'Tries sent to instances (first tries and retries).', (s) => s.tries);
  perServiceCounter('zkroute_retries_total', 'Tries after the first, on another instance.', (s) => s.retries);
  new Counter({
    name: 'zkroute_retries_denied_total', help: 'Retries not made because the service\'s retry budget (--retry-budget) was spent; the last try\'s answer stood.', labelNames: ['service'], registers: [registry],
    collect() {
      this.reset();
      for (const [service, n] of deps.retriesDenied()) this.inc({ service }, n);
    },
  });
  new Counter({
    name: 'zkroute_zone_requests_total', help: 'Tries by zone with --zone: local (this proxy\'s zone) or remote (spilled, or none in the zone).', labelNames: ['service', 'zone'], registers: [registry],
    collect() {
      this.reset();
      for (const [service, n] of deps.zoneCounts()) {
        this.inc({ service, zone: 'local' }, n.local);
        this.inc({ service, zone: 'remote' }, n.remote);
      }
    },
  });
  const ejections = new Counter({ name: 'zkroute_ejections_total', help: 'Instances ejected by passive health.', labelNames: ['service', 'reason'], registers: [registry] });
  const readmissions = new Counter({ name: 'zkroute_readmissions_total', help: 'Ejected instances re-admitted when their ejection expired.', labelNames: ['service'], registers: [registry] });
  const panics = new Counter({ name: 'zkroute_panic_total', help: 'Times every instance of a service was ejected and all were used anyway (panic mode).', labelNames: ['service'], registers: [registry] });
  const ejectionReasons = new Map<string, Set<string>>();
  health.on('ejected', (instance: Instance, reason: string) => {
    const label = reason.includes('5xx') ? 'consecutive_5xx' : reason;
    ejections.inc({ service: instance.service, reason: label });
    let reasons = ejectionReasons.get(instance.service);
    if (!reasons) ejectionReasons.set(instance.service, (reasons = new Set()));
    reasons.add(label);
  });
  // A service that left ZooKeeper takes its series with it: names come and go, memory must not grow.
  table.on('removed', (service: string) => {
    for (const [key, counted] of requestCounts) if (counted.labels.service === service) requestCounts.delete(key);
    perService.delete(service);
    duration.remove(service);
    for (const reason of ejectionReasons.get(service) ?? []) ejections.remove({ service, reason });
    ejectionReasons.delete(service);
    readmissions.remove({ service });
    panics.remove({ service });
  });
  health.on('readmitted', (instance: Instance) => readmissions.inc({ service: instance.service }));
  health.on('panic', (service: string) => panics.inc({ service }));

  new Gauge({
    name: 'zkroute_instances', help: 'Instances per service in the table, and how many are healthy.', labelNames: ['service', 'state'], registers: [registry],
    // Across cluster workers: the lowest count (an instance ejected by any worker is not healthy).
    aggregator: 'min',
    collect() {
      this.reset();
      for (const service of table.services()) {
        const instances = table.get(service)?.instances ?? [];
        let healthy = 0;
        for (const i of instances) if (!health.isEjected(i)) healthy += 1;
        this.set({ service, state: 'total' }, instances.length);
        this.set({ service, state: 'healthy' }, healthy);
      }
    },
  });
  return function onRequestDone(done) {
    const key = `${done.service}\u0000${done.status}\u0000${done.outcome}`;
    const counted = requestCounts.get(key);
    if (counted) counted.n += 1;
    else requestCounts.set(key, { labels: { service: done.service, code_class: statusClass(done.status), outcome: done.outcome }, n: 1 });
    if (done.service === '') return;
    let s = perService.get(done.service);
    if (!s) perService.set(done.service, (s = { duration: duration.series(done.service), tries: 0, retries: 0 }));
    s.duration.observe(done.durationMs / 1000);
    if (done.tries > 0) {
      s.tries += done.tries;
      s.retries += done.tries - 1;
    }
  };
}

/** Caller connections closed on arrival over --max-client-connections; returns the hook that counts one. */
export function registerClientConnectionMetrics(registry: Registry): () => void {
  const dropped = new Counter({ name: 'zkroute_client_connections_dropped_total', help: 'Caller connections closed as they arrived because --max-client-connections were open.', registers: [registry] });
  return () => dropped.inc();
}

/**
 * The TCP listeners' metrics, read from their plain counters at scrape time; returns the hook
 * that times each connect.
 */
export function registerTcpMetrics(registry: Registry, stats: () => ReadonlyMap<string, TcpServiceStats>): (service: string, connectMs: number) => void {
  new Counter({
    name: 'zkroute_tcp_connections_total', help: 'Caller TCP connections by service and outcome (ok: an instance was connected).', labelNames: ['service', 'outcome'], registers: [registry],
    collect() {
      this.reset();
      for (const [service, s] of stats()) for (const [outcome, n] of Object.entries(s.connections)) this.inc({ service, outcome }, n);
    },
  });
  new Gauge({
    name: 'zkroute_tcp_active_connections', help: 'TCP connections open to an instance now, by service.', labelNames: ['service'], registers: [registry],
    aggregator: 'sum',
    collect() {
      this.reset();
      for (const [service, s] of stats()) this.set({ service }, s.active);
    },
  });
  new Counter({
    name: 'zkroute_tcp_bytes_total', help: 'Bytes proxied over TCP, by service and direction (in: caller to instance).', labelNames: ['service', 'direction'], registers: [registry],
    collect() {
      this.reset();
      for (const [service, s] of stats()) {
        this.inc({ service, direction: 'in' }, s.bytesIn);
        this.inc({ service, direction: 'out' }, s.bytesOut);
      }
    },
  });
  const connect = new SeriesHistogram('zkroute_tcp_connect_seconds', 'Time to connect to an instance (the successful try), by service.', [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
  registry.registerMetric(connect as unknown as Metric);
  const series = new Map<string, HistogramSeries>();
  return (service, connectMs) => {
    let s = series.get(service);
    if (!s) series.set(service, (s = connect.series(service)));
    s.observe(connectMs / 1000);
  };
}

/** The Thrift listeners' metrics; returns the hook that times each call. */
export function registerThriftMetrics(registry: Registry, stats: () => ReadonlyMap<string, ThriftServiceStats>, upstreamConnections: () => number): (service: string, method: string, outcome: string, durationMs: number) => void {
  new Gauge({
    name: 'zkroute_thrift_upstream_connections', help: 'Connections open to instances for Thrift calls (idle or carrying a call).', registers: [registry],
    aggregator: 'sum',
    collect() {
      this.set(upstreamConnections());
    },
  });
  new Counter({
    name: 'zkroute_thrift_calls_total', help: 'Thrift calls by service, method (at most 200 names per service, then "other") and outcome.', labelNames: ['service', 'method', 'outcome'], registers: [registry],
    collect() {
      this.reset();
      for (const [service, s] of stats()) for (const [method, byOutcome] of s.calls) for (const [outcome, n] of byOutcome) this.inc({ service, method, outcome }, n);
    },
  });
  new Counter({
    name: 'zkroute_thrift_rejected_total', help: 'Thrift caller connections closed for their bytes, by service and reason.', labelNames: ['service', 'reason'], registers: [registry],
    collect() {
      this.reset();
      for (const [service, s] of stats()) for (const [reason, n] of s.rejected) this.inc({ service, reason }, n);
    },
  });
  const duration = new SeriesHistogram('zkroute_thrift_call_duration_seconds', 'Time from a call arriving to its reply written, by service and method.', [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
  registry.registerMetric(duration as unknown as Metric);
  const series = new Map<string, HistogramSeries>();
  return (service, method, _outcome, durationMs) => {
    const key = `${service}\u0000${method}`;
    let s = series.get(key);
    if (!s) series.set(key, (s = duration.series(key, { service, method })));
    s.observe(durationMs / 1000);
  };
}

/** ZooKeeper session and table metrics, read from Discovery at scrape time. */
export function registerDiscoveryMetrics(registry: Registry, discovery: Discovery): void {
  new Gauge({
    name: 'zkroute_zookeeper_session_state', help: 'The ZooKeeper session state (1 for the current one).', labelNames: ['state'], registers: [registry],
    collect() {
      const now = discovery.session.stats().state;
      for (const state of SESSION_STATES) this.set({ state }, state === now ? 1 : 0);
    },
  });
  const fromStats = (name: string, help: string, read: () => number) => new Counter({
    name, help, registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
  fromStats('zkroute_zookeeper_reconnects_total', 'Reconnections of the ZooKeeper session (same session).', () => discovery.session.stats().reconnects);
  fromStats('zkroute_zookeeper_expiries_total', 'ZooKeeper sessions lost to expiry (a new one is opened).', () => discovery.session.stats().expiries);
  fromStats('zkroute_empty_sets_ignored_total', 'Reads that listed no instance for a service that had some, not applied (--keep-last-on-empty).', () => discovery.stats().emptySetsIgnored);
  new Counter({
    name: 'zkroute_znodes_malformed_total', help: 'Instance znodes skipped because their data is unusable, by reason.', labelNames: ['reason'], registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(discovery.stats().malformedByReason)) this.inc({ reason }, n);
    },
  });
  new Gauge({
    name: 'zkroute_table_stale_seconds', help: 'Seconds since ZooKeeper last confirmed the table (0 while connected).', registers: [registry],
    collect() {
      this.set(discovery.stats().staleSeconds);
    },
  });

}

/** A registry with the process's default metrics. */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** `zkroute_table_source{source}`: 1 for where the table comes from now (zookeeper, or state-file until ZooKeeper is read). */
export function registerTableSourceMetric(registry: Registry, source: () => 'zookeeper' | 'state-file'): void {
  new Gauge({
    name: 'zkroute_table_source', help: 'Where the provider table comes from: ZooKeeper, or the --state-file until ZooKeeper is read (1 for the current one).', labelNames: ['source'], registers: [registry],
    collect() {
      const now = source();
      for (const s of ['zookeeper', 'state-file'] as const) this.set({ source: s }, s === now ? 1 : 0);
    },
  });
}
