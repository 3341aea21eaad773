// The ZooKeeper and operator side every proxy runtime has, one process (app.ts) or a cluster's
// primary (cluster/primary.ts): Discovery built from the config, its metrics, the admin port,
// readiness, connecting with retries, and closing after the traffic.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { ConfigError } from './config/options.js';
import type { AddressPolicy } from './address-policy.js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createAdminServer, type Readiness } from './admin/admin-server.js';
import { loadDashboard } from './admin/dashboard.js';
import { EventLog } from './admin/events.js';
import type { StatsSnapshot } from './admin/stats.js';
import { createRegistry, registerDiscoveryMetrics, registerTableSourceMetric, type MetricsText } from './admin/metrics.js';
import { effectiveServiceSettings, type ProxyConfig } from './config/proxy.js';
import { zookeeperAuth } from './config/zookeeper.js';
import { createDiscovery, type Discovery } from './discovery/discovery.js';
import type { SetDelta } from './discovery/provider-table.js';
import { keepConnecting, type ConnectState } from './discovery/keep-connecting.js';
import { createStateFileWriter, loadState } from './discovery/state-file.js';
import type { HealthView } from './health/view.js';
import { bound, closeServer, listen, routeText } from './listen.js';
import type { PlaneAddresses } from './plane.js';
import { hostPort } from './znode/layout.js';

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
  /** The HTTP listener's address actually bound (port 0 resolved); throws with `--listen none`. */
  address(): { host: string; port: number };
  /** Every listener's address: HTTP (undefined with `--listen none`) and each TCP route. */
  addresses(): PlaneAddresses;
  adminAddress(): { host: string; port: number };
  /**
   * Drains and stops: readiness 503, no new connections, in-flight requests finish (up to the
   * drain timeout), idle keep-alives closed, then the ZooKeeper session closes last.
   */
  close(drainTimeoutMs?: number): Promise<void>;
  /** Reopens the access log file (SIGUSR1 after logrotate moved it; workers: each of them). */
  reopenAccessLog(): void;
  /**
   * Runs with `config` from the next request on (SIGHUP; `planReload` keeps every option that
   * needs a restart as it was). Throws, changing nothing here, if it cannot be applied.
   */
  reconfigure(config: ProxyConfig): void;
  /** The configuration in force: the one started with, or the last reload's. */
  config(): ProxyConfig;
}

/** Services whose per-service settings put them under another base path or layout (their own watch). */
export function serviceRoots(config: ProxyConfig): Record<string, { basePath: string; layout: ProxyConfig['layout'] }> {
  const roots: Record<string, { basePath: string; layout: ProxyConfig['layout'] }> = {};
  for (const service of Object.keys(config.serviceSettings)) {
    const { basePath, layout } = effectiveServiceSettings(config, service);
    if (basePath !== config.basePath || layout !== config.layout) roots[service] = { basePath, layout };
  }
  return roots;
}

/** The services watched from the start: --services and those the TCP and Thrift routes name. */
export function eagerServices(config: ProxyConfig): string[] {
  return [...new Set([...config.services, ...[...config.tcp, ...config.thrift].map((route) => route.service)])];
}

/** `--listen`'s address, or an error saying there is none. */
export function httpAddress(addresses: PlaneAddresses): { host: string; port: number } {
  if (!addresses.http) throw new Error('no HTTP listener (--listen none)');
  return addresses.http;
}

/** The listeners for the start-up log line: `listen` (host:port or none), `tcp` and `thrift` (LISTEN=SERVICE). */
export function describeListeners(addresses: PlaneAddresses): { listen: string; tcp: string[]; thrift: string[] } {
  return {
    listen: addresses.http ? hostPort(addresses.http.host, addresses.http.port) : 'none',
    tcp: addresses.tcp.map((t) => routeText(t.host, t.port, t.service)),
    thrift: addresses.thrift.map((t) => routeText(t.host, t.port, t.service)),
  };
}

