import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { Agent } from 'undici';
import { hostProblem } from '../discovery/instance-data.js';
import { LAYOUTS, basePathProblem, serviceNameProblem, type Layout } from '../discovery/paths.js';
import {
  buildConfig, checked, connectString, envName, integer, LOG_LEVELS, oneOf, optionsHelp, parseArgsOptions,
  parseDurationMs, parseDurationOrZeroMs, spec, type LogLevel, type OptionSpec,
} from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { HealthCheck, httpProbe } from '../registration/health-check.js';
import { Registration } from '../registration/registration.js';
import { AUTH_FLAGS, AUTH_USAGE, UsageError, usageErrors, zookeeperAuthFrom } from './args.js';

interface RegisterConfig {
  readonly zookeeper: string;
  readonly service: string;
  readonly port: number;
  readonly host?: string;
  readonly basePath: string;
  readonly layout: Layout;
  readonly id?: string;
  readonly healthUrl?: string;
  readonly healthIntervalMs: number;
  readonly healthTimeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  readonly stopDelayMs: number;
  readonly zookeeperSessionTimeoutMs: number;
  readonly zookeeperConnectTimeoutMs: number;
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

export const REGISTER_OPTIONS: readonly OptionSpec<keyof RegisterConfig>[] = [
  spec('zookeeper', 'zookeeper', connectString, undefined, 'ZooKeeper connect string: every ensemble member, optional /chroot'),
  spec('service', 'service', checked((v) => serviceNameProblem(v)), undefined, 'service name ([A-Za-z0-9._-], at most 128)'),
  spec('port', 'port', integer(1, 65535), undefined, 'port callers reach the instance on'),
  spec('host', 'host', checked((v) => hostProblem(v)), undefined, "host callers reach the instance on [this machine's first external address]", { optional: true }),
  spec('base-path', 'basePath', checked(basePathProblem), '/providers', 'ZooKeeper path holding the services'),
  spec('layout', 'layout', oneOf(LAYOUTS), 'nested', 'nested (<base>/<service>/<id>, JSON) or sequential (<base>/<service>NNNNNNNNNN, host:port)'),
  spec('id', 'id', checked((v) => serviceNameProblem(v)), undefined, 'znode name in the nested layout [a random UUID]', { optional: true }),
  spec('health-url', 'healthUrl', checked(httpUrlProblem), undefined, 'register only while this answers 2xx/3xx', { optional: true }),
  spec('health-interval', 'healthIntervalMs', parseDurationMs, '2s', 'time between health checks'),
  spec('health-timeout', 'healthTimeoutMs', parseDurationMs, '1s', 'a check slower than this failed'),
  spec('rise', 'rise', integer(1, 100), '2', 'healthy checks in a row before registering'),
  spec('fall', 'fall', integer(1, 100), '3', 'failed checks in a row before deregistering'),
  spec('stop-delay', 'stopDelayMs', parseDurationOrZeroMs, '1s', 'with --exec: pause between deregistering and signalling the child'),
  spec('zookeeper-session-timeout', 'zookeeperSessionTimeoutMs', parseDurationMs, '10s', 'ZooKeeper session timeout'),
  spec('zookeeper-connect-timeout', 'zookeeperConnectTimeoutMs', parseDurationMs, '10s', 'limit on the first ZooKeeper connection'),
  spec('log-level', 'logLevel', oneOf(LOG_LEVELS), 'info', 'pino level'),
];

export const REGISTER_USAGE = `usage: zkroute register --zookeeper HOST:PORT[,...][/chroot] --service NAME --port PORT [options] [--exec -- CMD ARGS...]
Keeps an ephemeral znode for this instance in ZooKeeper until SIGINT/SIGTERM. With --health-url
it is registered only while healthy (rise/fall). With --exec it runs CMD, registers while it
runs, forwards signals, deregisters before stopping it, and exits with its status.

options:
${optionsHelp(REGISTER_OPTIONS)}
  --metadata KEY=VALUE              extra field in the znode JSON (repeatable)
                                   env ZKROUTE_METADATA (KEY=VALUE,KEY=VALUE)
${AUTH_USAGE}
  --exec -- CMD ARGS...             run CMD as a child process`;

function parseMetadata(pairs: readonly string[], source: string): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`${source} ${JSON.stringify(pair)}: expected KEY=VALUE`);
    const key = pair.slice(0, eq);
    if (key === 'host' || key === 'port') throw new UsageError(`${source} ${JSON.stringify(pair)}: host and port are set by --host and --port`);
    metadata[key] = pair.slice(eq + 1);
  }
  return metadata;
}

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
  const options = {
    ...parseArgsOptions(REGISTER_OPTIONS),
    metadata: { type: 'string', multiple: true },
    exec: { type: 'boolean' },
    help: { type: 'boolean' },
    ...AUTH_FLAGS,
  } as const;
  const { values, positionals } = usageErrors(() => parseArgs({ args: [...argv], options, strict: true, allowPositionals: true }));
  if (values['help']) {
    stdout.write(`${REGISTER_USAGE}\n`);
    return 0;
  }
  const exec = values['exec'] === true;
  if (exec && positionals.length === 0) throw new UsageError('--exec needs a command after --, e.g. --exec -- node server.js');
  if (!exec && positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (to run a command use --exec -- CMD)`);
  const config = buildConfig(REGISTER_OPTIONS, values, process.env) as unknown as RegisterConfig;
  const fromFlags = (values['metadata'] as string[] | undefined) ?? [];
  const fromEnv = process.env[envName('metadata')]?.split(',').filter(Boolean) ?? [];
  const metadata = parseMetadata(fromFlags.length > 0 ? fromFlags : fromEnv, fromFlags.length > 0 ? '--metadata' : envName('metadata'));
  const auth = zookeeperAuthFrom(values);
  const logger = deps.logger ?? createLogger({ level: config.logLevel });

  const registration = new Registration(
    {
      zookeeper: config.zookeeper,
      service: config.service,
      port: config.port,
      basePath: config.basePath,
      layout: config.layout,
      metadata,
      sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
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
