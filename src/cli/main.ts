import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/options.js';
import { PROVIDERS_USAGE, providersCommand } from './providers.js';
import { PROXY_USAGE, proxyCommand } from './proxy.js';
import { REGISTER_USAGE, registerCommand } from './register.js';
import { DEV_USAGE, devCommand } from './dev.js';

const USAGE = `usage: zkroute <command> [options]

commands:
  dev         run everything locally: ZooKeeper, demo services, the proxy (try this first)
  proxy       run the sidecar: /svc/<service>/... forwarded to an instance from ZooKeeper
  register    keep this instance's ephemeral znode in ZooKeeper (optionally health-checked, or around --exec)
  providers   list services and instances from ZooKeeper (--watch to follow changes)
  version     print the version
  help        show this text

${DEV_USAGE}

${PROXY_USAGE}

${REGISTER_USAGE}

${PROVIDERS_USAGE}
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      case 'version':
      case '--version':
        process.stdout.write(`${version()}\n`);
        return 0;
      case 'dev':
        return await devCommand(rest, process.stdout);
      case 'proxy':
        return await proxyCommand(rest, process.stdout);
      case 'register':
        return await registerCommand(rest, process.stdout);
      case 'providers':
        return await providersCommand(rest, process.stdout);
      default:
        throw new ConfigError(`unknown command "${command}" (try: zkroute help)`);
    }
  } catch (err) {
    // One clear line, non-zero exit: 2 for usage, 1 for everything else.
    process.stderr.write(`zkroute ${command ?? ''}: ${(err as Error).message}\n`.replace('  ', ' '));
    return err instanceof ConfigError ? 2 : 1;
  }
}
