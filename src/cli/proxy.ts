import cluster from 'node:cluster';
import { createApp } from '../app.js';
import { isMessage, type ToWorker } from '../cluster/messages.js';
import { createClusterPrimary } from '../cluster/primary.js';
import { runWorker } from '../cluster/worker.js';
import { ConfigError, optionsHelp, parseCommandLine, printable, readConfigFile } from '../config/options.js';
import { buildProxyConfig, PROXY_OPTIONS, type ProxyConfig } from '../config/proxy.js';
import { createLogger, type Logger } from '../log.js';

export const PROXY_USAGE = `usage: zkroute proxy --zookeeper HOST:PORT[,HOST:PORT...][/chroot] [options]
Runs the sidecar: http://<listen>/<prefix>/<service>/<path> is forwarded to an instance of
<service> from ZooKeeper as /<path>. Durations take ms, s, m or h (a bare number is ms).
Precedence: flags > environment > --config file > defaults.

options:
${optionsHelp(PROXY_OPTIONS)}
  --config FILE                     JSON object of option names (the flags) to values
                                   env ZKROUTE_CONFIG
  --print-config                    print the effective configuration as JSON and exit`;

interface Output {
  write(text: string): void;
}

export interface ProxyCommandDeps {
  readonly logger?: Logger;
  /** Stops the proxy when aborted (tests); SIGINT and SIGTERM always do. */
  readonly signal?: AbortSignal;
  /** Called once listening, with the bound address. */
  readonly onListening?: (address: { host: string; port: number }) => void;
  /** Exits the process at once (a second signal during drain); injectable for tests. */
  readonly exitNow?: (code: number) => never;
}

/** `zkroute proxy`: runs until SIGINT/SIGTERM, then drains; resolves to the exit code. */
export async function proxyCommand(argv: readonly string[], stdout: Output, deps: ProxyCommandDeps = {}): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, PROXY_OPTIONS, { config: { type: 'string' }, 'print-config': { type: 'boolean' } });
  if (values['help']) {
    stdout.write(`${PROXY_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new ConfigError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const configPath = (values['config'] as string | undefined) ?? (process.env['ZKROUTE_CONFIG'] || undefined);
  const file = configPath !== undefined ? readConfigFile(configPath, PROXY_OPTIONS) : undefined;
  const config = buildProxyConfig(values, process.env, file);
  if (values['print-config']) {
    stdout.write(`${printable(config, PROXY_OPTIONS)}\n`);
    return 0;
  }
  const logger = deps.logger ?? createLogger({ level: config.logLevel });
  if (config.workers > 1 && cluster.isWorker) return workerCommand(config, logger.child({ worker: cluster.worker?.id }));
  const app = config.workers > 1
    ? createClusterPrimary(config, { logger })
    : createApp(config, { logger });
  try {
    await app.start();
  } catch (err) {
    await app.close(0).catch(() => {});
    throw err;
  }
  deps.onListening?.(app.address());
  // logrotate moved the access log: write to a new file of that name (a listener also keeps
  // Node from opening its inspector on SIGUSR1).
  const reopen = () => app.reopenAccessLog();
  process.on('SIGUSR1', reopen);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    deps.signal?.addEventListener('abort', () => resolve('abort'), { once: true });
  });
  // A second signal while draining: stop at once.
  const exitNow = deps.exitNow ?? ((code: number) => process.exit(code));
  const again = (second: NodeJS.Signals) => {
    logger.warn({ signal: second }, 'second signal: exiting without finishing the drain');
    if ('kill' in app) app.kill();
    logger.flush?.();
    exitNow(second === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', again);
  process.once('SIGTERM', again);
  logger.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, 'draining: readiness 503, finishing requests in flight');
  try {
    await app.close();
  } finally {
    process.off('SIGINT', again);
    process.off('SIGTERM', again);
    process.off('SIGUSR1', reopen);
  }
  logger.info('stopped');
  logger.flush?.();
  return 0;
}

/**
 * A cluster worker (`--workers N`): serves the shared port from the primary's table until the
 * primary says drain, its own SIGINT/SIGTERM arrives, or the primary is gone.
 */
async function workerCommand(config: ProxyConfig, logger: Logger): Promise<number> {
  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    process.once('disconnect', () => resolve());
  });
  try {
    await runWorker(config, {
      logger,
      stop,
      channel: {
        send: (message) => {
          if (process.connected) process.send!(message);
        },
        onMessage: (listener) => process.on('message', (message: unknown) => {
          if (isMessage<ToWorker>(message)) listener(message);
        }),
      },
    });
  } finally {
    logger.flush?.();
    // The IPC channel would keep the worker alive.
    if (process.connected) process.disconnect();
  }
  return 0;
}
