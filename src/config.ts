// The proxy's configuration: every option has a flag, a ZKROUTE_* environment variable and a
// key in the optional JSON file (flags > environment > file > defaults). Values are validated here; a bad one stops start-up with a message that names
// the option and the value. The result is frozen and carries units in its names.
import { readFileSync } from 'node:fs';
import { BALANCERS, type BalancerName } from './balancer/balancer.js';
import { LAYOUTS, basePathProblem, type Layout } from './discovery/paths.js';
import { prefixProblem } from './proxy/route.js';
import { parseConnectString } from './zookeeper/connect-string.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ProxyConfig {
  readonly zookeeper: string;
  readonly zookeeperSessionTimeoutMs: number;
  readonly zookeeperConnectTimeoutMs: number;
  readonly basePath: string;
  readonly layout: Layout;
  readonly keepLastOnEmpty: boolean;
  readonly listen: ListenAddress;
  readonly admin: ListenAddress;
  readonly drainTimeoutMs: number;
  readonly workers: number;
  readonly prefix: string;
  readonly balancer: BalancerName;
  readonly preserveHost: boolean;
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
  readonly bodyIdleTimeoutMs: number;
  readonly headerTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly websocketIdleTimeoutMs: number;
  readonly logLevel: LogLevel;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where a raw value came from, for error messages. */
interface Raw {
  readonly value: string;
  readonly source: string;
}

export type Parser<T> = (raw: string) => T | { problem: string };

function problem(p: string): { problem: string } {
  return { problem: p };
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `250ms`, `1s`, `1.5s`, `5m`, `1h`; a bare number is milliseconds. */
export function parseDurationMs(raw: string): number | { problem: string } {
  const m = DURATION.exec(raw.trim());
  if (!m) return problem('expected a duration such as 250ms, 1s, 5m (a bare number is milliseconds)');
  const ms = Number(m[1]) * DURATION_UNIT_MS[m[2] ?? 'ms']!;
  if (ms <= 0) return problem('must be above zero');
  if (ms > 2_147_483_647) return problem('is longer than a timer can hold (about 24 days)');
  return Math.round(ms);
}

/** Like parseDurationMs, but 0 (`0`, `0s`) is allowed: "no delay". */
export function parseDurationOrZeroMs(raw: string): number | { problem: string } {
  const m = DURATION.exec(raw.trim());
  if (m && Number(m[1]) === 0) return 0;
  return parseDurationMs(raw);
}

const SIZE = /^(\d+)(b|k|kb|kib|m|mb|mib)?$/i;

/** `65536`, `64k`, `64KiB`, `1m` (binary units). */
export function parseBytes(raw: string): number | { problem: string } {
  const m = SIZE.exec(raw.trim());
  if (!m) return problem('expected a size such as 65536, 64KiB or 1MiB');
  const unit = (m[2] ?? 'b').toLowerCase();
  const bytes = Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1);
  if (bytes > 64 * 1024 * 1024) return problem('is above the 64 MiB the proxy will hold per request');
  return bytes;
}

export function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) return problem(`expected a whole number from ${min} to ${max}`);
    const n = Number(raw);
    return n >= min && n <= max ? n : problem(`expected a whole number from ${min} to ${max}`);
  };
}

export function oneOf<T extends string>(choices: readonly T[]): Parser<T> {
  return (raw) => ((choices as readonly string[]).includes(raw) ? (raw as T) : problem(`expected one of ${choices.join(', ')}`));
}

export function parseBoolean(raw: string): boolean | { problem: string } {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return problem('expected true or false');
}

/** `127.0.0.1:4700`, `[::1]:4700`, `localhost:0`, or `:4700` (loopback). */
export function parseListen(raw: string): ListenAddress | { problem: string } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw.trim());
  if (!m) return problem('expected HOST:PORT, e.g. 127.0.0.1:4700 or [::1]:4700');
  const port = Number(m[3]);
  if (port > 65535) return problem('port must be 0-65535');
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function connectString(raw: string): string | { problem: string } {
  try {
    parseConnectString(raw);
    return raw;
  } catch (err) {
    return problem((err as Error).message);
  }
}

