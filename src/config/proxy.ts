// `zkroute proxy`: its options, in the order the help lists them, and its frozen configuration
// (units in the names).
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { cidrProblem } from '../address-policy.js';
import { BALANCERS, type BalancerName } from '../balancer/balancer.js';
import { trafficSettings } from '../upstream/settings.js';
import { prefixProblem } from '../http/route.js';
import { routeText, type ListenAddress, type ServiceRoute } from '../listen.js';
import { hostPort, serviceNameProblem, type Layout } from '../znode/layout.js';
import {
  buildConfig, checked, ConfigError, integer, LOG_LEVELS, oneOf, parseBoolean, parseBytes, parseDurationMs, parseDurationOrZeroMs, parseListen,
  size, spec, type ConfigFile, type LogLevel, type OptionSpec, type Parser,
} from './options.js';
import { AUTH, BASE_PATH, connectTimeout, LAYOUT, NATIVE_LOG_LEVEL, SESSION_TIMEOUT, ZOOKEEPER, type ZookeeperConfig } from './zookeeper.js';

export interface ProxyConfig extends ZookeeperConfig {
  readonly basePath: string;
  readonly layout: Layout;
  readonly keepLastOnEmpty: boolean;
  /** CIDRs instances must be in (empty: anything but link-local); own addresses always refused. */
  readonly allowUpstream: readonly string[];
  /** Services watched from the start (`/readyz` waits for their first snapshots); others on first use. */
  readonly services: readonly string[];
  /** The HTTP listener; null with `--listen none` (a proxy of TCP listeners only). */
  readonly listen: ListenAddress | null;
  readonly admin: ListenAddress;
  readonly tcp: readonly ServiceRoute[];
  readonly tcpIdleTimeoutMs: number;
  /** `--thrift LISTEN=SERVICE`: Thrift callers, balanced per call. */
  readonly thrift: readonly ServiceRoute[];
  readonly thriftMaxMessageBytes: number;
  /** Methods that may be retried after a reset or timeout (the call may have run). */
  readonly thriftIdempotent: readonly string[];
  readonly drainTimeoutMs: number;
  readonly workers: number;
  readonly prefix: string;
  readonly balancer: BalancerName;
  readonly preserveHost: boolean;
  /** Forward `.` and `..` path segments as sent instead of resolving them inside the service. */
  readonly noNormalizePath: boolean;
  /** A file holding the bearer token /providers and /metrics require ('' : open). */
  readonly adminTokenFile: string;
  readonly connectTimeoutMs: number;
  readonly tryTimeoutMs: number;
  readonly deadlineMs: number;
  readonly retries: number;
  readonly retryBufferBytes: number;
  readonly consecutive5xx: number;
  readonly ejectionBaseMs: number;
  readonly ejectionMaxMs: number;
  readonly maxEjectionPercent: number;
  /** Retries allowed per service: this share of the requests of the last 10 s (plus 10 a second); null: no budget. */
  readonly retryBudgetPercent: number | null;
  /** A new (or re-admitted) instance's weight ramps from 10% to 100% over this long; 0: off. */
  readonly slowStartMs: number;
  /** This proxy's zone ('' : none, zone preference off). */
  readonly zone: string;
  /** The metadata field naming an instance's zone. */
  readonly zoneKey: string;
  /** Below this share of its instances healthy, the local zone spills traffic to the others. */
  readonly zoneMinHealthyPercent: number;
  /** Prefer the local zone (default: when --zone is set). */
  readonly zoneAware: boolean;
  /** The request header naming a subset (`key=value[,key=value]`); '' : none. */
  readonly subsetHeader: string;
  /** No instance matches the subset: any instance, or 503 no_matching_instances. */
  readonly subsetFallback: 'any' | 'fail';
  /** Forward the subset header upstream (default: removed). */
  readonly subsetHeaderForward: boolean;
  /** Per-service settings from the --config file's `services` object (each named service is watched from the start). */
  readonly serviceSettings: Readonly<Record<string, ServiceOverride>>;
  readonly poolIdleTimeoutMs: number;
  readonly maxConnectionsPerInstance: number;
  readonly maxPending: number;
  /** The HTTP/1.1 implementation on both ends: ours (`zkroute`) or Node's http + undici (`node`). */
  readonly httpEngine: 'zkroute' | 'node';
  /** `off`, `stdout`, `stderr` or a file path: one JSON line per finished request. */
  readonly accessLog: string;
  /** Keep the query string in the access log's `path`. */
  readonly accessLogQuery: boolean;
  /** The saved table ('' = none): written after changes, served from when ZooKeeper is unreachable at start. */
  readonly stateFile: string;
  readonly stateMaxAgeMs: number;
  /** After a new session, re-reads spread over this window: 'auto' (up to 2 s, 250 ms per watch), a duration, or 0 (at once). */
  readonly resyncJitterMs: number | 'auto';
  readonly maxClientConnections: number;
  readonly bodyIdleTimeoutMs: number;
  readonly headerTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly websocketIdleTimeoutMs: number;
  readonly logLevel: LogLevel;
}

