import { parseArgs } from 'node:util';
import { createApp } from '../app.js';
import { buildProxyConfig, ConfigError, parseArgsOptions, PROXY_OPTIONS, proxyOptionsHelp } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { UsageError, usageErrors, zookeeperAuth } from './args.js';

export const PROXY_USAGE = `usage: zkroute proxy --zookeeper HOST:PORT[,HOST:PORT...][/chroot] [options]
Runs the sidecar: http://<listen>/<prefix>/<service>/<path> is forwarded to an instance of
<service> from ZooKeeper as /<path>. Durations take ms, s, m or h (a bare number is ms).

options:
${proxyOptionsHelp()}
  --zookeeper-auth user:password    digest credentials for ZooKeeper
                                   env ZKROUTE_ZOOKEEPER_AUTH
  --zookeeper-auth-file FILE        the same, from the first line of a file
                                   env ZKROUTE_ZOOKEEPER_AUTH_FILE`;

interface Output {
  write(text: string): void;
}

export interface ProxyCommandDeps {
  readonly logger?: Logger;
  /** Stops the proxy when aborted (tests); SIGINT and SIGTERM always do. */
  readonly signal?: AbortSignal;
  /** Called once listening, with the bound address. */
  readonly onListening?: (address: { host: string; port: number }) => void;
}

/** `zkroute proxy`: runs until SIGINT/SIGTERM; resolves to the exit code. */
export async function proxyCommand(argv: readonly string[], stdout: Output, deps: ProxyCommandDeps = {}): Promise<number> {
  const options = { ...parseArgsOptions(PROXY_OPTIONS), help: { type: 'boolean' }, 'zookeeper-auth': { type: 'string' }, 'zookeeper-auth-file': { type: 'string' } } as const;
  const { values, positionals } = usageErrors(() => parseArgs({ args: [...argv], options, strict: true, allowPositionals: true }));
  if (values['help']) {
    stdout.write(`${PROXY_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  let config;
  try {
    config = buildProxyConfig(values as Record<string, string | boolean | undefined>);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  const auth = zookeeperAuth(values['zookeeper-auth'] as string | undefined, values['zookeeper-auth-file'] as string | undefined);
  const logger = deps.logger ?? createLogger({ level: config.logLevel });
  const app = createApp(config, { logger, ...(auth ? { auth } : {}) });
  try {
    await app.start();
  } catch (err) {
    await app.close(0).catch(() => {});
    throw err;
  }
  deps.onListening?.(app.address());
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    deps.signal?.addEventListener('abort', stop, { once: true });
  });
  logger.info('stopping: finishing requests in flight');
  await app.close();
  logger.info('stopped');
  logger.flush?.();
  return 0;
}
