// The data plane: the shared upstream core (health, the provider) and every protocol's listener
// over one instance source, with their metrics. Discovery itself is the source in one process
// (app.ts); in cluster mode each worker's copy of the primary's table is (cluster/worker.ts).
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { registerProxyMetrics } from './admin/metrics.js';
import type { ProxyConfig } from './config/proxy.js';
import type { InstanceSource } from './discovery/source.js';
import type { OutlierDetector } from './health/outlier-detector.js';
import type { HealthView } from './health/view.js';
import { createHttpListener } from './http/listener.js';
import { createUpstreamCore } from './upstream/core.js';
import type { ServiceProvider } from './upstream/provider.js';

export interface PlaneDeps {
  readonly source: InstanceSource;
  readonly logger: Logger;
  /** Request and health metrics are registered here. */
  readonly registry: Registry;
  readonly random?: () => number;
}

export interface ProxyPlane {
  readonly health: OutlierDetector;
  readonly provider: ServiceProvider;
  /** Binds the callers' port (shared by every worker in cluster mode). */
  listen(): Promise<void>;
  address(): { host: string; port: number };
  /** Health and tries in flight per instance, now. */
  healthView(): HealthView;
  /** Drains every listener (see HttpListener.close), then stops health's timers. */
  close(drainTimeoutMs: number): Promise<void>;
}

/** Builds the data plane; call listen() to serve. */
export function createProxyPlane(config: ProxyConfig, deps: PlaneDeps): ProxyPlane {
  const { logger, source } = deps;
  const core = createUpstreamCore(config, { source, logger, ...(deps.random ? { random: deps.random } : {}) });
  const onRequestDone = registerProxyMetrics(deps.registry, { table: source.table, health: core.health });
  const http = createHttpListener(config, { provider: core.provider, logger, onRequestDone });
  core.onAddressesGone((addresses) => http.release(addresses));

  return {
    health: core.health,
    provider: core.provider,
    listen: () => http.listen(),
    address: () => http.address(),
    healthView: () => core.provider.healthView(),
    async close(drainTimeoutMs) {
      await http.close(drainTimeoutMs);
      core.close();
    },
  };
}
