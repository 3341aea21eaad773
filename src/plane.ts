// The proxy side of zkroute: the callers' server, the request handler, WebSocket tunnels, the
// forwarder with its pools, passive health and the picker. It reads instances from a
// TableSource: Discovery itself in one process (app.ts), or a worker's copy of the primary's
// table in cluster mode (cluster/worker.ts).
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { HealthView } from './admin/admin-server.js';
import { registerProxyMetrics } from './admin/metrics.js';
import { createBalancer } from './balancer/index.js';
import type { ProxyConfig } from './config.js';
import { bound, closeServer, listen } from './listen.js';
import type { Instance, ProviderTable, SetDelta } from './discovery/provider-table.js';
import { createOutlierDetector, type OutlierDetector } from './health/outlier-detector.js';
import type { Forwarder } from './proxy/forwarder.js';
import { createRequestHandler } from './proxy/handler.js';
import { Picker, type InstanceSource } from './proxy/picker.js';
import { createHttpServer } from './proxy/server.js';
import { createUndiciForwarder } from './proxy/undici-forwarder.js';
import { createWebSocketProxy } from './proxy/websocket.js';

/** Where the plane reads instances: lookups, the table, and its change events with deltas. */
export interface TableSource extends InstanceSource {
  readonly table: ProviderTable;
  on(event: 'change', listener: (service: string, instances: readonly Instance[], delta: SetDelta) => void): this;
}

export interface PlaneDeps {
  readonly source: TableSource;
  readonly logger: Logger;
  /** Request and health metrics are registered here. */
  readonly registry: Registry;
  readonly random?: () => number;
}

export interface ProxyPlane {
  readonly health: OutlierDetector;
  readonly picker: Picker;
  /** Binds the callers' port (shared by every worker in cluster mode). */
  listen(): Promise<void>;
  address(): { host: string; port: number };
  /** Health and requests in flight per instance, now. */
  healthView(): HealthView;
  /**
   * Drains: every answer closes its connection, no new connections, requests in flight finish
   * (up to the timeout, then connections are cut), then tunnels, pools and health timers go.
   */
  close(drainTimeoutMs: number): Promise<void>;
}

/**
 * Pools and health records follow the table: an instance that left drops its health record,
 * and an address no service uses any more drops its pool. Work per change is proportional to
 * the change, not to the service or the table.
 */
function followTable(source: TableSource, forwarder: Forwarder, health: OutlierDetector): void {
  const addressRefs = new Map<string, number>();
  source.on('change', (_service, _instances, delta) => {
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
}

/** Builds the proxy side; call listen() to serve. */
export function createProxyPlane(config: ProxyConfig, deps: PlaneDeps): ProxyPlane {
  const { logger, source } = deps;
  const health = createOutlierDetector(
    {
      consecutive5xx: config.consecutive5xx,
      ejectionBaseMs: config.ejectionBaseMs,
      ejectionMaxMs: config.ejectionMaxMs,
      maxEjectionPercent: config.maxEjectionPercent,
    },
    { logger, ...(deps.random ? { random: deps.random } : {}) },
  );
  const onRequestDone = registerProxyMetrics(deps.registry, { table: source.table, health });
  const forwarder: Forwarder = createUndiciForwarder({
    connectTimeoutMs: config.connectTimeoutMs,
    poolIdleTimeoutMs: config.poolIdleTimeoutMs,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
  });
  followTable(source, forwarder, health);
  const picker = new Picker({ discovery: source, health, balancer: createBalancer(config.balancer, deps.random) });
  const handler = createRequestHandler(
    {
      prefix: config.prefix,
      preserveHost: config.preserveHost,
      retries: config.retries,
      retryBufferBytes: config.retryBufferBytes,
      tryTimeoutMs: config.tryTimeoutMs,
      deadlineMs: config.deadlineMs,
    },
    { picker, forwarder, logger, onRequestDone },
  );
  const websocket = createWebSocketProxy(
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
  let listening = false;
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

  return {
    health,
    picker,
    async listen() {
      await listen(server, config.listen, '--listen');
      listening = true;
      server.on('error', (err) => logger.error({ err }, 'server error'));
    },
    address: () => bound(server, config.listen),
    healthView: () => (instance) => ({ ...health.describe(instance), inFlight: picker.inFlight(instance) }),
    async close(drainTimeoutMs) {
      if (draining) return;
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
      await forwarder.close();
      health.close();
    },
  };
}