/** What one service may set apart from the rest (the --config file's `services.<name>` object). */
export interface ServiceOverride {
  readonly basePath?: string;
  readonly layout?: Layout;
  readonly balancer?: BalancerName;
  readonly retries?: number;
  readonly tryTimeoutMs?: number;
  readonly deadlineMs?: number;
  readonly connectTimeoutMs?: number;
  readonly consecutive5xx?: number;
  readonly ejectionBaseMs?: number;
  readonly ejectionMaxMs?: number;
  readonly maxEjectionPercent?: number;
  readonly retryBudgetPercent?: number | null;
  readonly slowStartMs?: number;
  readonly zoneAware?: boolean;
}

/** The keys a `services.<name>` object may hold: the flags of these options. */
export const SERVICE_SETTING_FLAGS = ['base-path', 'layout', 'balancer', 'retries', 'try-timeout', 'deadline', 'connect-timeout', 'consecutive-5xx', 'ejection-base', 'ejection-max', 'max-ejection-percent', 'retry-budget', 'slow-start', 'zone-aware'] as const;

/** `20%` or `20`: the number, or undefined when it is not a percentage. */
function percentage(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(raw.trim());
  return m ? Number(m[1]) : undefined;
}

/** `20%`, `20` (percent of requests), or `off`. */
const parseRetryBudget: Parser<number | null> = (raw) => {
  if (raw.trim() === 'off') return null;
  const n = percentage(raw);
  return n !== undefined && n <= 1000 ? n : { problem: 'expected a percentage of requests such as 20% (0-1000), or off' };
};

/** `30s` (any duration), or `off` / `0`. */
const parseSlowStart: Parser<number> = (raw) => (raw.trim() === 'off' ? 0 : parseDurationOrZeroMs(raw));

const parsePercent: Parser<number> = (raw) => {
  const n = percentage(raw);
  return n !== undefined && n > 0 && n <= 100 ? n : { problem: 'expected a percentage above 0 and at most 100, such as 70%' };
};

/** `auto` (see resyncWindowMs), a duration, or `0`. */
const parseResyncJitter: Parser<number | 'auto'> = (raw) => (raw.trim() === 'auto' ? 'auto' : parseDurationOrZeroMs(raw));

/** `auto` (on when --zone is set), true or false; resolved in buildProxyConfig. */
const parseZoneAware: Parser<boolean | 'auto'> = (raw) => (raw.trim() === 'auto' ? 'auto' : parseBoolean(raw));

const parseHeaderName: Parser<string> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (v === 'none' || v === '') return '';
  return /^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(v) ? v : { problem: 'expected a header name (letters, digits, "-"), or none' };
};

