// The cost of traffic policy (#18) on the routing path: zkroute before it (a build of --before,
// default 8bf4fa1), with its features off, with the defaults (a 20% retry budget, the subset
// header looked at), and with a per-service override and zone preference on; nginx alongside.
// Pinned (load + upstream on core 0, each proxy on core 1), alternating, small bodies, 32
// connections. Usage: npm run bench:policy [-- --duration 5] [-- --reps 5] [-- --before REF]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePorts, ZooKeeperServer } from '../src/dev/zookeeper-server.js';
import { silentLogger } from '../src/log.js';
import { createUpstreamCore } from '../src/upstream/core.js';
import { connectZk } from '../src/zookeeper/client.js';
import { FakeSource } from '../test/helpers/fake-source.js';
import { fakeInstance } from '../test/helpers/instances.js';
import { cpuSeconds, firstLine, killAll, median, start, waitForOk, wrk, childPids } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({ options: {
  duration: { type: 'string', default: '5' },
  reps: { type: 'string', default: '5' },
  connections: { type: 'string', default: '32' },
  before: { type: 'string', default: '8bf4fa1' },
  out: { type: 'string', default: path.join(ROOT, 'benchmarks/results') },
} });
const seconds = Number(opts.duration);
const reps = Number(opts.reps);
const connections = Number(opts.connections);
const log = (msg: string) => process.stderr.write(`bench:policy: ${msg}\n`);
const setAffinity = (pids: number[], cpuList: string) => {
  for (const pid of pids) execFileSync('taskset', ['-a', '-pc', cpuList, String(pid)], { stdio: 'ignore' });
};