export function checked(check: (raw: string) => string | undefined): Parser<string> {
  return (raw) => {
    const p = check(raw);
    return p ? problem(p) : raw;
  };
}

/** One option: its flag, its variable (ZKROUTE_ + upper snake case of the flag), parser, default. */
export interface OptionSpec<K extends string = string> {
  readonly flag: string;
  readonly key: K;
  readonly parse: Parser<unknown>;
  /** Default as text (parsed like user input); undefined: required unless `optional`. */
  readonly fallback: string | undefined;
  readonly optional?: boolean;
  readonly boolean?: boolean;
  readonly help: string;
}

export function spec<K extends string>(flag: string, key: K, parse: Parser<unknown>, fallback: string | undefined, help: string, extra: { boolean?: boolean; optional?: boolean } = {}): OptionSpec<K> {
  return { flag, key, parse, fallback, help, ...extra };
}

/**
 * Reads every option from flag values (strings as parseArgs gives them, `true` for boolean
 * flags), else the environment, else the default. Throws ConfigError naming option and value.
 */
export function buildConfig<K extends string>(specs: readonly OptionSpec<K>[], flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv, file?: ConfigFile): Record<K, unknown> {
  const out: Record<string, unknown> = {};
  for (const option of specs) {
    const flagValue = flags[option.flag];
    const envValue = env[envName(option.flag)];
    const fileValue = file?.values[option.flag];
    const raw: Raw | undefined = flagValue !== undefined
      ? { value: String(flagValue), source: `--${option.flag}` }
      : envValue !== undefined && envValue !== ''
        ? { value: envValue, source: envName(option.flag) }
        : fileValue !== undefined
          ? { value: String(fileValue), source: `${file!.name} key "${option.flag}"` }
          : option.fallback !== undefined ? { value: option.fallback, source: `default of --${option.flag}` } : undefined;
    if (!raw) {
      if (option.optional) continue;
      throw new ConfigError(`--${option.flag} is required (or set ${envName(option.flag)})`);
    }
    const parsed = option.parse(raw.value);
    if (typeof parsed === 'object' && parsed !== null && 'problem' in parsed) {
      throw new ConfigError(`${raw.source} ${JSON.stringify(raw.value)}: ${(parsed as { problem: string }).problem}`);
    }
    out[option.key] = parsed;
  }
  return out as Record<K, unknown>;
}

/** A parsed configuration file: option values by flag name. */
export interface ConfigFile {
  readonly name: string;
  readonly values: Readonly<Record<string, string | number | boolean>>;
}

/**
 * Reads a JSON configuration file whose keys are the flag names (`"retries": 2`,
 * `"preserve-host": true`). Unknown keys and non-scalar values are errors naming the key.
 */
