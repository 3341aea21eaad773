// `zkroute proxy`: its options, in the order the help lists them, and its frozen configuration
// (units in the names).
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { cidrProblem } from '../address-policy.js';
import { BALANCERS, type BalancerName } from '../balancer/balancer.js';
import { prefixProblem } from '../http/route.js';
import { routeText, type ListenAddress, type ServiceRoute } from '../listen.js';
import { hostPort, serviceNameProblem, type Layout } from '../znode/layout.js';
import {
  buildConfig, checked, ConfigError, integer, LOG_LEVELS, oneOf, parseBoolean, parseBytes, parseDurationMs, parseListen,
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
  readonly maxClientConnections: number;
  readonly bodyIdleTimeoutMs: number;
  readonly headerTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly websocketIdleTimeoutMs: number;
  readonly logLevel: LogLevel;
}

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
  spec('services', 'services', checked(serviceNameProblem), '', 'services watched from the start, comma list (/readyz waits for their first read); others are watched on first use', { multiple: true }),
  spec('keep-last-on-empty', 'keepLastOnEmpty', parseBoolean, 'true', 'keep routing to the last set when ZooKeeper lists none'),
  spec('allow-upstream', 'allowUpstream', checked(cidrProblem), '', 'CIDRs instance addresses must be in, comma list (default: all but link-local 169.254.0.0/16 and fe80::/10); zkroute\'s own addresses are always refused', { multiple: true }),
  spec('balancer', 'balancer', oneOf(BALANCERS), 'random', 'random, round-robin or p2c (fewest in flight of two)'),
  spec('access-log', 'accessLog', parseAccessLog, 'off', 'off, stdout, stderr or a file: one JSON line per finished request, written in batches; a file is reopened on SIGUSR1 (logrotate)'),
  spec('access-log-query', 'accessLogQuery', parseBoolean, 'false', "keep the query string in the access log's path (it may carry tokens)", { boolean: true }),
  spec('state-file', 'stateFile', parseStateFile, '', 'keep the table in this file (atomically, at most once a second); serve from it when ZooKeeper is unreachable at start'),
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
  const config = buildConfig(PROXY_OPTIONS, flags, env, file) as unknown as ProxyConfig;
  if (config.tryTimeoutMs > config.deadlineMs) throw new ConfigError(`--try-timeout ${config.tryTimeoutMs}ms is longer than --deadline ${config.deadlineMs}ms`);
  if (config.ejectionBaseMs > config.ejectionMaxMs) throw new ConfigError(`--ejection-base ${config.ejectionBaseMs}ms is longer than --ejection-max ${config.ejectionMaxMs}ms`);
  checkServiceRoutes(config);
  return Object.freeze(config);
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
