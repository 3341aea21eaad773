// Composition root: builds every part of the proxy from a ProxyConfig and wires them together.
// Only this file (and cli/) creates real dependencies; every part takes its own as arguments.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createAdminServer, type Readiness } from './admin/admin-server.js';
import { createMetrics, type Metrics } from './admin/metrics.js';
import { createBalancer } from './balancer/index.js';
import type { ListenAddress, ProxyConfig } from './config.js';
import { createDiscovery, type Discovery } from './discovery/discovery.js';
import type { Instance, SetDelta } from './discovery/provider-table.js';
import { createOutlierDetector, type OutlierDetector } from './health/outlier-detector.js';
import type { Forwarder } from './proxy/forwarder.js';
import { createRequestHandler } from './proxy/handler.js';
import { Picker } from './proxy/picker.js';
import { createHttpServer } from './proxy/server.js';
import { createUndiciForwarder } from './proxy/undici-forwarder.js';
import { createWebSocketProxy, type WebSocketProxy } from './proxy/websocket.js';
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
  readonly metrics: Metrics;
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

function listen(server: Server, address: ListenAddress, flag: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${flag} ${address.host}:${address.port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`, { cause: err });
  });
}

function bound(server: Server, fallback: ListenAddress): { host: string; port: number } {
  const a = server.address() as AddressInfo | null;
  return { host: a?.address ?? fallback.host, port: a?.port ?? fallback.port };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
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
  const health = createOutlierDetector(
    {
      consecutive5xx: config.consecutive5xx,
      ejectionBaseMs: config.ejectionBaseMs,
      ejectionMaxMs: config.ejectionMaxMs,
      maxEjectionPercent: config.maxEjectionPercent,
    },
    { logger, ...(deps.random ? { random: deps.random } : {}) },
  );
  const metrics = createMetrics({ discovery, health });
  const forwarder: Forwarder = createUndiciForwarder({
    connectTimeoutMs: config.connectTimeoutMs,
    poolIdleTimeoutMs: config.poolIdleTimeoutMs,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
  });
  const picker = new Picker({ discovery, health, balancer: createBalancer(config.balancer, deps.random) });
  const handler = createRequestHandler(
    {
      prefix: config.prefix,
      preserveHost: config.preserveHost,
      retries: config.retries,
      retryBufferBytes: config.retryBufferBytes,
      tryTimeoutMs: config.tryTimeoutMs,
      deadlineMs: config.deadlineMs,
    },
    { picker, forwarder, logger, onRequestDone: metrics.onRequestDone },
  );
  const websocket: WebSocketProxy = createWebSocketProxy(
    {
      prefix: config.prefix,
      preserveHost: config.preserveHost,
      connectTimeoutMs: config.connectTimeoutMs,
      tryTimeoutMs: config.tryTimeoutMs,
      idleTimeoutMs: config.websocketIdleTimeoutMs,
    },
    { picker, logger },
  );

  let draining = false;
  let connectFailed: Error | undefined;
  let closed = false;
  const server: Server = createHttpServer(
    { headerTimeoutMs: config.headerTimeoutMs, clientIdleTimeoutMs: config.clientIdleTimeoutMs },
    {
      request: (req, res) => {
        // While draining, every answer closes its connection so callers move on.
        if (draining) res.setHeader('connection', 'close');
        handler(req, res);
      },
      upgrade: (req, socket, head) => websocket.handleUpgrade(req, socket, head),
      logger,
    },
  );

  const readiness = (): Readiness => {
    if (draining) return { ready: false, reason: 'draining', message: 'shutting down: finishing requests in flight' };
    if (discovery.loaded) return { ready: true };
    if (connectFailed) return { ready: false, reason: 'zookeeper_unreachable', message: connectFailed.message };
    return { ready: false, reason: 'starting', message: 'reading the service list from ZooKeeper' };
  };
  const admin = createAdminServer({ discovery, health, picker, metrics, readiness, logger });

  // Health state and pools follow the table: gone instances drop theirs. Work per change is
  // proportional to the service that changed, not to the whole table.
  const addressRefs = new Map<string, number>();
  discovery.on('change', (_service: string, _instances: readonly Instance[], delta: SetDelta) => {
    for (const i of delta.added) addressRefs.set(i.address, (addressRefs.get(i.address) ?? 0) + 1);
    if (delta.removed.length === 0) return;
    const goneAddresses: string[] = [];
    for (const i of delta.removed) {
      const refs = (addressRefs.get(i.address) ?? 1) - 1;
      if (refs > 0) addressRefs.set(i.address, refs);
      else {
        addressRefs.delete(i.address);
        goneAddresses.push(i.address);
      }
    }
    forwarder.release(goneAddresses);
    // A new version of the same znode keeps its uid (and its health record).
    const kept = new Set(delta.added.map((i) => i.uid));
    health.forget(delta.removed.map((i) => i.uid).filter((uid) => !kept.has(uid)));
  });

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
      await listen(server, config.listen, '--listen');
      try {
        await listen(admin, config.admin, '--admin');
      } catch (err) {
        await closeServer(server);
        throw err;
      }
      listening = true;
      server.on('error', (err) => logger.error({ err }, 'server error'));
      admin.on('error', (err) => logger.error({ err }, 'admin server error'));
      await new Promise<void>((resolve) => {
        connecting = connect(resolve);
      });
      const proxyAt = this.address();
      const adminAt = this.adminAddress();
      logger.info({ listen: `${proxyAt.host}:${proxyAt.port}`, admin: `${adminAt.host}:${adminAt.port}`, config }, 'zkroute proxy started');
    },
    address: () => bound(server, config.listen),
    adminAddress: () => bound(admin, config.admin),
    async close(drainTimeoutMs = config.drainTimeoutMs) {
      if (closed) return;
      draining = true;
      let finished: Promise<void> | undefined;
      if (listening) {
        finished = closeServer(server);
        // Idle keep-alive connections go now; busy ones as soon as their response is done.
        server.closeIdleConnections();
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), drainTimeoutMs).unref());
        const done = await Promise.race([finished.then(() => true), timeout]);
        clearInterval(sweep);
        if (!done) {
          logger.warn({ drainTimeoutMs }, 'drain timeout: closing connections still busy');
          server.closeAllConnections();
        }
      }
      // WebSocket tunnels hold the listener open: they go after the drain wait.
      websocket.close();
      await finished;
      closed = true;
      await forwarder.close();
      health.close();
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
