#!/usr/bin/env node
// Replays the Dockerfile on this machine, as no Docker engine runs here: each stage gets its own
// directory standing in for the image's root, WORKDIR/COPY/ENV/RUN are carried out there
// (apt-get lines are checked instead: the packages must be installed), then the final stage is
// smoke-tested: version, effective config from the image's ENV, the native addon loading from
// the pruned node_modules, no dev dependencies left, and the JSON-form CMD/ENTRYPOINT/HEALTHCHECK.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lines = readFileSync(path.join(repo, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const work = mkdtempSync(path.join(tmpdir(), 'zkroute-docker-'));
const keep = process.argv.includes('--keep');
const fail = (message) => {
  console.error(`check-dockerfile: ${message}`);
  process.exitCode = 1;
};
const stages = [];
let stage;

/** An absolute path inside the image -> its place in the stage's directory. */
const inStage = (s, p) => path.join(s.root, path.isAbsolute(p) ? p : path.join(s.workdir, p));
const ignored = readFileSync(path.join(repo, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);

try {
  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    switch (instruction.toUpperCase()) {
      case 'FROM': {
        const name = /\bAS\s+(\S+)/i.exec(args)?.[1];
        stage = { name, image: rest[0], root: path.join(work, `stage-${stages.length}`), workdir: '/', env: {}, meta: {} };
        mkdirSync(stage.root, { recursive: true });
        stages.push(stage);
        break;
      }
      case 'WORKDIR':
        stage.workdir = args;
        mkdirSync(inStage(stage, args), { recursive: true });
        break;
      case 'ENV': {
        const m = /^(\S+?)[= ](.*)$/.exec(args);
        stage.env[m[1]] = m[2];
        break;
      }
      case 'COPY': {
        const from = /^--from=(\S+)\s+/.exec(args);
        const parts = (from ? args.slice(from[0].length) : args).split(/\s+/);
        const dest = parts.pop();
        const source = from ? stages.find((s) => s.name === from[1]) : undefined;
        if (from && !source) throw new Error(`COPY --from=${from[1]}: no such stage`);
        for (const src of parts) {
          const origin = source ? inStage(source, src) : path.join(repo, src);
          if (!existsSync(origin)) throw new Error(`${line}: ${src} does not exist`);
          const target = dest.endsWith('/') || parts.length > 1 ? path.join(inStage(stage, dest), path.basename(src)) : inStage(stage, dest);
          mkdirSync(path.dirname(target), { recursive: true });
          cpSync(origin, target, { recursive: true, filter: (p) => source !== undefined || !ignored.some((i) => path.relative(repo, p).split(path.sep)[0] === i) });
        }
        break;
      }
      case 'RUN': {
        for (const command of args.split(/\s*&&\s*/)) {
          if (/^apt-get\s+install\b/.test(command)) {
            const packages = command.split(/\s+/).slice(2).filter((w) => !w.startsWith('-'));
            const missing = packages.filter((p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore' }).status !== 0);
            if (missing.length > 0) throw new Error(`${line}: packages not installed here: ${missing.join(' ')}`);
            console.log(`check-dockerfile: apt-get install checked (installed): ${packages.join(' ')}`);
            continue;
          }
          if (/^(apt-get|rm -rf \/var\/lib\/apt)/.test(command)) continue;
          // Absolute image paths point into the stage's directory.
          const local = command.replace(/(^|\s)\/(app|usr|etc|opt|var)(?=[/\s]|$)/g, (_m, pre, top) => `${pre}${stage.root}/${top}`);
          for (const m of local.matchAll(/\s(\S+\/)[^/\s]+$/g)) mkdirSync(m[1], { recursive: true });
          console.log(`check-dockerfile: RUN ${command}`);
          execFileSync('bash', ['-c', local], { cwd: inStage(stage, '.'), stdio: 'inherit', env: { ...process.env, ...stage.env } });
        }
        break;
      }
      default:
        stage.meta[instruction.toUpperCase()] = args;
    }
  }

  const final = stages.at(-1);
  const app = inStage(final, '.');
  const env = { ...process.env, ...final.env };
  const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
  const bin = path.join(final.root, 'usr/local/bin/zkroute');
  const version = execFileSync(bin, ['--version'], { cwd: app, env, encoding: 'utf8' }).trim();
  if (version !== pkg.version) fail(`zkroute --version printed ${version}, expected ${pkg.version}`);
  const config = JSON.parse(execFileSync(bin, ['proxy', '--print-config', '--zookeeper', 'zk:2181'], { cwd: app, env, encoding: 'utf8' }));
  if (config.listen.host !== '0.0.0.0' || config.listen.port !== 4700 || config.admin.host !== '0.0.0.0' || config.admin.port !== 4701) fail(`ENV does not open the ports: ${JSON.stringify({ listen: config.listen, admin: config.admin })}`);
  const providers = spawnSync(bin, ['providers', '--zookeeper', '127.0.0.1:9', '--zookeeper-connect-timeout', '300ms'], { cwd: app, env, encoding: 'utf8' });
  if (providers.status !== 1 || !/could not connect to ZooKeeper/.test(providers.stderr)) fail(`the native zookeeper addon did not load from the pruned node_modules: ${providers.stderr}`);
  for (const dev of ['ava', 'typescript', 'tsx']) if (existsSync(path.join(app, 'node_modules', dev))) fail(`dev dependency ${dev} is in the runtime image`);
  for (const key of ['ENTRYPOINT', 'CMD']) JSON.parse(final.meta[key] ?? 'null') ?? fail(`${key} missing`);
  const health = /CMD\s+(\[.*\])$/.exec(final.meta['HEALTHCHECK'] ?? '');
  if (!health || !JSON.parse(health[1]).join(' ').includes('/healthz')) fail('HEALTHCHECK must call /healthz');
  if (!final.meta['USER'] || final.meta['USER'] === 'root') fail('the runtime stage must run as a non-root USER');
  if (!/4700/.test(final.meta['EXPOSE'] ?? '') || !/4701/.test(final.meta['EXPOSE'] ?? '')) fail('EXPOSE 4700 4701 missing');
  if (!process.exitCode) console.log(`check-dockerfile: ok (${stages.length} stages replayed in ${work})`);
} catch (err) {
  fail(err.message);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
