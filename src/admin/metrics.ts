import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Discovery } from '../discovery/discovery.js';
import type { Instance, ProviderTable } from '../discovery/provider-table.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import type { RequestDone } from '../proxy/handler.js';

/** What the admin port needs to answer GET /metrics. */
export interface MetricsText {
  /** Text for GET /metrics. */
  render(): Promise<string>;
  readonly contentType: string;
}

export interface ProxyMetricsDeps {
  readonly table: ProviderTable;
  readonly health: OutlierDetector;
}

const SESSION_STATES = ['connecting', 'connected', 'disconnected', 'expired', 'auth_failed', 'closed', 'starting'] as const;

function statusClass(status: number): string {
  return status === 0 ? 'none' : `${Math.floor(status / 100)}xx`;
}

/**
 * The proxy's request and health metrics (prom-client) on `registry`. Per-request work is two
 * label lookups; what is read from the table and health is computed at scrape time. Returns
 * the handler's per-request hook.
 */
export function registerProxyMetrics(registry: Registry, deps: ProxyMetricsDeps): (done: RequestDone) => void {
  const { table, health } = deps;
  const requests = new Counter({ name: 'zkroute_requests_total', help: 'Requests answered, by service, status class and outcome ("" service: not routed, invalid or unknown names).', labelNames: ['service', 'code_class', 'outcome'], registers: [registry] });
  const duration = new Histogram({ name: 'zkroute_request_duration_seconds', help: 'Time from request to the end of forwarding (response headers and body sent), by service.', labelNames: ['service'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] });
  const tries = new Counter({ name: 'zkroute_upstream_tries_total', help: 'Tries sent to instances (first tries and retries).', labelNames: ['service'], registers: [registry] });
  const retries = new Counter({ name: 'zkroute_retries_total', help: 'Tries after the first, on another instance.', labelNames: ['service'], registers: [registry] });
  const ejections = new Counter({ name: 'zkroute_ejections_total', help: 'Instances ejected by passive health.', labelNames: ['service', 'reason'], registers: [registry] });
  const readmissions = new Counter({ name: 'zkroute_readmissions_total', help: 'Ejected instances re-admitted when their ejection expired.', labelNames: ['service'], registers: [registry] });
  const panics = new Counter({ name: 'zkroute_panic_total', help: 'Times every instance of a service was ejected and all were used anyway (panic mode).', labelNames: ['service'], registers: [registry] });
  health.on('ejected', (instance: Instance, reason: string) => ejections.inc({ service: instance.service, reason: reason.includes('5xx') ? 'consecutive_5xx' : reason }));
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
  const requestChildren = new Map<string, ReturnType<typeof requests.labels>>();
  const serviceChildren = new Map<string, { duration: ReturnType<typeof duration.labels>; tries: ReturnType<typeof tries.labels>; retries: ReturnType<typeof retries.labels> }>();
  return function onRequestDone(done) {
      // Labelled children are looked up once per label set: prom-client hashes labels per call.
      const key = `${done.service}\u0000${done.status}\u0000${done.outcome}`;
      let counter = requestChildren.get(key);
      if (!counter) requestChildren.set(key, (counter = requests.labels(done.service, statusClass(done.status), done.outcome)));
      counter.inc();
      if (done.service === '') return;
      let perService = serviceChildren.get(done.service);
      if (!perService) {
        perService = { duration: duration.labels(done.service), tries: tries.labels(done.service), retries: retries.labels(done.service) };
        serviceChildren.set(done.service, perService);
      }
      perService.duration.observe(done.durationMs / 1000);
      if (done.tries > 0) {
        perService.tries.inc(done.tries);
        if (done.tries > 1) perService.retries.inc(done.tries - 1);
      }
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
