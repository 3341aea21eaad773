import { createDiscovery } from '../discovery/discovery.js';
import { serviceNameProblem } from '../discovery/paths.js';
import type { Instance } from '../discovery/provider-table.js';
import { silentLogger } from '../log.js';
import { parseArgs } from 'node:util';
import { AUTH_FLAGS, basePath, layout, positiveMs, requireZookeeper, UsageError, usageErrors, zookeeperAuthFrom } from './args.js';

export const PROVIDERS_USAGE = `usage: zkroute providers --zookeeper HOST:PORT[,HOST:PORT...][/chroot] [SERVICE]
         [--base-path /providers] [--layout nested|sequential] [--json] [--watch]
         [--zookeeper-auth user:password | --zookeeper-auth-file FILE] [--connect-timeout MS]
Prints the services under the base path and their instances; --watch keeps printing changes.`;

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
  const { values, positionals } = usageErrors(() => parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: {
    zookeeper: { type: 'string' },
    'base-path': { type: 'string' },
    layout: { type: 'string' },
    json: { type: 'boolean', default: false },
    watch: { type: 'boolean', default: false },
    ...AUTH_FLAGS,
    'connect-timeout': { type: 'string' },
    help: { type: 'boolean', default: false },
  } }));
  if (values.help) {
    stdout.write(`${PROVIDERS_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`expected at most one SERVICE, got ${positionals.join(' ')}`);
  const service = positionals[0];
  if (service !== undefined && serviceNameProblem(service)) throw new UsageError(`SERVICE ${JSON.stringify(service)}: ${serviceNameProblem(service)}`);
  const zookeeper = requireZookeeper(values.zookeeper);
  const auth = zookeeperAuthFrom(values);
  const base = basePath(values['base-path']);
  const discovery = createDiscovery(
    {
      zookeeper,
      basePath: base,
      layout: layout(values.layout),
      connectTimeoutMs: positiveMs('connect-timeout', values['connect-timeout'], 5000),
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
    stdout.write(`${render(snapshot, values.json)}\n`);
    if (!values.watch) return 0;

    discovery.on('change', (name: string, instances: readonly Instance[]) => {
      if (service !== undefined && name !== service) return;
      const at = new Date().toISOString();
      if (values.json) stdout.write(`${JSON.stringify({ at, service: name, instances: instances.map(instanceJson) })}\n`);
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