/** `off`, `stdout`, `stderr`, or a file path (absolute or relative; its directory must exist when the proxy starts). */
/** Why a file cannot be created at `path` (its directory is missing), if it cannot. */
function directoryProblem(path: string): string | undefined {
  const directory = dirname(path);
  return existsSync(directory) && statSync(directory).isDirectory() ? undefined : `the directory ${directory} does not exist`;
}

const parseAccessLog: Parser<string> = (raw) => {
  if (raw === 'off' || raw === 'stdout' || raw === 'stderr') return raw;
  if (raw.trim() === '') return { problem: 'expected off, stdout, stderr or a file path' };
  const problem = directoryProblem(raw);
  return problem ? { problem } : raw;
};

/** A file path (or '' for none). */
const parseStateFile: Parser<string> = (raw) => {
  if (raw === '') return raw;
  const problem = directoryProblem(raw);
  return problem ? { problem } : raw;
};

const parseListenOrNone: Parser<ListenAddress | null> = (raw) => (raw.trim() === 'none' ? null : parseListen(raw));

/** `127.0.0.1:9090=example-service`. */
const parseServiceRoute: Parser<ServiceRoute> = (raw) => {
  const eq = raw.lastIndexOf('=');
  if (eq < 0) return { problem: 'expected LISTEN=SERVICE, e.g. 127.0.0.1:9090=example-service' };
  const listen = parseListen(raw.slice(0, eq));
  if ('problem' in listen) return { problem: `the address: ${listen.problem}` };
  const service = raw.slice(eq + 1).trim();
  const bad = serviceNameProblem(service);
  if (bad) return { problem: `service name ${JSON.stringify(service)} ${bad}` };
  return { listen, service };
};

const parseMethodName: Parser<string> = (raw) => (/^[A-Za-z0-9_.:]+$/.test(raw.trim()) ? raw.trim() : { problem: 'a method name holds letters, digits, "_", "." and ":"' });

