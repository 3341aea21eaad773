import { ConfigError, optionsHelp, parseCommandLine } from '../config/options.js';
import { buildProvidersConfig, PROVIDERS_OPTIONS, PROVIDERS_RENAMED } from '../config/providers.js';
import { zookeeperAuth } from '../config/zookeeper.js';
import { createDiscovery } from '../discovery/discovery.js';
import type { Instance } from '../discovery/provider-table.js';
import { silentLogger } from '../log.js';
import { serviceNameProblem } from '../znode/layout.js';

export const PROVIDERS_USAGE = `usage: zkroute providers --zookeeper HOST:PORT[,HOST:PORT...][/chroot] [SERVICE] [options]
Prints the services under the base path and their instances; --watch keeps printing changes.

options:
${optionsHelp(PROVIDERS_OPTIONS)}`;

interface Output {
  write(text: string): void;
}

function instanceJson(i: Instance) {
  return { id: i.id, host: i.host, port: i.port, weight: i.weight, format: i.format, path: i.path, metadata: i.metadata };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ')).join('\n');
}

function render(services: Map<string, readonly Instance[]>, json: boolean): string {
  if (json) {
    const out: Record<string, unknown> = {};
    for (const [service, instances] of services) out[service] = instances.map(instanceJson);
    return JSON.stringify({ services: out });
  }
  const rows = [['SERVICE', 'ADDRESS', 'ID', 'FORMAT', 'METADATA']];
  for (const [service, instances] of services) {
    if (instances.length === 0) rows.push([service, '-', '-', '-', '(no instances)']);
    for (const i of instances) rows.push([service, i.address, i.id, i.format, JSON.stringify(i.metadata)]);
  }
  return table(rows);
}

/** `zkroute providers`: resolves to the exit code. */
export async function providersCommand(argv: readonly string[], stdout: Output, signal?: AbortSignal): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, PROVIDERS_OPTIONS, {}, PROVIDERS_RENAMED);
  if (values['help']) {
    stdout.write(`${PROVIDERS_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 1) throw new ConfigError(`expected at most one SERVICE, got ${positionals.join(' ')}`);
  const service = positionals[0];
  if (service !== undefined && serviceNameProblem(service)) throw new ConfigError(`SERVICE ${JSON.stringify(service)}: ${serviceNameProblem(service)}`);
  const config = buildProvidersConfig(values);
  const { zookeeper, basePath: base } = config;
  const auth = zookeeperAuth(config);
  const discovery = createDiscovery(
    {
      zookeeper,
      basePath: base,
      layout: config.layout,
      sessionTimeoutMs: config.zookeeperSessionTimeoutMs,
      connectTimeoutMs: config.zookeeperConnectTimeoutMs,
      nativeLogLevel: config.zookeeperNativeLogLevel,
      ...(auth ? { auth } : {}),
    },
    { logger: silentLogger() },
  );
  try {
    await discovery.start();
    if (!(await discovery.ready())) throw new Error(`no answer from ZooKeeper at ${zookeeper} while listing ${base}`);
    if (discovery.baseMissing) throw new Error(`base path ${base} does not exist in ZooKeeper at ${zookeeper}`);
    const names = service !== undefined ? [service] : discovery.knownServices();
    const snapshot = new Map<string, readonly Instance[]>();
    for (const name of names) {
      const r = await discovery.resolve(name);
      if (r.kind === 'unknown' && service !== undefined) throw new Error(`service ${service} is not registered under ${base}`);
      snapshot.set(name, r.kind === 'instances' ? r.instances : []);
    }
    stdout.write(`${render(snapshot, config.json)}\n`);
    if (!config.watch) return 0;

    discovery.on('change', (name: string, instances: readonly Instance[]) => {
      if (service !== undefined && name !== service) return;
      const at = new Date().toISOString();
      if (config.json) stdout.write(`${JSON.stringify({ at, service: name, instances: instances.map(instanceJson) })}\n`);
      else stdout.write(`${at} ${name}: ${instances.map((i) => i.address).join(' ') || '(no instances)'}\n`);
    });
    if (service === undefined) {
      discovery.on('services', (list: string[]) => {
        for (const name of list) void discovery.resolve(name);
      });
    }
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      signal?.addEventListener('abort', stop, { once: true });
    });
    return 0;
  } finally {
    await discovery.close();
  }
}
