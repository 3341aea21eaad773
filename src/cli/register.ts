import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { Agent } from 'undici';
import { ConfigError, optionsHelp, parseCommandLine } from '../config/options.js';
import { buildRegisterConfig, REGISTER_OPTIONS } from '../config/register.js';
import { zookeeperAuth } from '../config/zookeeper.js';
import { createLogger, type Logger } from '../log.js';
import { HealthCheck, httpProbe } from '../registration/health-check.js';
import { Registration } from '../registration/registration.js';

export const REGISTER_USAGE = `usage: zkroute register --zookeeper HOST:PORT[,...][/chroot] --service NAME --port PORT [options] [--exec -- CMD ARGS...]
Keeps an ephemeral znode for this instance in ZooKeeper until SIGINT/SIGTERM. With --health-url
it is registered only while healthy (rise/fall). With --exec it runs CMD, registers while it
runs, forwards signals, deregisters before stopping it, and exits with its status.

options:
${optionsHelp(REGISTER_OPTIONS)}`;

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

interface Output {
  write(text: string): void;
}

export interface RegisterCommandDeps {
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
}

/** `zkroute register`: resolves to the exit code. */
export async function registerCommand(argv: readonly string[], stdout: Output, deps: RegisterCommandDeps = {}): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, REGISTER_OPTIONS);
  if (values['help']) {
    stdout.write(`${REGISTER_USAGE}\n`);
    return 0;
  }
  const config = buildRegisterConfig(values);
  const { exec } = config;
  if (exec && positionals.length === 0) throw new ConfigError('--exec needs a command after --, e.g. --exec -- node server.js');
  if (!exec && positionals.length > 0) throw new ConfigError(`unexpected argument ${JSON.stringify(positionals[0])} (to run a command use --exec -- CMD)`);
  const auth = zookeeperAuth(config);
  const logger = deps.logger ?? createLogger({ level: config.logLevel });

  const registration = new Registration(
    {
      zookeeper: config.zookeeper,
      service: config.service,
      port: config.port,
      basePath: config.basePath,
      layout: config.layout,
      metadata: Object.fromEntries(config.metadata),
      sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
      nativeLogLevel: config.zookeeperNativeLogLevel,
      connectTimeoutMs: config.zookeeperConnectTimeoutMs,
      ...(config.host !== undefined ? { host: config.host } : {}),
      ...(config.id !== undefined ? { id: config.id } : {}),
      ...(auth ? { auth } : {}),
    },
    { logger },
  );
  try {
    await registration.start();
  } catch (err) {
    await registration.close().catch(() => {});
    throw err;
  }

  // Stop on a signal, on abort (tests), or when the child exits by itself.
  let stopWith: ((why: { signal?: NodeJS.Signals; childExit?: number }) => void) | undefined;
  const stopped = new Promise<{ signal?: NodeJS.Signals; childExit?: number }>((resolve) => (stopWith = resolve));
  const onSignal = (signal: NodeJS.Signals) => stopWith?.({ signal });
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  deps.signal?.addEventListener('abort', () => stopWith?.({ signal: 'SIGTERM' }), { once: true });

  let child: ChildProcess | undefined;
  let childExited: Promise<number> | undefined;
  const forward = (signal: NodeJS.Signals) => child?.kill(signal);
  if (exec) {
    const [command, ...args] = positionals as [string, ...string[]];
    child = spawn(command, args, { stdio: 'inherit' });
    childExited = new Promise<number>((resolve) => {
      child!.once('error', (err) => {
        logger.error({ err, command }, 'could not start the command');
        resolve(127);
      });
      child!.once('exit', (code, signal) => resolve(exitCodeOf(code, signal)));
    });
    void childExited.then((code) => stopWith?.({ childExit: code }));
    for (const signal of ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(signal, forward);
  }

  let health: HealthCheck | undefined;
  const probeAgent = new Agent({ keepAliveTimeout: 1000 });
  try {
    if (config.healthUrl) {
      health = new HealthCheck({ intervalMs: config.healthIntervalMs, rise: config.rise, fall: config.fall }, httpProbe(config.healthUrl, config.healthTimeoutMs, probeAgent));
      health.on('up', () => {
        logger.info({ url: config.healthUrl }, 'healthy: registering');
        registration.announce().catch((err: unknown) => logger.error({ err }, 'could not register'));
      });
      health.on('down', () => {
        logger.warn({ url: config.healthUrl }, 'unhealthy: deregistering');
        registration.withdraw().catch((err: unknown) => logger.error({ err }, 'could not deregister'));
      });
      health.start();
    } else {
      await registration.announce();
    }

    const why = await stopped;
    // Deregister first, so callers stop being sent here before the service stops answering.
    health?.close();
    await registration.withdraw().catch((err: unknown) => logger.warn({ err }, 'could not delete the node; closing the session removes it'));
    let code = 0;
    if (child && childExited) {
      if (why.childExit === undefined) {
        if (config.stopDelayMs > 0) await new Promise((r) => setTimeout(r, config.stopDelayMs));
        child.kill(why.signal ?? 'SIGTERM');
      }
      code = await childExited;
    }
    logger.info({ code }, 'stopped');
    return code;
  } finally {
    health?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const signal of ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.off(signal, forward);
    await registration.close();
    await probeAgent.close();
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    logger.flush?.();
  }
}