export interface ControlDeps {
  readonly logger: Logger;
  /** Health as of now, for /providers (called per admin request). */
  readonly healthView: () => HealthView | Promise<HealthView>;
  /** /metrics from the registry (default: the registry as it is). */
  readonly metrics?: (registry: Registry) => MetricsText;
  /** Once the table is read: why the proxy cannot serve yet, if it cannot. */
  readonly notServing?: () => string | undefined;
  /** Instance addresses refused at decode; the admin address is added to it once bound. */
  readonly addressPolicy: AddressPolicy;
  /** The dashboard's per-second figures (the plane's, or every worker's added up). */
  readonly stats: () => StatsSnapshot | Promise<StatsSnapshot>;
}

export interface Control {
  readonly discovery: Discovery;
  /** Discovery's metrics are on it; the proxy side registers its own. */
  readonly registry: Registry;
  readonly metrics: MetricsText;
  /** The dashboard's recent events: ZooKeeper's are added here; health's by the runtime (one process, or the workers'). */
  readonly events: EventLog;
  readiness(): Readiness;
  adminAddress(): { host: string; port: number };
  /** Binds the admin port. */
  listen(): Promise<void>;
  /** Connects to ZooKeeper in the background; resolves once the first attempt ended. */
  connect(): Promise<void>;
  /** Readiness 503 `draining` from now on. */
  drain(): void;
  /** A reload: the services watched from the start, and the log level; config() returns it from then on. */
  reconfigure(config: ProxyConfig): void;
  /** The configuration in force (the runtime's one copy of it). */
  config(): ProxyConfig;
  /** Closes the admin port, then ZooKeeper (call after the traffic has stopped). */
  close(): Promise<void>;
}

/** The token in `--admin-token-file` (whitespace around it ignored); a ConfigError naming the file if unusable. */
export function readAdminToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--admin-token-file ${JSON.stringify(file)}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const token = text.trim();
  if (token.length < 16 || /\s/.test(token)) throw new ConfigError(`--admin-token-file ${JSON.stringify(file)}: expected one token of at least 16 characters without spaces`);
  return token;
}

