// `zkroute register`: its options and configuration.
import { hostProblem } from '../znode/instance-data.js';
import { serviceNameProblem, type Layout } from '../znode/layout.js';
import {
  buildConfig, checked, integer, LOG_LEVELS, oneOf, parseBoolean, parseDurationMs, parseDurationOrZeroMs, spec,
  type LogLevel, type OptionSpec, type Parser,
} from './options.js';
import { AUTH, BASE_PATH, connectTimeout, LAYOUT, NATIVE_LOG_LEVEL, SESSION_TIMEOUT, ZOOKEEPER, type ZookeeperConfig } from './zookeeper.js';

export interface RegisterConfig extends ZookeeperConfig {
  readonly service: string;
  readonly port: number;
  readonly host?: string;
  readonly basePath: string;
  readonly layout: Layout;
  readonly id?: string;
  readonly metadata: readonly (readonly [string, string])[];
  readonly healthUrl?: string;
  readonly healthIntervalMs: number;
  readonly healthTimeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  readonly stopDelayMs: number;
  readonly exec: boolean;
  readonly logLevel: LogLevel;
}

function httpUrlProblem(raw: string): string | undefined {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? undefined : 'must be an http:// or https:// URL';
  } catch {
    return 'is not a URL';
  }
}

/** `KEY=VALUE`, an extra field of the znode's JSON (host and port are the options'). */
const parseMetadataPair: Parser<readonly [string, string]> = (raw) => {
  const eq = raw.indexOf('=');
  if (eq <= 0) return { problem: 'expected KEY=VALUE' };
  const key = raw.slice(0, eq);
  if (key === 'host' || key === 'port') return { problem: 'host and port are set by --host and --port' };
  return [key, raw.slice(eq + 1)] as const;
};

export const REGISTER_OPTIONS: readonly OptionSpec<keyof RegisterConfig>[] = [
  ZOOKEEPER,
  spec('service', 'service', checked((v) => serviceNameProblem(v)), undefined, 'service name ([A-Za-z0-9._-], at most 128)'),
  spec('port', 'port', integer(1, 65535), undefined, 'port callers reach the instance on'),
  spec('host', 'host', checked((v) => hostProblem(v)), undefined, "host callers reach the instance on [this machine's first external address]", { optional: true }),
  BASE_PATH,
  LAYOUT,
  spec('id', 'id', checked((v) => serviceNameProblem(v)), undefined, 'znode name in the nested layout [a random UUID]', { optional: true }),
  spec('metadata', 'metadata', parseMetadataPair, '', 'extra field KEY=VALUE in the znode JSON', { multiple: true }),
  spec('health-url', 'healthUrl', checked(httpUrlProblem), undefined, 'register only while this answers 2xx/3xx', { optional: true }),
  spec('health-interval', 'healthIntervalMs', parseDurationMs, '2s', 'time between health checks'),
  spec('health-timeout', 'healthTimeoutMs', parseDurationMs, '1s', 'a check slower than this failed'),
  spec('rise', 'rise', integer(1, 100), '2', 'healthy checks in a row before registering'),
  spec('fall', 'fall', integer(1, 100), '3', 'failed checks in a row before deregistering'),
  spec('stop-delay', 'stopDelayMs', parseDurationOrZeroMs, '1s', 'with --exec: pause between deregistering and signalling the child'),
  spec('exec', 'exec', parseBoolean, 'false', 'run the command after -- as a child: registered while it runs, signals forwarded, deregistered before it is stopped', { boolean: true }),
  SESSION_TIMEOUT,
  connectTimeout('10s'),
  ...AUTH,
  NATIVE_LOG_LEVEL,
  spec('log-level', 'logLevel', oneOf(LOG_LEVELS), 'info', 'pino level'),
];

/** Builds `register`'s config: flags > environment > defaults. */
export function buildRegisterConfig(flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): RegisterConfig {
  return Object.freeze(buildConfig(REGISTER_OPTIONS, flags, env) as unknown as RegisterConfig);
}
