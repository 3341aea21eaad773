// `zkroute providers`: its options and configuration.
import type { Layout } from '../znode/layout.js';
import { buildConfig, parseBoolean, spec, type OptionSpec, type Renamed } from './options.js';
import { AUTH, BASE_PATH, connectTimeout, LAYOUT, NATIVE_LOG_LEVEL, SESSION_TIMEOUT, ZOOKEEPER, type ZookeeperConfig } from './zookeeper.js';

export interface ProvidersConfig extends ZookeeperConfig {
  readonly basePath: string;
  readonly layout: Layout;
  readonly json: boolean;
  readonly watch: boolean;
}

export const PROVIDERS_OPTIONS: readonly OptionSpec<keyof ProvidersConfig>[] = [
  ZOOKEEPER,
  BASE_PATH,
  LAYOUT,
  spec('json', 'json', parseBoolean, 'false', 'print JSON instead of a table', { boolean: true }),
  spec('watch', 'watch', parseBoolean, 'false', 'keep printing changes until interrupted', { boolean: true }),
  SESSION_TIMEOUT,
  connectTimeout('5s'),
  ...AUTH,
  NATIVE_LOG_LEVEL,
];

/** Flags that were renamed: their error names the new one. */
export const PROVIDERS_RENAMED: Renamed = {
  'connect-timeout': '--zookeeper-connect-timeout, which takes a duration (e.g. 5s); --connect-timeout is the upstream connect limit of `zkroute proxy`',
};

/** Builds `providers`' config: flags > environment > defaults. */
export function buildProvidersConfig(flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): ProvidersConfig {
  return Object.freeze(buildConfig(PROVIDERS_OPTIONS, flags, env) as unknown as ProvidersConfig);
}
