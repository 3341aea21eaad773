// `zkroute dev`: its options and configuration.
import type { ListenAddress } from '../listen.js';
import { buildConfig, connectString, LOG_LEVELS, oneOf, parseListen, spec, type LogLevel, type OptionSpec } from './options.js';

export interface DevConfig {
  /** A ZooKeeper to use; a local one is started when unset. */
  readonly zookeeper?: string;
  readonly listen: ListenAddress;
  readonly admin: ListenAddress;
  /** Where the TCP demo (`line-echo`) is proxied. */
  readonly tcp: ListenAddress;
  readonly logLevel: LogLevel;
}

export const DEV_OPTIONS: readonly OptionSpec<keyof DevConfig>[] = [
  spec('zookeeper', 'zookeeper', connectString, undefined, 'use this running ZooKeeper instead of starting a local one', { optional: true }),
  spec('listen', 'listen', parseListen, '127.0.0.1:4700', 'address to serve callers on'),
  spec('admin', 'admin', parseListen, '127.0.0.1:4701', 'admin address'),
  spec('tcp', 'tcp', parseListen, '127.0.0.1:4702', 'address of the TCP listener for the line-echo demo'),
  spec('log-level', 'logLevel', oneOf(LOG_LEVELS), 'warn', 'pino level'),
];

/** Builds `dev`'s config: flags > environment > defaults. */
export function buildDevConfig(flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): DevConfig {
  return Object.freeze(buildConfig(DEV_OPTIONS, flags, env) as unknown as DevConfig);
}
