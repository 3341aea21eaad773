// Composition root: builds every part of the proxy from a ProxyConfig and wires them together.
// Only this file, plane.ts, cluster/ and cli/ create real dependencies; every part takes its own
// as arguments.
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { createAdminServer, type Readiness } from './admin/admin-server.js';
import { createRegistry, registerDiscoveryMetrics, type MetricsText } from './admin/metrics.js';
import type { ProxyConfig } from './config.js';
import { createDiscovery, type Discovery } from './discovery/discovery.js';
import type { OutlierDetector } from './health/outlier-detector.js';
import type { Picker } from './proxy/picker.js';
import { bound, closeServer, createProxyPlane, listen } from './plane.js';
import type { ZkAuth } from './zookeeper/client.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly auth?: readonly ZkAuth[];
  readonly random?: () => number;
}

export interface App {
  readonly discovery: Discovery;
  readonly health: OutlierDetector;
  readonly picker: Picker;
  readonly metrics: MetricsText;
  /**
   * Listens (proxy and admin), then connects to ZooKeeper. Resolves once the first connection
   * attempt ended: if ZooKeeper was unreachable, readiness says so and connecting goes on.
   * Rejects only when a port cannot be bound.
   */
  start(): Promise<void>;
  readiness(): Readiness;
  /** The proxy address actually bound (port 0 resolved). */
  address(): { host: string; port: number };
  adminAddress(): { host: string; port: number };
  /**
   * Drains and stops: readiness 503, no new connections, in-flight requests finish (up to the
   * drain timeout), idle keep-alives closed, then the ZooKeeper session closes last.
   */
  close(drainTimeoutMs?: number): Promise<void>;
}

/** Builds the proxy; call start() to run it. */
export function createApp(config: ProxyConfig, deps: AppDeps): App {
  const logger = deps.logger;
  const discovery = createDiscovery(
    {
      zookeeper: config.zookeeper,
      basePath: config.basePath,
      layout: config.layout,
      keepLastOnEmpty: config.keepLastOnEmpty,
      sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
      connectTimeoutMs: config.zookeeperConnectTimeoutMs,
      ...(deps.auth ? { auth: deps.auth } : {}),
    },
    { logger },
  );
  const registry = createRegistry();
  registerDiscoveryMetrics(registry, discovery);
  const plane = createProxyPlane(config, { source: discovery, logger, registry, ...(deps.random ? { random: deps.random } : {}) });
  const { health, picker } = plane;
  let draining = false;
  let connectFailed: Error | undefined;
  let closed = false;

  const readiness = (): Readiness => {
    if (draining) return { ready: false, reason: 'draining', message: 'shutting down: finishing requests in flight' };
    if (discovery.loaded) return { ready: true };
    if (connectFailed) return { ready: false, reason: 'zookeeper_unreachable', message: connectFailed.message };
    return { ready: false, reason: 'starting', message: 'reading the service list from ZooKeeper' };
  };
  const metrics: MetricsText = { contentType: registry.contentType, render: () => registry.metrics() };
  const admin: Server = createAdminServer({ discovery, healthView: plane.healthView, metrics, readiness, logger });

  /** Connects to ZooKeeper, retrying with backoff while it is unreachable (until closed). */
  async function connect(onFirstAttempt: () => void): Promise<void> {
    let delayMs = 500;
    for (;;) {
      try {
        await discovery.start();
        if (connectFailed) logger.info({ zookeeper: config.zookeeper }, 'connected to ZooKeeper');
        connectFailed = undefined;
        if (!(await discovery.ready())) logger.warn({ basePath: config.basePath }, 'ZooKeeper connected but the service list is not read yet; serving as it arrives');
        onFirstAttempt();
        return;
      } catch (err) {
        if (closed) return;
        if (!connectFailed) logger.error({ err, zookeeper: config.zookeeper }, 'ZooKeeper unreachable at start; retrying (readiness: zookeeper_unreachable)');
        connectFailed = err as Error;
        onFirstAttempt();
        await new Promise((r) => setTimeout(r, delayMs));
        if (closed) return;
        delayMs = Math.min(delayMs * 2, 5000);
      }
    }
  }

  let connecting: Promise<void> | undefined;
  let listening = false;
  return {
    discovery,
    health,
    picker,
    metrics,
    readiness,
    async start() {
      await plane.listen();
      try {
        await listen(admin, config.admin, '--admin');
      } catch (err) {
        await plane.close(0);
        throw err;
      }
      listening = true;
      admin.on('error', (err) => logger.error({ err }, 'admin server error'));
      await new Promise<void>((resolve) => {
        connecting = connect(resolve);
      });
      const proxyAt = this.address();
      const adminAt = this.adminAddress();
      logger.info({ listen: `${proxyAt.host}:${proxyAt.port}`, admin: `${adminAt.host}:${adminAt.port}`, config }, 'zkroute proxy started');
    },
    address: plane.address,
    adminAddress: () => bound(admin, config.admin),
    async close(drainTimeoutMs = config.drainTimeoutMs) {
      if (closed) return;
      draining = true;
      await plane.close(drainTimeoutMs);
      closed = true;
      if (listening) {
        admin.closeAllConnections();
        await closeServer(admin);
        listening = false;
      }
      // ZooKeeper last: the session (and its watches) outlive the traffic.
      await discovery.close();
      await connecting;
    },
  };
}
