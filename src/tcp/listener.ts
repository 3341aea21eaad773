// The TCP protocol's listeners (`--tcp LISTEN=SERVICE`): one net.Server per route, each caller's
// connection proxied to an instance of its service over the shared provider (connection.ts).
import { createServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Instance } from '../discovery/provider-table.js';
import { routeServers, type BoundRoute, type ServiceRoute } from '../listen.js';
import type { ServiceProvider } from '../upstream/provider.js';
import { proxyConnection, type TcpConnectionOptions } from './connection.js';
import { emptyTcpStats, type TcpConnectionOutcome, type TcpServiceStats } from './stats.js';

export interface TcpListenerOptions extends TcpConnectionOptions {
  readonly routes: readonly ServiceRoute[];
  /** A connected pair with no byte either way for this long is closed. */
  readonly idleTimeoutMs: number;
}

/** A connected pair, as the idle sweep sees it. */
interface Tracked {
  bytes: number;
  seen: number;
  silentSince: number;
  readonly down: Socket;
  readonly up: Socket;
  done(): void;
}

export interface TcpListenerDeps {
  readonly provider: ServiceProvider;
  readonly logger: Logger;
  /** Time from starting a connect to the instance accepting it (metrics hook). */
  readonly onConnected?: (service: string, connectMs: number) => void;
}

export interface TcpListeners {
  /** Binds every route's address (shared by the workers in cluster mode). */
  listen(): Promise<void>;
  addresses(): BoundRoute[];
  /** Counters per service, read at scrape time. */
  stats(): ReadonlyMap<string, TcpServiceStats>;
  /** Connections open to an instance now. */
  openConnections(instance: Instance): number;
  /** Stops accepting; open connections get up to `drainTimeoutMs`, then are closed. */
  close(drainTimeoutMs: number): Promise<void>;
}

export function createTcpListeners(options: TcpListenerOptions, deps: TcpListenerDeps): TcpListeners {
  const logger = deps.logger.child({ component: 'tcp' });
  const stats = new Map<string, TcpServiceStats>();
  const open = new Map<string, number>();
  const sockets = new Set<Socket>();
  const lastWarnAt = new Map<string, number>();
  const onRefused = (service: string, outcome: TcpConnectionOutcome, detail: string) => {
    logger.debug({ service, outcome, detail }, 'tcp connection closed without an instance');
    const now = Date.now();
    // Warned at most once a second per service: a caller retrying in a loop is one line a second.
    if (outcome !== 'client_closed_early' && now - (lastWarnAt.get(service) ?? 0) >= 1000) {
      lastWarnAt.set(service, now);
      logger.warn({ service, outcome, detail }, 'tcp connection closed: no instance');
    }
  };
  // Idle connections are found by a sweep over per-connection byte counters, not by a socket
  // timeout: those re-arm a timer on every read and write.
  const tracked = new Set<Tracked>();
  const sweepMs = Math.min(60_000, Math.max(100, Math.floor(options.idleTimeoutMs / 10)));
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = () => {
    const now = Date.now();
    for (const t of tracked) {
      if (t.bytes !== t.seen) {
        t.seen = t.bytes;
        t.silentSince = now;
      } else if (now - t.silentSince >= options.idleTimeoutMs) {
        t.down.destroy();
        t.up.destroy();
      }
    }
    if (tracked.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  const track = (down: Socket, up: Socket) => {
    const t: Tracked = { bytes: 0, seen: 0, silentSince: Date.now(), down, up, done: () => tracked.delete(t) };
    tracked.add(t);
    if (!sweeper) {
      sweeper = setInterval(sweep, sweepMs);
      sweeper.unref();
    }
    return t;
  };
  const servers = routeServers('tcp', options.routes, (route) => {
    let serviceStats = stats.get(route.service);
    if (!serviceStats) stats.set(route.service, (serviceStats = emptyTcpStats()));
    const ctx = { options, provider: deps.provider, logger, stats: serviceStats, open, onRefused, track, ...(deps.onConnected ? { onConnected: deps.onConnected } : {}) };
    return createServer({ allowHalfOpen: true }, (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      proxyConnection(socket, route.service, ctx).catch((err: unknown) => {
        logger.error({ err, service: route.service }, 'tcp connection failed');
        socket.destroy();
      });
    });
  }, (err, listener) => logger.error({ err, listener }, 'tcp server error'));

  return {
    listen: () => servers.listen(),
    addresses: () => servers.addresses(),
    stats: () => stats,
    openConnections: (instance) => open.get(instance.uid) ?? 0,
    async close(drainTimeoutMs) {
      const closing = servers.close();
      const allClosed = closing.then(() => true);
      const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), drainTimeoutMs).unref());
      if (!(await Promise.race([allClosed, timeout])) && sockets.size > 0) {
        logger.warn({ drainTimeoutMs, open: sockets.size }, 'drain timeout: closing tcp connections still open');
      }
      for (const socket of sockets) socket.destroy();
      await closing;
      if (sweeper) clearInterval(sweeper);
    },
  };
}