/** Every proxy option, in the order the help lists them. */
export const PROXY_OPTIONS: readonly OptionSpec<keyof ProxyConfig>[] = [
  ZOOKEEPER,
  spec('listen', 'listen', parseListenOrNone, '127.0.0.1:4700', 'address to serve HTTP callers on, or none (TCP listeners only)'),
  spec('admin', 'admin', parseListen, '127.0.0.1:4701', 'admin address: /healthz /readyz /providers /metrics'),
  spec('admin-token-file', 'adminTokenFile', (raw) => raw.trim(), '', 'a file holding a token: /providers and /metrics then need Authorization: Bearer <token> (/healthz, /readyz stay open)'),
  spec('tcp', 'tcp', parseServiceRoute, '', 'a TCP listener LISTEN=SERVICE: each connection goes to an instance of SERVICE (env and file: a list)', { multiple: true }),
  spec('tcp-idle-timeout', 'tcpIdleTimeoutMs', parseDurationMs, '1h', 'a TCP connection silent both ways this long is closed'),
  spec('thrift', 'thrift', parseServiceRoute, '', 'a Thrift listener LISTEN=SERVICE: each call goes to an instance of SERVICE (env and file: a list)', { multiple: true }),
  spec('thrift-max-message', 'thriftMaxMessageBytes', size(64, 1024 * 1024 * 1024, 'is above 1 GiB'), '16MiB', 'largest Thrift message (frame or unframed call) accepted'),
  spec('thrift-idempotent', 'thriftIdempotent', parseMethodName, '', 'Thrift methods that may be retried after a reset or timeout (comma list)', { multiple: true }),
  spec('drain-timeout', 'drainTimeoutMs', parseDurationMs, '10s', 'on SIGTERM/SIGINT, longest wait for requests in flight'),
  spec('workers', 'workers', integer(1, 256), '1', 'proxy processes sharing the listen port (node:cluster); one ZooKeeper session and the admin port stay in the primary'),
  spec('prefix', 'prefix', checked(prefixProblem), '/svc', 'route prefix: <prefix>/<service>/<path>'),
  BASE_PATH,
  LAYOUT,
  spec('services', 'services', checked(serviceNameProblem), '', 'services watched from the start, comma list (/readyz waits for their first read); others are watched on first use. In the --config file also an object of per-service settings', { multiple: true, section: true }),
  spec('keep-last-on-empty', 'keepLastOnEmpty', parseBoolean, 'true', 'keep routing to the last set when ZooKeeper lists none'),
  spec('allow-upstream', 'allowUpstream', checked(cidrProblem), '', 'CIDRs instance addresses must be in, comma list (default: all but link-local 169.254.0.0/16 and fe80::/10); zkroute\'s own addresses are always refused', { multiple: true }),
  spec('balancer', 'balancer', oneOf(BALANCERS), 'random', 'random, round-robin or p2c (fewest in flight of two)'),
  spec('access-log', 'accessLog', parseAccessLog, 'off', 'off, stdout, stderr or a file: one JSON line per finished request, written in batches; a file is reopened on SIGUSR1 (logrotate)'),
  spec('access-log-query', 'accessLogQuery', parseBoolean, 'false', "keep the query string in the access log's path (it may carry tokens)", { boolean: true }),
  spec('state-file', 'stateFile', parseStateFile, '', 'keep the table in this file (atomically, at most once a second); serve from it when ZooKeeper is unreachable at start'),
  spec('resync-jitter', 'resyncJitterMs', parseResyncJitter, 'auto', 'after a new ZooKeeper session, spread the re-reads over this window, serving the last table meanwhile: auto (up to 2s, 250ms per watch), a duration (size it to the fleet, see docs/SCALING.md), or 0 (at once)'),
  spec('state-max-age', 'stateMaxAgeMs', parseDurationMs, '24h', 'a --state-file older than this is ignored'),
  spec('http-engine', 'httpEngine', oneOf(['zkroute', 'node'] as const), 'zkroute', 'HTTP/1.1 on both ends: zkroute (its own strict parser, server and upstream pools) or node (Node http + undici)'),
  spec('preserve-host', 'preserveHost', parseBoolean, 'false', "send the caller's Host header instead of the instance's host:port", { boolean: true }),
  spec('no-normalize-path', 'noNormalizePath', parseBoolean, 'false', 'forward "." and ".." path segments as sent (default: resolved inside the service, never above its root)', { boolean: true }),
  spec('connect-timeout', 'connectTimeoutMs', parseDurationMs, '1s', 'upstream TCP connect limit per try'),
  spec('try-timeout', 'tryTimeoutMs', parseDurationMs, '15s', 'per-try limit on waiting for response headers'),
  spec('deadline', 'deadlineMs', parseDurationMs, '30s', 'overall limit until response headers, retries included'),
  spec('retries', 'retries', integer(0, 10), '2', 'retries on other instances (connect failures; resets and timeouts for idempotent methods)'),
  spec('retry-buffer', 'retryBufferBytes', parseBytes, '64KiB', 'largest request body held so it can be re-sent'),
  spec('consecutive-5xx', 'consecutive5xx', integer(1, 1000), '5', 'consecutive 5xx responses that eject an instance'),
  spec('ejection-base', 'ejectionBaseMs', parseDurationMs, '10s', 'ejection time, times the number of ejections'),
  spec('ejection-max', 'ejectionMaxMs', parseDurationMs, '300s', 'longest ejection'),
  spec('max-ejection-percent', 'maxEjectionPercent', integer(0, 100), '50', "most of a service's instances ejected at once"),
  spec('retry-budget', 'retryBudgetPercent', parseRetryBudget, '20%', 'retries per service at most this share of its requests of the last 10 s, plus 10 a second (Finagle), or off'),
  spec('slow-start', 'slowStartMs', parseSlowStart, 'off', "a new or re-admitted instance's weight ramps from 10% to 100% over this long (e.g. 30s), or off"),
  spec('zone', 'zone', (raw) => raw.trim(), '', "this proxy's zone: requests prefer instances whose metadata names it"),
  spec('zone-key', 'zoneKey', (raw) => (raw.trim() === '' ? { problem: 'expected a metadata field name' } : raw.trim()), 'zone', "the instance metadata field holding its zone (Curator payloads and serverset metadata maps too)"),
  spec('zone-min-healthy', 'zoneMinHealthyPercent', parsePercent, '70%', 'below this share of its instances healthy, the local zone spills to other zones in proportion'),
  spec('zone-aware', 'zoneAware', parseZoneAware, 'auto', 'prefer the local zone: auto (when --zone is set), true or false'),
  spec('subset-header', 'subsetHeader', parseHeaderName, 'x-zkroute-subset', 'request header key=value[,key=value] routing to instances whose metadata match, or none'),
  spec('subset-fallback', 'subsetFallback', oneOf(['any', 'fail'] as const), 'any', 'no instance matches the subset: any instance, or fail (503 no_matching_instances)'),
  spec('subset-header-forward', 'subsetHeaderForward', parseBoolean, 'false', 'forward the subset header upstream (default: removed)', { boolean: true }),
  spec('pool-idle-timeout', 'poolIdleTimeoutMs', parseDurationMs, '4s', 'idle upstream connections closed after (keep below the upstream keep-alive)'),
  spec('max-connections-per-instance', 'maxConnectionsPerInstance', integer(1, 1_000_000), '1024', 'upstream connections per instance: HTTP requests beyond wait for one; a TCP connection or Thrift call beyond is refused (overloaded)'),
  spec('max-pending', 'maxPending', integer(0, 1_000_000), '1024', 'requests waiting for a connection to one instance; beyond, 503 overloaded at once'),
  spec('max-client-connections', 'maxClientConnections', integer(1, 10_000_000), '100000', 'caller connections open at once; more are closed as they arrive (counted)'),
  spec('body-idle-timeout', 'bodyIdleTimeoutMs', parseDurationMs, '300s', 'longest pause inside an upstream response body'),
  spec('header-timeout', 'headerTimeoutMs', parseDurationMs, '10s', 'time a caller has to send request headers (then 408)'),
  spec('client-idle-timeout', 'clientIdleTimeoutMs', parseDurationMs, '60s', 'idle caller keep-alive connections closed after'),
  spec('websocket-idle-timeout', 'websocketIdleTimeoutMs', parseDurationMs, '300s', 'WebSocket tunnel closed after this long without traffic'),
  SESSION_TIMEOUT,
  connectTimeout('10s'),
  ...AUTH,
  NATIVE_LOG_LEVEL,
  spec('log-level', 'logLevel', oneOf(LOG_LEVELS), 'info', 'pino level (debug logs one line per request)'),
];

