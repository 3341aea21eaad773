import cluster from 'node:cluster';
import { createApp } from '../app.js';
import { isMessage, type ToWorker } from '../cluster/messages.js';
import { createClusterPrimary, WORKER_CONFIG_ENV } from '../cluster/primary.js';
import { runWorker } from '../cluster/worker.js';
import { ConfigError, optionsHelp, parseCommandLine, printable, readConfigFile } from '../config/options.js';
import { buildProxyConfig, effectiveServiceSettings, PROXY_OPTIONS, type ProxyConfig } from '../config/proxy.js';
import { planReload } from '../config/reload.js';
import type { ProxyRuntime } from '../control.js';
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
  // A cluster worker runs with the primary's configuration (reloads included), never re-reading the file.
  const inherited = cluster.isWorker ? process.env[WORKER_CONFIG_ENV] : undefined;
  if (inherited !== undefined) {
    const config = Object.freeze(JSON.parse(inherited)) as ProxyConfig;
    return workerCommand(config, (deps.logger ?? createLogger({ level: config.logLevel })).child({ worker: cluster.worker?.id }));
  }
  const configPath = (values['config'] as string | undefined) ?? (process.env['ZKROUTE_CONFIG'] || undefined);
  const readConfig = () => buildProxyConfig(values, process.env, configPath !== undefined ? readConfigFile(configPath, PROXY_OPTIONS) : undefined);
  const config = readConfig();
  if (values['print-config']) {
    // With the settings each service named in the file's `services` object runs with.
    const effective = Object.fromEntries(Object.keys(config.serviceSettings).map((service) => [service, effectiveServiceSettings(config, service)]));
    stdout.write(`${printable({ ...config, effectiveServiceSettings: effective }, PROXY_OPTIONS)}\n`);
    return 0;
  }
  const logger = deps.logger ?? createLogger({ level: config.logLevel });
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
  // SIGHUP: re-read --config and apply what may change without a restart.
  const reload = () => reloadConfig(configPath, readConfig, app, logger);
  process.on('SIGHUP', reload);
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
    process.off('SIGHUP', reload);
  }
  logger.info('stopped');
  logger.flush?.();
  return 0;
}

/**
 * One SIGHUP: the file read again (flags and environment still win over it), then the options
 * that may change applied and logged; options that need a restart named in a warning and kept;
 * an invalid file, or one whose change cannot be applied, changes nothing and says why. The
 * runtime keeps the configuration in force (`config()`).
 */
export function reloadConfig(configPath: string | undefined, read: () => ProxyConfig, app: Pick<ProxyRuntime, 'reconfigure' | 'config'>, logger: Logger): void {
  const current = app.config();
  if (configPath === undefined) {
    logger.warn('SIGHUP: no --config file to re-read; the configuration is unchanged');
    return;
  }
  let next: ProxyConfig;
  try {
    next = read();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    logger.error({ config: configPath, problem: err.message }, `reload refused, the configuration is unchanged: ${err.message}`);
    return;
  }
  const plan = planReload(current, next);
  if (plan.restartOnly.length > 0) logger.warn({ config: configPath, options: plan.restartOnly }, `reload: ${plan.restartOnly.join(', ')} changed in the file but only take effect after a restart; left as they are`);
  if (plan.changed.length === 0) return void logger.info({ config: configPath }, 'reload: nothing to change');
  try {
    app.reconfigure(plan.config);
  } catch (err) {
    logger.error({ config: configPath, err }, `reload refused, the configuration is unchanged: ${(err as Error).message}`);
    return;
  }
  logger.info({ config: configPath, changed: plan.changed }, `configuration reloaded: ${plan.changed.map((c) => c.flag).join(', ')}`);
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
  // A SIGHUP sent to the process group reaches workers too: the primary re-reads the file and
  // sends the result; here it must not end the process (SIGHUP's default action).
  const ignoreHangup = () => {};
  process.on('SIGHUP', ignoreHangup);
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
    process.off('SIGHUP', ignoreHangup);
    logger.flush?.();
    // The IPC channel would keep the worker alive.
    if (process.connected) process.disconnect();
  }
  return 0;
}
