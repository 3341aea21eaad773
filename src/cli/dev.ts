import { parseArgs } from 'node:util';
import { createApp } from '../app.js';
import { buildProxyConfig } from '../config.js';
import { startDemoServices } from '../dev/demo-services.js';
import { ZooKeeperServer } from '../dev/zookeeper-server.js';
import { createLogger } from '../log.js';
import { usageErrors } from './args.js';

export const DEV_USAGE = `usage: zkroute dev [--zookeeper HOST:PORT] [--listen 127.0.0.1:4700] [--admin 127.0.0.1:4701] [--log-level warn]
Runs everything on this machine: a local ZooKeeper (Debian's package) in a temporary directory
(or --zookeeper to use one that runs), demo services hello (x2) and echo registered in it, the
proxy and the admin server. Prints curl lines to try; Ctrl-C stops everything.`;

interface Output {
  write(text: string): void;
}

/** `zkroute dev`: resolves to the exit code when interrupted. */
export async function devCommand(argv: readonly string[], stdout: Output, signal?: AbortSignal): Promise<number> {
  const { values } = usageErrors(() => parseArgs({ args: [...argv], strict: true, options: {
    zookeeper: { type: 'string' },
    listen: { type: 'string', default: '127.0.0.1:4700' },
    admin: { type: 'string', default: '127.0.0.1:4701' },
    'log-level': { type: 'string', default: 'warn' },
    help: { type: 'boolean' },
  } }));
  if (values.help) {
    stdout.write(`${DEV_USAGE}\n`);
    return 0;
  }
  const basePath = '/providers';
  let zookeeper = values.zookeeper;
  let local: ZooKeeperServer | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  const stopping = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  try {
    if (!zookeeper) {
      stdout.write('starting a local ZooKeeper...\n');
      local = await ZooKeeperServer.start({ tickTimeMs: 200 });
      cleanups.push(() => local!.close());
      zookeeper = local.connectString;
    }
    const config = buildProxyConfig({ zookeeper, listen: values.listen, admin: values.admin, 'base-path': basePath, 'log-level': values['log-level'] }, {});
    const logger = createLogger({ level: config.logLevel });
    const demos = await startDemoServices({ zookeeper, basePath }, logger);
    cleanups.push(() => demos.close());
    const app = createApp(config, { logger });
    cleanups.push(() => app.close(2000));
    await app.start();
    const proxy = app.address();
    const admin = app.adminAddress();
    const p = `http://${proxy.host}:${proxy.port}`;
    const a = `http://${admin.host}:${admin.port}`;
    stdout.write([
      '',
      `zkroute dev is running (ZooKeeper ${zookeeper}${local ? `, local, pid ${local.pid}, data in ${local.dataDir}` : ''})`,
      `  proxy ${p}   admin ${a}`,
      `  demo instances: ${demos.instances.map((i) => `${i.service}/${i.id} on 127.0.0.1:${i.port}`).join(', ')}`,
      '',
      'try:',
      `  curl ${p}/svc/hello/            # hello-1 or hello-2, picked at random`,
      `  curl -d 'hi there' ${p}/svc/echo/anything?x=1`,
      `  curl ${p}/svc/nope/              # 404 unknown_service`,
      `  curl ${a}/providers              # the table, with health`,
      `  curl ${a}/metrics                # Prometheus metrics`,
      `  node bin/zkroute.js register --zookeeper ${zookeeper} --service mine --port 8080   # add your own`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'));
    await stopping;
    stdout.write('stopping...\n');
    return 0;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
}