/** Builds the proxy's config: flags > environment > file > defaults (see buildConfig). */
export function buildProxyConfig(flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env, file?: ConfigFile): ProxyConfig {
  const built = buildConfig(PROXY_OPTIONS, flags, env, file) as unknown as Omit<ProxyConfig, 'zoneAware' | 'serviceSettings'> & { zoneAware: boolean | 'auto' };
  const config: ProxyConfig = { ...built, zoneAware: built.zoneAware === 'auto' ? built.zone !== '' : built.zoneAware, serviceSettings: serviceOverrides(file) };
  if (config.tryTimeoutMs > config.deadlineMs) throw new ConfigError(`--try-timeout ${config.tryTimeoutMs}ms is longer than --deadline ${config.deadlineMs}ms`);
  if (config.ejectionBaseMs > config.ejectionMaxMs) throw new ConfigError(`--ejection-base ${config.ejectionBaseMs}ms is longer than --ejection-max ${config.ejectionMaxMs}ms`);
  for (const [service, override] of Object.entries(config.serviceSettings)) {
    const effective = { ...config, ...override };
    const where = `${file!.name}: services.${service}`;
    if (effective.tryTimeoutMs > effective.deadlineMs) throw new ConfigError(`${where}: try-timeout ${effective.tryTimeoutMs}ms is longer than its deadline ${effective.deadlineMs}ms`);
    if (effective.ejectionBaseMs > effective.ejectionMaxMs) throw new ConfigError(`${where}: ejection-base ${effective.ejectionBaseMs}ms is longer than its ejection-max ${effective.ejectionMaxMs}ms`);
  }
  checkServiceRoutes(config);
  return Object.freeze(config);
}

