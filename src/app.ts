// Composition root: builds every part of the proxy from a ProxyConfig and wires them together.
// Only this file, plane.ts, cluster/ and cli/ create real dependencies; every part takes its own
// as arguments.
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { createAdminServer, type Readiness } from './admin/admin-server.js';
import { createRegistry, registerDiscoveryMetrics, type MetricsText } from './admin/metrics.js';
import type { ProxyConfig } from './config.js';
import { createDiscovery, type Discovery } from './discovery/discovery.js';
import { keepConnecting, type ConnectState } from './discovery/keep-connecting.js';
import type { OutlierDetector } from './health/outlier-detector.js';
import type { Picker } from './proxy/picker.js';
import { bound, closeServer, createProxyPlane, listen } from './plane.js';
import type { ZkAuth } from './zookeeper/client.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly auth?: readonly ZkAuth[];
  readonly random?: () => number;
}

/** A running proxy: one process (App) or a cluster's primary. */
export interface ProxyRuntime {
  readonly discovery: Discovery;
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

export interface App extends ProxyRuntime {
  readonly health: OutlierDetector;
  readonly picker: Picker;
  readonly metrics: MetricsText;
}

/** The proxy's Discovery, from its configuration (one process, or a cluster's primary). */
export function proxyDiscovery(config: ProxyConfig, deps: { readonly logger: Logger; readonly auth?: readonly ZkAuth[] | undefined }): Discovery {
  return createDiscovery(
    {
      zookeeper: config.zookeeper,
      basePath: config.basePath,
      layout: config.layout,
      keepLastOnEmpty: config.keepLastOnEmpty,
      sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
      connectTimeoutMs: config.zookeeperConnectTimeoutMs,
      ...(deps.auth ? { auth: deps.auth } : {}),
    },
    { logger: deps.logger },
  );
}

/** Builds the proxy; call start() to run it. */
export function createApp(config: ProxyConfig, deps: AppDeps): App {
  const logger = deps.logger;
  const discovery = proxyDiscovery(config, deps);
  const registry = createRegistry();
  registerDiscoveryMetrics(registry, discovery);
  const plane = createProxyPlane(config, { source: discovery, logger, registry, ...(deps.random ? { random: deps.random } : {}) });
  const { health, picker } = plane;
  let draining = false;
  let closed = false;

  const readiness = (): Readiness => {
    if (draining) return { ready: false, reason: 'draining', message: 'shutting down: finishing requests in flight' };
    if (discovery.loaded) return { ready: true };
    if (connecting?.failed) return { ready: false, reason: 'zookeeper_unreachable', message: connecting.failed.message };
    return { ready: false, reason: 'starting', message: 'reading the service list from ZooKeeper' };
  };
  const metrics: MetricsText = { contentType: registry.contentType, render: () => registry.metrics() };
  const admin: Server = createAdminServer({ discovery, healthView: plane.healthView, metrics, readiness, logger });

  let connecting: ConnectState | undefined;
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
        connecting = keepConnecting(discovery, { logger, zookeeper: config.zookeeper, isClosed: () => closed }, resolve);
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
      await connecting?.done;
    },
  };
}
