import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { DiscoveryStats } from '../discovery/discovery.js';
import type { Instance } from '../discovery/provider-table.js';
import type { InstanceSource } from '../discovery/source.js';
import type { HealthView } from '../health/view.js';
import type { EventLog } from './events.js';
import type { MetricsText } from './metrics.js';
import { statsDocument } from './stats-document.js';
import type { StatsSnapshot } from './stats.js';
import type { DashboardFile } from './dashboard.js';

/** Why the proxy is not ready, or ready. */
export type Readiness =
  /** `source`: where the table comes from (`state-file`: ZooKeeper has not been read yet, `stateAgeSeconds` old). */
  | { readonly ready: true; readonly source?: 'zookeeper' | 'state-file'; readonly stateAgeSeconds?: number }
  | { readonly ready: false; readonly reason: 'starting' | 'zookeeper_unreachable' | 'draining'; readonly message: string };

export interface AdminDeps {
  /** The table and the ZooKeeper figures (Discovery, in one process or a cluster's primary). */
  readonly discovery: InstanceSource & { readonly basePath: string; stats(): DiscoveryStats };
  /** Health as of now, for /providers. */
  readonly healthView: () => HealthView | Promise<HealthView>;
  readonly metrics: MetricsText;
  readonly readiness: () => Readiness;
  readonly logger: Logger;
  /** The per-second figures (this process's, or every worker's added up), for /stats. */
  readonly stats: () => StatsSnapshot | Promise<StatsSnapshot>;
  readonly events: EventLog;
  /** Proxy processes (1, or the cluster's workers). */
  readonly workers: number;
  /** The metadata field naming an instance's zone (--zone-key), for /stats. */
  readonly zoneKey: string;
  /** The settings a service runs with (the defaults and its own), for /providers. */
  readonly settings: (service: string) => unknown;
  /** The dashboard's files (read once at start). */
  readonly dashboard: ReadonlyMap<string, DashboardFile>;
  /** When set, /providers, /metrics and /stats need `Authorization: Bearer <token>`. */
  readonly token?: string;
}

/** Paths behind the token when there is one (the dashboard's own files are not: they hold no data). */
const PROTECTED = (path: string) => path === '/metrics' || path === '/stats' || path === '/providers' || path.startsWith('/providers/');

// The page loads only its own script and style and talks only to this port.
const DASHBOARD_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Does the request carry the bearer token (compared in constant time)? */
function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function json(res: ServerResponse, status: number, body: unknown, indent = 2): void {
  const text = JSON.stringify(body, null, indent);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) }).end(text);
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

function describeInstance(instance: Instance, health: HealthView) {
  const h = health(instance);
  return {
    id: instance.id,
    address: instance.address,
    host: instance.host,
    port: instance.port,
    weight: instance.weight,
    metadata: instance.metadata,
    format: instance.format,
    path: instance.path,
    health: {
      status: h.healthy ? 'healthy' : 'ejected',
      ejectedUntil: iso(h.ejectedUntil),
      ejectionReason: h.ejectionReason ?? null,
      ejections: h.ejections,
      consecutiveFailures: h.consecutiveFailures,
      lastFailure: h.lastFailure ? { outcome: h.lastFailure.outcome, at: iso(h.lastFailure.at) } : null,
      inFlight: h.inFlight,
      tcpConnections: h.tcpConnections,
      thriftConnections: h.thriftConnections,
      ...(h.workersEjecting !== undefined ? { workersEjecting: h.workersEjecting } : {}),
    },
  };
}

function describeService(service: string, deps: AdminDeps, health: HealthView) {
  const entry = deps.discovery.table.get(service);
  if (!entry) return { watched: false, settings: deps.settings(service), instances: null };
  return { watched: true, settings: deps.settings(service), updatedAt: iso(entry.updatedAt), keptOnEmpty: entry.keptOnEmpty, instances: entry.instances.map((i) => describeInstance(i, health)) };
}

function table(deps: AdminDeps) {
  const stats = deps.discovery.stats();
  return {
    staleSeconds: stats.staleSeconds,
    zookeeper: { state: stats.session.state, sessionId: stats.session.sessionId ?? null, reconnects: stats.session.reconnects, expiries: stats.session.expiries },
    basePath: deps.discovery.basePath,
  };
}

