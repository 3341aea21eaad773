// The data plane: the shared upstream core (health, the provider) and every protocol's listener
// over one instance source, with their metrics. Discovery itself is the source in one process
// (app.ts); in cluster mode each worker's copy of the primary's table is (cluster/worker.ts).
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AddressPolicy } from './address-policy.js';
import { createAccessLog } from './admin/access-log.js';
import type { RequestDone } from './http/handler.js';
import { RequestStats, type StatsSnapshot } from './admin/stats.js';
import { registerClientConnectionMetrics, registerProxyMetrics, registerTcpMetrics, registerThriftMetrics } from './admin/metrics.js';
import type { ProxyConfig } from './config/proxy.js';
import type { InstanceSource } from './discovery/source.js';
import type { OutlierDetector } from './health/outlier-detector.js';
import type { HealthView } from './health/view.js';
import { createHttpListener, type HttpListener } from './http/listener.js';
import type { BoundRoute } from './listen.js';
import { createTcpListeners } from './tcp/listener.js';
import { createThriftListeners, type ThriftCallOutcome } from './thrift/listener.js';
import { createUpstreamCore } from './upstream/core.js';
import type { ServiceProvider } from './upstream/provider.js';

export interface PlaneDeps {
  readonly source: InstanceSource;
  readonly logger: Logger;
  /** Request and health metrics are registered here. */
  readonly registry: Registry;
  readonly random?: () => number;
  /** Host names checked at connect; every bound listener is added to it as an own address. */
  readonly addressPolicy?: AddressPolicy;
}

/** Where the plane listens: HTTP (unless `--listen none`) and every TCP route. */
export interface PlaneAddresses {
  readonly http: { readonly host: string; readonly port: number } | undefined;
  readonly tcp: readonly BoundRoute[];
  readonly thrift: readonly BoundRoute[];
}

export interface ProxyPlane {
  readonly health: OutlierDetector;
  readonly provider: ServiceProvider;
  /** Binds the callers' ports (shared by every worker in cluster mode). */
  listen(): Promise<void>;
  addresses(): PlaneAddresses;
  /** Health, tries in flight and open TCP connections per instance, now. */
  healthView(): HealthView;
  /** Drains every listener at once (see HttpListener.close, TcpListeners.close), then stops health's timers. */
  close(drainTimeoutMs: number): Promise<void>;
  /** Reopens the access log file (SIGUSR1, after logrotate moved it). */
  reopenAccessLog(): void;
  /** The dashboard's per-second figures of this process. */
  stats(): StatsSnapshot;
  /**
   * Applies a reloaded configuration's traffic settings and access log to the next requests
   * (the other options are the runtime's: see config/reload.ts). Throws, changing nothing, when
   * a new access log file cannot be opened.
   */
  reconfigure(config: ProxyConfig): void;
}

/** A request the dashboard counts as failed: a 5xx, or no response at all. */
const failed = (done: RequestDone) => done.status === 0 || done.status >= 500;

/** Builds the data plane; call listen() to serve. */
export function createProxyPlane(config: ProxyConfig, deps: PlaneDeps): ProxyPlane {
  const { logger, source } = deps;
  const core = createUpstreamCore(config, { source, logger, ...(deps.random ? { random: deps.random } : {}), ...(deps.addressPolicy ? { addressPolicy: deps.addressPolicy } : {}) });
  const countRequest = registerProxyMetrics(deps.registry, { table: source.table, health: core.health, retriesDenied: () => core.provider.retriesDenied(), zoneCounts: () => core.provider.zoneCounts() });
  const stats = new RequestStats();
  source.table.on('removed', (service: string) => stats.forget(service));
  // Requests not routed to a service ('' in the metrics) are not the dashboard's.
  const countStats = (done: RequestDone) => {
    if (done.service !== '') stats.record(done.service, done.instance, failed(done), done.durationMs);
  };
  // Opened now: a file that cannot be opened stops the start with its error.
  const openAccessLog = (c: ProxyConfig) => (c.accessLog === 'off' ? undefined : createAccessLog({ target: c.accessLog, includeQuery: c.accessLogQuery }, { logger }));
  let accessLog = openAccessLog(config);
  let accessLogOptions = { target: config.accessLog, includeQuery: config.accessLogQuery };
  const onRequestDone = (done: RequestDone) => {
    countRequest(done);
    countStats(done);
    accessLog?.record(done);
  };
  const listen = config.listen;
  const http: HttpListener | undefined = listen ? createHttpListener({ ...config, listen, countBytes: () => accessLog !== undefined }, { provider: core.provider, logger, onRequestDone, onDrop: registerClientConnectionMetrics(deps.registry) }) : undefined;
  if (http) core.onAddressesGone((addresses) => http.release(addresses));
  // The TCP metrics read the listeners' counters at scrape time (only when there are routes).
  const onConnected = config.tcp.length > 0 ? registerTcpMetrics(deps.registry, () => tcp.stats()) : undefined;
  const tcp = createTcpListeners(
    { routes: config.tcp, idleTimeoutMs: config.tcpIdleTimeoutMs, maxConnectionsPerInstance: config.maxConnectionsPerInstance },
    { provider: core.provider, logger, ...(onConnected ? { onConnected } : {}) },
  );
  const timeCall = config.thrift.length > 0 ? registerThriftMetrics(deps.registry, () => thrift.stats(), () => thrift.upstreamConnections()) : undefined;
  const onCall = timeCall
    ? (service: string, method: string, outcome: ThriftCallOutcome, durationMs: number) => {
      timeCall(service, method, outcome, durationMs);
      stats.record(service, undefined, outcome !== 'ok' && outcome !== 'oneway', durationMs);
    }
    : undefined;
  const thrift = createThriftListeners(
    {
      routes: config.thrift, maxMessageBytes: config.thriftMaxMessageBytes, idempotent: config.thriftIdempotent,
      maxConnectionsPerInstance: config.maxConnectionsPerInstance,
    },
    { provider: core.provider, logger, ...(onCall ? { onCall } : {}) },
  );
  core.onAddressesGone((addresses) => thrift.release(addresses));
  let closing: Promise<void> | undefined;

  return {
    health: core.health,
    provider: core.provider,
    async listen() {
      await http?.listen();
      await tcp.listen();
      await thrift.listen();
      const bound = [http?.address(), ...tcp.addresses(), ...thrift.addresses()];
      for (const at of bound) if (at) deps.addressPolicy?.addOwn(at.host, at.port);
    },
    addresses: () => ({ http: http?.address(), tcp: tcp.addresses(), thrift: thrift.addresses() }),
    healthView: () => {
      const view = core.provider.healthView();
      return (instance) => ({ ...view(instance), tcpConnections: tcp.openConnections(instance), thriftConnections: thrift.openConnections(instance) });
    },
    reopenAccessLog: () => accessLog?.reopen(),
    stats: () => stats.snapshot(),
    reconfigure(next) {
      if (next.accessLog !== accessLogOptions.target || next.accessLogQuery !== accessLogOptions.includeQuery) {
        const replacement = openAccessLog(next);
        const previous = accessLog;
        accessLog = replacement;
        accessLogOptions = { target: next.accessLog, includeQuery: next.accessLogQuery };
        void previous?.close();
      }
      core.settings.replace(next, next.serviceSettings);
    },
    close(drainTimeoutMs) {
      closing ??= (async () => {
        await Promise.all([http?.close(drainTimeoutMs), tcp.close(drainTimeoutMs), thrift.close(drainTimeoutMs)]);
        core.close();
        await accessLog?.close();
      })();
      return closing;
    },
  };
}