/** What `service` runs with: the defaults, then its own settings over them (for /providers and --print-config). */
export function effectiveServiceSettings(config: ProxyConfig, service: string) {
  const own = config.serviceSettings[service] ?? {};
  return {
    basePath: own.basePath ?? config.basePath,
    layout: own.layout ?? config.layout,
    // The same merge as the proxy's Settings: its keys, the service's value over the default.
    ...trafficSettings({ ...config, ...own }),
    overridden: Object.keys(own),
  };
}

/** The file's `services` object parsed per service, each value by its option's parser; errors name the path. */
function serviceOverrides(file: ConfigFile | undefined): Readonly<Record<string, ServiceOverride>> {
  const section = file?.sections?.['services'];
  if (!section) return Object.freeze({});
  const byFlag = new Map(PROXY_OPTIONS.map((o) => [o.flag, o]));
  const out: Record<string, ServiceOverride> = {};
  for (const [service, settings] of Object.entries(section)) {
    const bad = serviceNameProblem(service);
    if (bad) throw new ConfigError(`${file!.name}: services.${JSON.stringify(service)}: service name ${bad}`);
    const override: Record<string, unknown> = {};
    for (const [flag, value] of Object.entries(settings)) {
      const path = `${file!.name}: services.${service}.${flag}`;
      if (!(SERVICE_SETTING_FLAGS as readonly string[]).includes(flag)) throw new ConfigError(`${path}: not a per-service setting (one of ${SERVICE_SETTING_FLAGS.join(', ')})`);
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw new ConfigError(`${path}: expected a string, number or boolean, got ${JSON.stringify(value)}`);
      const option = byFlag.get(flag)!;
      const parsed = option.parse(String(value));
      if (typeof parsed === 'object' && parsed !== null && 'problem' in parsed) throw new ConfigError(`${path}: ${JSON.stringify(String(value))}: ${(parsed as { problem: string }).problem}`);
      // zone-aware "auto" means the global choice: nothing to override.
      if (parsed !== 'auto') override[option.key] = parsed;
    }
    out[service] = Object.freeze(override) as ServiceOverride;
  }
  return Object.freeze(out);
}

/** No two listeners on one address (port 0 always differs), and something to listen on. */
function checkServiceRoutes(config: ProxyConfig): void {
  if (config.listen === null && config.tcp.length === 0 && config.thrift.length === 0) throw new ConfigError('--listen none: nothing left to listen on (give --tcp or --thrift LISTEN=SERVICE, or an HTTP --listen address)');
  const taken = new Map<string, string>();
  const claim = (address: ListenAddress, flag: string) => {
    if (address.port === 0) return;
    const key = hostPort(address.host, address.port);
    const other = taken.get(key);
    if (other) throw new ConfigError(`${flag}: ${key} is already used by ${other}`);
    taken.set(key, flag);
  };
  if (config.listen) claim(config.listen, '--listen');
  claim(config.admin, '--admin');
  for (const route of config.tcp) claim(route.listen, `--tcp ${routeText(route.listen.host, route.listen.port, route.service)}`);
  for (const route of config.thrift) claim(route.listen, `--thrift ${routeText(route.listen.host, route.listen.port, route.service)}`);
}
