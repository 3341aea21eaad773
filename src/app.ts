// Composition root: builds every part of the proxy from a ProxyConfig and wires them together.
// Only this file, control.ts, plane.ts, cluster/ and cli/ create real dependencies; every part takes its own
// as arguments.
import type { Logger } from 'pino';
import { AddressPolicy } from './address-policy.js';
import { followHealth } from './admin/events.js';
import type { MetricsText } from './admin/metrics.js';
import type { ProxyConfig } from './config/proxy.js';
import { createControl, describeListeners, httpAddress, type ProxyRuntime } from './control.js';
import type { OutlierDetector } from './health/outlier-detector.js';
import { createProxyPlane } from './plane.js';
import type { ServiceProvider } from './upstream/provider.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly random?: () => number;
}

export type { ProxyRuntime } from './control.js';

export interface App extends ProxyRuntime {
  readonly health: OutlierDetector;
  readonly provider: ServiceProvider;
  readonly metrics: MetricsText;
}

/** Builds the proxy; call start() to run it. */
export function createApp(config: ProxyConfig, deps: AppDeps): App {
  const logger = deps.logger;
  const addressPolicy = new AddressPolicy(config.allowUpstream);
  const control = createControl(config, { logger, healthView: () => plane.healthView(), addressPolicy, stats: () => plane.stats() });
  const { discovery, metrics } = control;
  const plane = createProxyPlane(config, { source: discovery, logger, registry: control.registry, addressPolicy, ...(deps.random ? { random: deps.random } : {}) });
  followHealth(control.events, plane.health);
  let closing: Promise<void> | undefined;

  return {
    discovery,
    health: plane.health,
    provider: plane.provider,
    metrics,
    readiness: control.readiness,
    async start() {
      await plane.listen();
      try {
        await control.listen();
      } catch (err) {
        await plane.close(0);
        throw err;
      }
      await control.connect();
      const adminAt = this.adminAddress();
      logger.info({ ...describeListeners(plane.addresses()), admin: `${adminAt.host}:${adminAt.port}`, config }, 'zkroute proxy started');
    },
    address: () => httpAddress(plane.addresses()),
    reopenAccessLog: () => plane.reopenAccessLog(),
    config: () => control.config(),
    reconfigure(next) {
      // The plane first: it is the part that can refuse (an access log file that cannot be opened).
      plane.reconfigure(next);
      control.reconfigure(next);
    },
    addresses: () => plane.addresses(),
    adminAddress: control.adminAddress,
    close(drainTimeoutMs = config.drainTimeoutMs) {
      closing ??= (async () => {
        control.drain();
        await plane.close(drainTimeoutMs);
        await control.close();
      })();
      return closing;
    },
  };
}
