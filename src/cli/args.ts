import { readFileSync } from 'node:fs';
import { LAYOUTS, basePathProblem, type Layout } from '../discovery/paths.js';
import { parseConnectString } from '../zookeeper/connect-string.js';
import type { ZkAuth } from '../zookeeper/client.js';

/** A configuration error: the message names the option and the value. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Runs `parse` (node's parseArgs), turning its errors into UsageError. */
export function usageErrors<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Flag value, else environment variable, else undefined. */
export function fromEnv(value: string | undefined, env: string): string | undefined {
  return value ?? process.env[env] ?? undefined;
}

export function requireZookeeper(value: string | undefined): string {
  const connect = fromEnv(value, 'ZKROUTE_ZOOKEEPER');
  if (!connect) throw new UsageError('--zookeeper is required (or set ZKROUTE_ZOOKEEPER), e.g. --zookeeper 127.0.0.1:2181');
  try {
    parseConnectString(connect);
  } catch (err) {
    throw new UsageError(`--zookeeper: ${(err as Error).message}`);
  }
  return connect;
}

export function basePath(value: string | undefined): string {
  const path = fromEnv(value, 'ZKROUTE_BASE_PATH') ?? '/providers';
  const problem = basePathProblem(path);
  if (problem) throw new UsageError(`--base-path ${JSON.stringify(path)}: ${problem}`);
  return path;
}

export function layout(value: string | undefined): Layout {
  const chosen = fromEnv(value, 'ZKROUTE_LAYOUT') ?? 'nested';
  if (!(LAYOUTS as readonly string[]).includes(chosen)) throw new UsageError(`--layout ${JSON.stringify(chosen)}: expected one of ${LAYOUTS.join(', ')}`);
  return chosen as Layout;
}

export function positiveMs(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} ${JSON.stringify(value)}: expected a positive number of milliseconds`);
  return n;
}

/** The ZooKeeper credential flags every command takes (parseArgs options, help lines). */
export const AUTH_FLAGS = {
  'zookeeper-auth': { type: 'string' },
  'zookeeper-auth-file': { type: 'string' },
} as const;

export const AUTH_USAGE = `  --zookeeper-auth user:password    digest credentials for ZooKeeper
                                   env ZKROUTE_ZOOKEEPER_AUTH
  --zookeeper-auth-file FILE        the same, from the first line of a file
                                   env ZKROUTE_ZOOKEEPER_AUTH_FILE`;

/** zookeeperAuth() from a command's parsed AUTH_FLAGS. */
export function zookeeperAuthFrom(values: Readonly<Record<string, unknown>>): ZkAuth[] | undefined {
  return zookeeperAuth(values['zookeeper-auth'] as string | undefined, values['zookeeper-auth-file'] as string | undefined);
}

/** Digest credentials from `user:password`, or from the first line of a file. */
export function zookeeperAuth(inline: string | undefined, file: string | undefined): ZkAuth[] | undefined {
  let credentials = fromEnv(inline, 'ZKROUTE_ZOOKEEPER_AUTH');
  const authFile = fromEnv(file, 'ZKROUTE_ZOOKEEPER_AUTH_FILE');
  if (!credentials && authFile) {
    try {
      credentials = readFileSync(authFile, 'utf8').split('\n')[0]?.trim();
    } catch (err) {
      throw new UsageError(`--zookeeper-auth-file ${JSON.stringify(authFile)}: ${(err as Error).message}`);
    }
  }
  if (!credentials) return undefined;
  if (!/^[^:]+:.+$/.test(credentials)) throw new UsageError('--zookeeper-auth: expected user:password');
  return [{ scheme: 'digest', credentials }];
}