export function readConfigFile(path: string, specs: readonly OptionSpec[], read: (path: string) => string = (p) => readFileSync(p, 'utf8')): ConfigFile {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    throw new ConfigError(`--config ${JSON.stringify(path)}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--config ${JSON.stringify(path)}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`--config ${JSON.stringify(path)}: expected a JSON object of option names to values`);
  const known = new Set(specs.map((s) => s.flag));
  const values: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!known.has(key)) throw new ConfigError(`${path} key "${key}": not an option (keys are the flag names, e.g. "listen", "retries")`);
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw new ConfigError(`${path} key "${key}": expected a string, number or boolean, got ${JSON.stringify(value)}`);
    values[key] = value;
  }
  return { name: path, values };
}

/** The parseArgs option table for `specs`. */
export function parseArgsOptions(specs: readonly OptionSpec[]): Record<string, { type: 'string' | 'boolean' }> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const o of specs) options[o.flag] = { type: o.boolean ? 'boolean' : 'string' };
  return options;
}

/** The options block of a command's --help. */
export function optionsHelp(specs: readonly OptionSpec[]): string {
  return specs.map((o) => {
    const left = `  --${o.flag}${o.boolean ? '' : ' VALUE'}`;
    const suffix = o.fallback !== undefined ? ` [${o.fallback}]` : o.optional ? '' : ' (required)';
    return `${left.padEnd(34)} ${o.help}${suffix}\n${' '.repeat(35)}env ${envName(o.flag)}`;
  }).join('\n');
}

/** Every proxy option, in the order the help lists them. */
export const PROXY_OPTIONS: readonly OptionSpec<keyof ProxyConfig>[] = [
  spec('zookeeper', 'zookeeper', connectString, undefined, 'ZooKeeper connect string: every ensemble member, optional /chroot'),
  spec('listen', 'listen', parseListen, '127.0.0.1:4700', 'address to serve callers on'),
  spec('admin', 'admin', parseListen, '127.0.0.1:4701', 'admin address: /healthz /readyz /providers /metrics'),
  spec('drain-timeout', 'drainTimeoutMs', parseDurationMs, '10s', 'on SIGTERM/SIGINT, longest wait for requests in flight'),
  spec('workers', 'workers', integer(1, 256), '1', 'proxy processes sharing the listen port (node:cluster); one ZooKeeper session and the admin port stay in the primary'),
  spec('prefix', 'prefix', checked(prefixProblem), '/svc', 'route prefix: <prefix>/<service>/<path>'),
  spec('base-path', 'basePath', checked(basePathProblem), '/providers', 'ZooKeeper path holding the services'),
  spec('layout', 'layout', oneOf(LAYOUTS), 'nested', 'nested (/base/<service>/<id>) or sequential (/base/<service>0000000007)'),
  spec('keep-last-on-empty', 'keepLastOnEmpty', parseBoolean, 'true', 'keep routing to the last set when ZooKeeper lists none'),
  spec('balancer', 'balancer', oneOf(BALANCERS), 'random', 'random, round-robin or p2c (fewest in flight of two)'),
  spec('preserve-host', 'preserveHost', parseBoolean, 'false', "send the caller's Host header instead of the instance's host:port", { boolean: true }),
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
  spec('body-idle-timeout', 'bodyIdleTimeoutMs', parseDurationMs, '300s', 'longest pause inside an upstream response body'),
  spec('header-timeout', 'headerTimeoutMs', parseDurationMs, '10s', 'time a caller has to send request headers (then 408)'),
  spec('client-idle-timeout', 'clientIdleTimeoutMs', parseDurationMs, '60s', 'idle caller keep-alive connections closed after'),
  spec('websocket-idle-timeout', 'websocketIdleTimeoutMs', parseDurationMs, '300s', 'WebSocket tunnel closed after this long without traffic'),
  spec('zookeeper-session-timeout', 'zookeeperSessionTimeoutMs', parseDurationMs, '10s', 'ZooKeeper session timeout'),
  spec('zookeeper-connect-timeout', 'zookeeperConnectTimeoutMs', parseDurationMs, '10s', 'limit on the first ZooKeeper connection at start-up'),
  spec('log-level', 'logLevel', oneOf(LOG_LEVELS), 'info', 'pino level (debug logs one line per request)'),
];

export function envName(flag: string): string {
  return `ZKROUTE_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Builds the proxy's config: flags > environment > file > defaults (see buildConfig). */
export function buildProxyConfig(flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env, file?: ConfigFile): ProxyConfig {
  const config = buildConfig(PROXY_OPTIONS, flags, env, file) as unknown as ProxyConfig;
  if (config.tryTimeoutMs > config.deadlineMs) throw new ConfigError(`--try-timeout ${config.tryTimeoutMs}ms is longer than --deadline ${config.deadlineMs}ms`);
  if (config.ejectionBaseMs > config.ejectionMaxMs) throw new ConfigError(`--ejection-base ${config.ejectionBaseMs}ms is longer than --ejection-max ${config.ejectionMaxMs}ms`);
  return Object.freeze(config);
}

/** The options block of `zkroute proxy --help`. */
export function proxyOptionsHelp(): string {
  return optionsHelp(PROXY_OPTIONS);
}
