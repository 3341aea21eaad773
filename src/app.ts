// Composition root: builds every part of the proxy from a ProxyConfig and wires them together.
// Only this file (and cli/) creates real dependencies; every part takes its own as arguments.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createBalancer } from './balancer/index.js';
import type { ProxyConfig } from './config.js';
import { createDiscovery, type Discovery } from './discovery/discovery.js';
import type { Instance } from './discovery/provider-table.js';
import { createOutlierDetector, type OutlierDetector } from './health/outlier-detector.js';
import type { Forwarder } from './proxy/forwarder.js';
import { createRequestHandler, type RequestDone } from './proxy/handler.js';
import { Picker } from './proxy/picker.js';
import { createHttpServer } from './proxy/server.js';
import { createUndiciForwarder } from './proxy/undici-forwarder.js';
import { createWebSocketProxy, type WebSocketProxy } from './proxy/websocket.js';
import type { ZkAuth } from './zookeeper/client.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly auth?: readonly ZkAuth[];
  readonly random?: () => number;
  /** Called once per routed request (metrics). */
  readonly onRequestDone?: (done: RequestDone) => void;
}

export interface App {
  readonly discovery: Discovery;
  readonly health: OutlierDetector;
  readonly picker: Picker;
  /** Connects to ZooKeeper (bounded), then listens. Rejects with a clear error on failure. */
  start(): Promise<void>;
  /** The address actually bound (port 0 resolved). */
  address(): { host: string; port: number };
  /** Stops listening, lets in-flight requests finish (up to `graceMs`), releases everything. */
  close(graceMs?: number): Promise<void>;
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
    { picker, forwarder, logger, ...(deps.onRequestDone ? { onRequestDone: deps.onRequestDone } : {}) },
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
  const server: Server = createHttpServer(
    { headerTimeoutMs: config.headerTimeoutMs, clientIdleTimeoutMs: config.clientIdleTimeoutMs },
    { request: handler, upgrade: (req, socket, head) => websocket.handleUpgrade(req, socket, head), logger },
  );

  // Health state and pools follow the table: gone instances drop theirs.
  discovery.on('change', () => {
    const live: Instance[] = [];
    for (const service of discovery.table.services()) live.push(...(discovery.table.get(service)?.instances ?? []));
    forwarder.retain(live);
    health.forget(new Set(live.map((i) => i.uid)));
  });

  let listening = false;
  return {
    discovery,
    health,
    picker,
    async start() {
      await discovery.start();
      if (!(await discovery.ready())) logger.warn({ basePath: config.basePath }, 'ZooKeeper connected but the service list is not read yet; serving as it arrives');
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`--listen ${config.listen.host}:${config.listen.port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`, { cause: err });
      });
      listening = true;
      server.on('error', (err) => logger.error({ err }, 'server error'));
      const { host, port } = this.address();
      logger.info({ listen: `${host}:${port}`, config }, 'zkroute proxy started');
    },
    address() {
      const a = server.address() as AddressInfo | null;
      return { host: a?.address ?? config.listen.host, port: a?.port ?? config.listen.port };
    },
    async close(graceMs = 5000) {
      if (listening) {
        listening = false;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        websocket.close();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        await closed;
        clearTimeout(timer);
      }
      websocket.close();
      await forwarder.close();
      health.close();
      await discovery.close();
    },
  };
}
