// The ZooKeeper options every command shares: one spec each, used in every command's table.
import { readFileSync } from 'node:fs';
import { LAYOUTS, basePathProblem } from '../znode/layout.js';
import type { ZkAuth } from '../zookeeper/client.js';
import { checked, connectString, integer, oneOf, parseDurationMs, spec, type Parser } from './options.js';

/** Digest credentials: `user:password`. */
export const parseCredentials: Parser<string> = (raw) => (/^[^:]+:.+$/.test(raw.trim()) ? raw.trim() : { problem: 'expected user:password' });

/** Credentials from the first line of a file. */
export const parseCredentialsFile: Parser<string> = (raw) => {
  let line: string | undefined;
  try {
    line = readFileSync(raw, 'utf8').split('\n')[0]?.trim();
  } catch (err) {
    return { problem: (err as Error).message };
  }
  const parsed = parseCredentials(line ?? '');
  return typeof parsed === 'string' ? parsed : { problem: `the first line must be user:password` };
};

export const ZOOKEEPER = spec('zookeeper', 'zookeeper', connectString, undefined, 'ZooKeeper connect string: every ensemble member, optional /chroot');
export const BASE_PATH = spec('base-path', 'basePath', checked(basePathProblem), '/providers', 'ZooKeeper path holding the services');
export const LAYOUT = spec('layout', 'layout', oneOf(LAYOUTS), 'nested', 'nested (<base>/<service>/<id>, JSON) or sequential (<base>/<service>NNNNNNNNNN, host:port)');
export const SESSION_TIMEOUT = spec('zookeeper-session-timeout', 'zookeeperSessionTimeoutMs', parseDurationMs, '10s', 'ZooKeeper session timeout');
export function connectTimeout(fallback: string) {
  return spec('zookeeper-connect-timeout', 'zookeeperConnectTimeoutMs', parseDurationMs, fallback, 'limit on the first ZooKeeper connection');
}
export const AUTH = [
  spec('zookeeper-auth', 'zookeeperAuth', parseCredentials, undefined, 'digest credentials for ZooKeeper: user:password', { optional: true, secret: true }),
  spec('zookeeper-auth-file', 'zookeeperAuthFile', parseCredentialsFile, undefined, 'the same, from the first line of a file', { optional: true, secret: true }),
] as const;
export const NATIVE_LOG_LEVEL = spec('zookeeper-native-log-level', 'zookeeperNativeLogLevel', integer(0, 4), '0', "the native C client's own stderr log (0 off ... 4 debug)");

/** The ZooKeeper settings of a command's configuration. */
export interface ZookeeperConfig {
  readonly zookeeper: string;
  readonly zookeeperSessionTimeoutMs: number;
  readonly zookeeperConnectTimeoutMs: number;
  readonly zookeeperAuth?: string;
  readonly zookeeperAuthFile?: string;
  readonly zookeeperNativeLogLevel: number;
}

/** The credentials to authenticate with: inline ones win over the file's. */
export function zookeeperAuth(config: Pick<ZookeeperConfig, 'zookeeperAuth' | 'zookeeperAuthFile'>): readonly ZkAuth[] | undefined {
  const credentials = config.zookeeperAuth ?? config.zookeeperAuthFile;
  return credentials === undefined ? undefined : [{ scheme: 'digest', credentials }];
}
