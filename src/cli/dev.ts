import { createApp } from '../app.js';
import { buildDevConfig, DEV_OPTIONS } from '../config/dev.js';
import { ConfigError, optionsHelp, parseCommandLine } from '../config/options.js';
import { buildProxyConfig } from '../config/proxy.js';
import { startDemoServices } from '../dev/demo-services.js';
import { ZooKeeperServer } from '../dev/zookeeper-server.js';
import { createLogger } from '../log.js';
import { hostPort } from '../znode/layout.js';

export const DEV_USAGE = `usage: zkroute dev [options]
Runs everything on this machine: a local ZooKeeper (Debian's package) in a temporary directory
(or --zookeeper to use one that runs), demo services hello (x2) and echo registered in it, the
proxy and the admin server. Prints curl lines to try; Ctrl-C stops everything.

options:
${optionsHelp(DEV_OPTIONS)}`;

interface Output {
  write(text: string): void;
}

/** `zkroute dev`: resolves to the exit code when interrupted. */
export async function devCommand(argv: readonly string[], stdout: Output, signal?: AbortSignal): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, DEV_OPTIONS);
  if (values['help']) {
    stdout.write(`${DEV_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new ConfigError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const dev = buildDevConfig(values);
  const basePath = '/providers';
  let zookeeper = dev.zookeeper;
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
    const at = (a: { host: string; port: number }) => hostPort(a.host, a.port);
    const config = buildProxyConfig({ zookeeper, listen: at(dev.listen), admin: at(dev.admin), tcp: [`${at(dev.tcp)}=line-echo`], 'base-path': basePath, 'log-level': dev.logLevel }, {});
    const logger = createLogger({ level: config.logLevel });
    const demos = await startDemoServices({ zookeeper, basePath }, logger);
    cleanups.push(() => demos.close());
    const app = createApp(config, { logger });
    cleanups.push(() => app.close(2000));
    await app.start();
    const proxy = app.address();
    const admin = app.adminAddress();
    const lineEcho = app.addresses().tcp[0]!;
    const p = `http://${proxy.host}:${proxy.port}`;
    const a = `http://${admin.host}:${admin.port}`;
    stdout.write([
      '',
      `zkroute dev is running (ZooKeeper ${zookeeper}${local ? `, local, pid ${local.pid}, data in ${local.dataDir}` : ''})`,
      `  proxy ${p}   admin ${a}   tcp ${lineEcho.host}:${lineEcho.port} -> line-echo`,
      `  demo instances: ${demos.instances.map((i) => `${i.service}/${i.id} on 127.0.0.1:${i.port}`).join(', ')}`,
      '',
      'try:',
      `  curl ${p}/svc/hello/            # hello-1 or hello-2, picked at random`,
      `  curl -d 'hi there' ${p}/svc/echo/anything?x=1`,
      `  curl ${p}/svc/nope/              # 404 unknown_service`,
      `  printf 'hi\\n' | nc ${lineEcho.host} ${lineEcho.port}   # line-echo over plain TCP, through the proxy`,
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