/**
 * The operator's port: / (the dashboard), /stats (its figures), /healthz (liveness), /readyz
 * (readiness), /providers[/<service>] (the table with health), /metrics (Prometheus). Kept off
 * the proxy port, loopback by default.
 */
export function createAdminServer(deps: AdminDeps): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'method_not_allowed', message: 'the admin API is read-only: use GET' });
    const path = url.pathname;
    if (path === '/healthz') {
      // Alive while the session is connected or being (re)established; auth failure or a closed
      // session needs a human or a restart.
      const state = deps.discovery.stats().session.state;
      const ok = state !== 'auth_failed' && state !== 'closed';
      return json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'unhealthy', zookeeper: state });
    }
    if (path === '/readyz') {
      const r = deps.readiness();
      const stale = deps.discovery.stats().staleSeconds;
      return r.ready
        ? json(res, 200, { status: 'ready', staleSeconds: stale, zookeeper: deps.discovery.stats().session.state, source: r.source ?? 'zookeeper', ...(r.stateAgeSeconds !== undefined ? { stateAgeSeconds: r.stateAgeSeconds } : {}) })
        : json(res, 503, { status: 'not_ready', reason: r.reason, message: r.message, staleSeconds: stale });
    }
    const file = deps.dashboard.get(path);
    if (file) {
      res.writeHead(200, { 'content-type': file.contentType, 'content-length': file.body.length, 'cache-control': 'no-cache', 'content-security-policy': DASHBOARD_POLICY, 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : file.body);
      return;
    }
    if (path === '/favicon.ico') return void res.writeHead(204).end();
    if (deps.token !== undefined && PROTECTED(path) && !authorized(req, deps.token)) {
      res.setHeader('www-authenticate', 'Bearer realm="zkroute admin"');
      return json(res, 401, { error: 'unauthorized', message: `${path} needs Authorization: Bearer <token> (the token in --admin-token-file)` });
    }
    if (path === '/metrics') {
      const text = await deps.metrics.render();
      res.writeHead(200, { 'content-type': deps.metrics.contentType }).end(text);
      return;
    }
    if (path === '/stats') {
      const [health, snapshot] = await Promise.all([deps.healthView(), deps.stats()]);
      const stats = deps.discovery.stats();
      const readiness = deps.readiness();
      return json(res, 200, statsDocument({
        now: Date.now(),
        workers: deps.workers,
        basePath: deps.discovery.basePath,
        zoneKey: deps.zoneKey,
        staleSeconds: stats.staleSeconds,
        source: readiness.ready ? readiness.source ?? 'zookeeper' : 'zookeeper',
        ready: readiness.ready,
        zookeeper: { state: stats.session.state, sessionId: stats.session.sessionId ?? null, reconnects: stats.session.reconnects, expiries: stats.session.expiries },
        services: deps.discovery.knownServices(),
        entry: (service) => deps.discovery.table.get(service),
        health,
        snapshot,
        events: deps.events.recent(),
      }), 0);
    }
    if (path === '/providers' || path === '/providers/') {
      const health = await deps.healthView();
      const services: Record<string, unknown> = {};
      for (const service of deps.discovery.knownServices()) services[service] = describeService(service, deps, health);
      return json(res, 200, { ...table(deps), services });
    }
    if (path.startsWith('/providers/')) {
      let service = path.slice('/providers/'.length);
      try {
        service = decodeURIComponent(service);
      } catch {
        // Not valid percent-encoding: no service has that name; answered below.
      }
      if (!deps.discovery.knownServices().includes(service)) return json(res, 404, { error: 'unknown_service', message: `service ${service.slice(0, 200)} is not in the table`, service: service.slice(0, 200) });
      return json(res, 200, { ...table(deps), service, ...describeService(service, deps, await deps.healthView()) });
    }
    return json(res, 404, { error: 'not_found', message: 'try / (the dashboard), /stats, /healthz, /readyz, /providers, /providers/<service>, /metrics' });
  };
  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      deps.logger.error({ err }, 'admin request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal_error', message: 'admin request failed' });
    });
  });
}