export function createControl(config: ProxyConfig, deps: ControlDeps): Control {
  const { logger } = deps;
  const auth = zookeeperAuth(config);
  const discovery = createDiscovery(
    {
      zookeeper: config.zookeeper,
      services: eagerServices(config),
      roots: serviceRoots(config),
      resyncJitterMs: config.resyncJitterMs,
      basePath: config.basePath,
      layout: config.layout,
      keepLastOnEmpty: config.keepLastOnEmpty,
      sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
      connectTimeoutMs: config.zookeeperConnectTimeoutMs,
      nativeLogLevel: config.zookeeperNativeLogLevel,
      ...(auth ? { auth } : {}),
    },
    { logger, addressRefusal: (host, port) => deps.addressPolicy.refusal(host, port) },
  );
  const registry = createRegistry();
  registerDiscoveryMetrics(registry, discovery);
  const metrics = deps.metrics?.(registry) ?? { contentType: registry.contentType, render: () => registry.metrics() };

  let draining = false;
  let closed = false;
  let listening = false;
  let connecting: ConnectState | undefined;
  // --state-file: written after every change ZooKeeper made (never while the table is the
  // file's own, so a stale table is not made to look fresh); read when ZooKeeper is unreachable.
  const stateOptions = config.stateFile ? { path: config.stateFile, basePath: config.basePath, zookeeper: config.zookeeper, maxAgeMs: config.stateMaxAgeMs } : undefined;
  const stateWriter = stateOptions ? createStateFileWriter(stateOptions, { table: discovery.table, logger }) : undefined;
  if (stateWriter) {
    discovery.table.on('change', () => {
      if (discovery.loaded) stateWriter.changed();
    });
    discovery.table.on('removed', () => stateWriter.changed());
  }
  let servedFromState: { writtenAt: number } | undefined;
  const tableSource = () => (servedFromState && !discovery.loaded ? 'state-file' : 'zookeeper');
  registerTableSourceMetric(registry, tableSource);
  const readiness = (): Readiness => {
    if (draining) return { ready: false, reason: 'draining', message: 'shutting down: finishing requests in flight' };
    if (servedFromState && tableSource() === 'state-file') return { ready: true, source: 'state-file', stateAgeSeconds: Math.round((Date.now() - servedFromState.writtenAt) / 1000) };
    if (!discovery.loaded || !discovery.eagerLoaded) {
      if (connecting?.failed) return { ready: false, reason: 'zookeeper_unreachable', message: connecting.failed.message };
      return { ready: false, reason: 'starting', message: discovery.loaded ? `reading the services watched from the start (${discovery.eagerPending().join(', ')})` : 'reading the service list from ZooKeeper' };
    }
    const problem = deps.notServing?.();
    return problem === undefined ? { ready: true } : { ready: false, reason: 'starting', message: problem };
  };
  const events = new EventLog();
  discovery.on('change', (service: string, _instances: unknown, delta: SetDelta) => events.addDelta(service, delta));
  discovery.session.on('connected', () => events.add({ kind: 'zookeeper_connected' }));
  discovery.session.on('session', () => events.add({ kind: 'zookeeper_connected', reason: 'new session' }));
  discovery.session.on('disconnected', () => events.add({ kind: 'zookeeper_disconnected' }));
  discovery.session.on('expired', () => events.add({ kind: 'zookeeper_expired' }));
  const token = config.adminTokenFile ? readAdminToken(config.adminTokenFile) : undefined;
  // The configuration in force (reloads replace it), for /providers' per-service settings.
  let current = config;
  const admin: Server = createAdminServer({
    settings: (service) => effectiveServiceSettings(current, service),
    discovery, healthView: deps.healthView, metrics, readiness, logger, stats: deps.stats, events, workers: config.workers, zoneKey: config.zoneKey, dashboard: loadDashboard({ tokenRequired: token !== undefined }), ...(token ? { token } : {}),
  });

  return {
    discovery,
    registry,
    metrics,
    events,
    readiness,
    adminAddress: () => bound(admin, config.admin),
    async listen() {
      await listen(admin, config.admin, '--admin');
      listening = true;
      const adminAt = bound(admin, config.admin);
      deps.addressPolicy.addOwn(adminAt.host, adminAt.port);
      admin.on('error', (err) => logger.error({ err }, 'admin server error'));
    },
    connect: () => new Promise<void>((resolve) => {
      connecting = keepConnecting(discovery, { logger, zookeeper: config.zookeeper, isClosed: () => closed }, () => {
        // ZooKeeper not reached within the connect deadline: serve the saved table meanwhile.
        if (stateOptions && connecting?.failed && !discovery.loaded) {
          const saved = loadState(stateOptions, { logger });
          if (saved) {
            discovery.seed(saved.services);
            servedFromState = { writtenAt: saved.writtenAt };
            logger.warn({ path: stateOptions.path, ageSeconds: Math.round(saved.ageMs / 1000), services: saved.services.length }, 'ZooKeeper unreachable: serving the table saved in the state file until it is read');
          }
        }
        resolve();
      });
    }),
    drain() {
      draining = true;
    },
    config: () => current,
    reconfigure(next) {
      current = next;
      discovery.watchFromStart(eagerServices(next));
      logger.level = next.logLevel;
    },
    async close() {
      draining = true;
      closed = true;
      connecting?.cancel();
      if (listening) {
        admin.closeAllConnections();
        await closeServer(admin);
        listening = false;
      }
      // ZooKeeper last: the session (and its watches) outlive the traffic.
      await discovery.close();
      await stateWriter?.close();
      await connecting?.done;
    },
  };
}