/** A build of `ref` in a temporary worktree (this checkout's node_modules linked in). */
function buildAt(ref: string, dir: string): string {
  execFileSync('git', ['-C', ROOT, 'worktree', 'add', '--detach', dir, ref], { stdio: 'ignore' });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  execFileSync(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  return path.join(dir, 'bin/zkroute.js');
}

type Config = 'nginx' | 'before' | 'off' | 'default' | 'policy';

/**
 * What policy adds per request in-process, without the socket noise of a 2-core box: a
 * request's provider work (noteRequest, getInstance, noteOutcome) over a 3-instance service,
 * in ns, for the same three settings as the wrk runs.
 */
function pickCost(): { name: string; ns: number }[] {
  const instance = (port: number, zone: string) => ({ ...fakeInstance(port, { service: 'bench' }), metadata: { zone } });
  const traffic = { balancer: 'random', retries: 2, connectTimeoutMs: 1000, tryTimeoutMs: 15_000, deadlineMs: 30_000, consecutive5xx: 5, ejectionBaseMs: 10_000, ejectionMaxMs: 300_000, maxEjectionPercent: 50, retryBudgetPercent: 20, slowStartMs: 0, zoneAware: false } as const;
  const variants = [
    { name: 'off', options: { ...traffic, retryBudgetPercent: null } },
    { name: 'default', options: traffic },
    { name: 'policy', options: { ...traffic, zone: 'a', zoneKey: 'zone', zoneMinHealthyPercent: 70, zoneAware: true, serviceSettings: { bench: { retries: 1, tryTimeoutMs: 10_000, balancer: 'round-robin' as const } } } },
  ];
  const out: { name: string; ns: number }[] = [];
  for (const v of variants) {
    const source = new FakeSource();
    const core = createUpstreamCore(v.options, { source, logger: silentLogger() });
    source.set('bench', [instance(1, 'a'), instance(2, 'a'), instance(3, 'b')]);
    const ok = { kind: 'ok', status: 200 } as const;
    const round = (n: number) => {
      const started = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        core.provider.noteRequest('bench');
        const picked = core.provider.getInstance('bench')!;
        core.provider.noteOutcome(picked, ok);
      }
      return Number(process.hrtime.bigint() - started) / n;
    };
    round(200_000);
    out.push({ name: v.name, ns: median([round(1_000_000), round(1_000_000), round(1_000_000)]) });
    core.close();
  }
  return out;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'zkroute-bench-policy-'));
  const worktree = path.join(tmp, 'before');
  // Both builds first: they block this process for a while, longer than a ZooKeeper session lives.
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
  const beforeBin = buildAt(opts.before, worktree);
  const zkServer = await ZooKeeperServer.start();
  const zk = await connectZk({ connectString: zkServer.connectString });
  // nginx's workers outlive a SIGKILLed master: they are stopped by pid at the end.
  let nginxPids: number[] = [];
  try {
    const upstream = start(process.execPath, [path.join(ROOT, 'benchmarks/upstream.mjs')], { cpuList: '0' });
    const upPort = Number(await firstLine(upstream));
    await zk.mkdirp('/providers/bench');
    // The zone in the metadata: zone preference has a local instance to prefer.
    await zk.create('/providers/bench/u1', JSON.stringify({ host: '127.0.0.1', port: upPort, zone: 'a' }), { ephemeral: true });
    const policyFile = path.join(tmp, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ zone: 'a', services: { bench: { retries: 1, 'try-timeout': '10s', balancer: 'round-robin' } } }));

    const ports = (await freePorts(5)) as [number, number, number, number, number];
    const proxy = (bin: string, port: number, extra: string[]) => {
      const child = start(process.execPath, [bin, 'proxy', '--zookeeper', zkServer.connectString, '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--log-level', 'warn', ...extra], { cpuList: '1' });
      child.stderr!.on('data', (c: Buffer) => process.stderr.write(`zkroute: ${c}`));
      return child;
    };
    const current = path.join(ROOT, 'bin/zkroute.js');
    const procs = {
      before: proxy(beforeBin, ports[0], []),
      off: proxy(current, ports[1], ['--retry-budget', 'off', '--subset-header', 'none']),
      default: proxy(current, ports[2], []),
      policy: proxy(current, ports[3], ['--config', policyFile]),
    };
    for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(tmp, d), { recursive: true });
    writeFileSync(path.join(tmp, 'nginx.conf'), `worker_processes 1; daemon off; user root; pid ${tmp}/nginx.pid; error_log ${tmp}/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi; uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  upstream bench { server 127.0.0.1:${upPort}; keepalive 128; }
  server { listen 127.0.0.1:${ports[4]}; location /svc/bench/ { proxy_pass http://bench/; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
`);
    const nginx = start('nginx', ['-p', tmp, '-c', path.join(tmp, 'nginx.conf')], { cpuList: '1' });
    const url = (config: Config) => `http://127.0.0.1:${config === 'nginx' ? ports[4] : ports[['before', 'off', 'default', 'policy'].indexOf(config)]}/svc/bench/small`;
    const pids = (config: Config) => (config === 'nginx' ? [nginx.pid!, ...childPids(nginx.pid!)] : [procs[config].pid!]);
    const configs: Config[] = ['nginx', 'before', 'off', 'default', 'policy'];
    for (const c of configs) await waitForOk(url(c));
    nginxPids = pids('nginx');
    for (const c of configs) setAffinity(pids(c), '1');
    for (const c of configs) await wrk(url(c), connections, 1, '0');
    const results = new Map<Config, { rps: number[]; cpuUs: number[] }>(configs.map((c) => [c, { rps: [], cpuUs: [] }]));
    for (let rep = 0; rep < reps; rep++) {
      for (const c of rep % 2 === 0 ? configs : [...configs].reverse()) {
        const before = cpuSeconds(pids(c));
        const r = await wrk(url(c), connections, seconds, '0');
        const cpu = ((cpuSeconds(pids(c)) - before) / r.requests) * 1e6;
        results.get(c)!.rps.push(r.rps);
        results.get(c)!.cpuUs.push(cpu);
        log(`rep ${rep} ${c}: ${Math.round(r.rps)} req/s, ${cpu.toFixed(1)} us CPU/req, errors ${r.errors}`);
      }
    }
    const picks = pickCost();
    for (const p of picks) log(`in-process provider work per request, ${p.name}: ${p.ns.toFixed(0)} ns`);
    const row = (c: Config) => {
      const r = results.get(c)!;
      const rps = median(r.rps);
      return { rps, cpu: median(r.cpuUs), spread: `${Math.round(Math.min(...r.rps))}-${Math.round(Math.max(...r.rps))}` };
    };
    /** The median over repetitions of `config`'s throughput over `reference`'s in the same repetition, less one. */
    const paired = (config: Config, reference: Config) => {
      const a = results.get(config)!.rps;
      const b = results.get(reference)!.rps;
      return median(a.map((v, i) => v / b[i]!)) - 1;
    };
    const name = `${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')}-policy`;
    const lines = [
      `# Traffic policy on the routing path (${name})`, '',
      `Machine: ${cpus().length} cores, Node ${process.version}. Command: \`npm run bench:policy -- --duration ${seconds} --reps ${reps} --before ${opts.before}\`.`,
      `Pinned: wrk and the upstream on core 0, each proxy on core 1; ${connections} connections, 100-byte responses, ${seconds} s runs, ${reps} alternating repetitions; medians.`, '',
      '- `before`: zkroute at ' + opts.before + (opts.before === '8bf4fa1' ? ' (before #18)' : ''),
      '- `off`: this build, `--retry-budget off --subset-header none` (no zone, no slow start)',
      '- `default`: this build with its defaults (a 20% retry budget per service, the subset header looked up)',
      '- `policy`: this build with `--zone a` (the instance is in zone a) and a per-service override for `bench` (retries, try-timeout, balancer)', '',
      'The box drifts by 10-40% between runs, so the column that says most is the paired one: each',
      "repetition's ratio to `before` (or to `off`) measured next to it, then the median over repetitions.", '',
      '| config | req/s (median) | range | paired vs before | paired vs off | CPU us/request | vs nginx |',
      '|---|---|---|---|---|---|---|',
      ...configs.map((c) => {
        const r = row(c);
        const pct = (v: number) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}%`;
        const isProxy = c !== 'nginx';
        return `| ${c} | ${Math.round(r.rps)} | ${r.spread} | ${isProxy ? pct(paired(c, 'before')) : ''} | ${isProxy ? pct(paired(c, 'off')) : ''} | ${r.cpu.toFixed(1)} | ${(r.rps / row('nginx').rps).toFixed(2)} |`;
      }),
      '',
      'In-process, the provider work of one request (noteRequest, getInstance, noteOutcome over a 3-instance service; 1M-iteration rounds, median of 3), against the CPU a request costs the `default` proxy above:', '',
      '| settings | ns per request | share of a request\'s CPU |',
      '|---|---|---|',
      ...picks.map((p) => `| ${p.name} | ${p.ns.toFixed(0)} | ${((p.ns / 1000 / row('default').cpu) * 100).toFixed(2)}% |`),
    ];
    const md = `${lines.join('\n')}\n`;
    mkdirSync(opts.out, { recursive: true });
    writeFileSync(path.join(opts.out, `${name}.md`), md);
    process.stdout.write(md);
    log(`wrote ${path.relative(ROOT, path.join(opts.out, `${name}.md`))}`);
  } finally {
    for (const pid of nginxPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    killAll();
    await zk.close().catch(() => {});
    await zkServer.stop();
    if (existsSync(worktree)) execFileSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', worktree], { stdio: 'ignore' });
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  killAll();
  process.exit(1);
});
