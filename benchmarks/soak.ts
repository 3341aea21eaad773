// The soak: moderate mixed traffic through one `zkroute proxy` process on a three-server
// ensemble, five providers (each an upstream process beside its own `zkroute register`
// process), and a fault every 10 s drawn in turn from the matrix. Reports requests, failed
// idempotent requests (expected 0), failed POSTs by reason, the proxy's RSS and open file
// descriptors at start and end, event-loop delay p99, ejections; writes
// benchmarks/results/<date>-soak.md. Usage: npm run soak [-- --minutes 10] [-- --every 10]
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePorts, ZooKeeperEnsemble, type ZooKeeperServer } from '../src/dev/zookeeper-server.js';
import { connectZk } from '../src/zookeeper/client.js';
import { summarize, Traffic } from '../test/faults/harness.js';
import { waitForOk } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({ options: {
  minutes: { type: 'string', default: '10' },
  every: { type: 'string', default: '10' },
  out: { type: 'string', default: path.join(ROOT, 'benchmarks/results') },
} });
const minutes = Number(opts.minutes);
const everyMs = Number(opts.every) * 1000;
if (!(minutes > 0) || !(everyMs >= 1000)) throw new Error('--minutes must be above 0 and --every at least 1 (seconds)');

const SESSION_MS = 4000;
const WARMUP_MS = 15_000;
const BIN = path.join(ROOT, 'bin/zkroute.js');
const logDir = mkdtempSync(path.join(tmpdir(), 'zkroute-soak-'));
const children = new Set<ChildProcess>();

/** A process whose output goes to a file (a full pipe would stop it). */
function run(name: string, args: string[]): ChildProcess {
  const out = openSync(path.join(logDir, `${name}.log`), 'a');
  const child = spawn(process.execPath, args, { stdio: ['ignore', out, out] });
  closeSync(out);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
const stopAll = () => {
  for (const child of children) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
};
process.once('exit', stopAll);

interface Provider {
  readonly name: string;
  readonly port: number;
  upstream: ChildProcess;
  register: ChildProcess;
}

const startUpstream = (p: { name: string; port: number }) => run(`${p.name}-upstream`, [path.join(ROOT, 'benchmarks/upstream.mjs'), String(p.port)]);
const startRegister = (p: { name: string; port: number }, zookeeper: string) => run(`${p.name}-register`, [
  BIN, 'register', '--zookeeper', zookeeper, '--service', 'api', '--host', '127.0.0.1', '--port', String(p.port), '--id', p.name,
  '--zookeeper-session-timeout', `${SESSION_MS}ms`,
]);

function procStatus(pid: number): { rssMiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { rssMiB: rssKiB / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

async function metric(adminPort: number, pattern: RegExp): Promise<number[]> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  return [...text.matchAll(new RegExp(pattern.source, 'gm'))].map((m) => Number(m[1]));
}

async function main(): Promise<void> {
  const ensemble = await ZooKeeperEnsemble.start(3);
  const zookeeper = ensemble.connectString;
  const ports = await freePorts(7);
  const [listen, admin] = [ports[0]!, ports[1]!];
  const providers: Provider[] = [];
  const writer = await connectZk({ connectString: zookeeper, sessionTimeoutMs: 20_000 });
  const events: string[] = [];
  const t0 = Date.now();
  const note = (what: string) => {
    events.push(`${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s  ${what}`);
    console.log(events.at(-1));
  };
  try {
    for (let i = 0; i < 5; i++) {
      const p = { name: `p${i + 1}`, port: ports[2 + i]! };
      providers.push({ ...p, upstream: startUpstream(p), register: startRegister(p, zookeeper) });
    }
    const proxy = run('proxy', [
      BIN, 'proxy', '--zookeeper', zookeeper, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--services', 'api',
      '--zookeeper-session-timeout', `${SESSION_MS}ms`, '--try-timeout', '1s', '--connect-timeout', '300ms', '--ejection-base', '5s',
    ]);
    await waitForOk(`http://127.0.0.1:${admin}/readyz`, 30_000);
    for (const p of providers) await waitForOk(`http://127.0.0.1:${p.port}/`, 10_000);
    const deadline = Date.now() + 30_000;
    while ((await metric(admin, /^zkroute_instances\{service="api",state="total"\} (\d+)/))[0] !== 5) {
      if (Date.now() > deadline) throw new Error('the five providers did not all reach the table');
      await sleep(200);
    }
    note('5 providers in the table; traffic starts');
    const traffic = new Traffic(`http://127.0.0.1:${listen}`, 'api', { concurrency: 16, pauseMs: 10, maxMs: minutes * 60_000 + 120_000, maxRequests: 5_000_000, path: '/small' });
    // Start and end are both measured under traffic, the start after a warm-up (JIT, pools).
    await sleep(WARMUP_MS);
    const start = procStatus(proxy.pid!);
    note(`warmed up: RSS ${start.rssMiB.toFixed(1)} MiB, ${start.fds} descriptors; faults start`);
    let loopP99Max = 0;
    let member = 0;
    let provider = 0;
    const pick = <T>(list: readonly T[], i: number) => list[i % list.length]!;
    const faults: [string, () => Promise<string>][] = [
      ['provider kill -9, restarted 3 s later', async () => {
        const p = pick(providers, provider++);
        p.upstream.kill('SIGKILL');
        await sleep(3000);
        p.upstream = startUpstream(p);
        return p.name;
      }],
      ['provider SIGSTOP for 3 s', async () => {
        const p = pick(providers, provider++);
        p.upstream.kill('SIGSTOP');
        await sleep(3000);
        p.upstream.kill('SIGCONT');
        return p.name;
      }],
      ['ZooKeeper member kill -9, restarted', async () => {
        const m: ZooKeeperServer = pick(ensemble.members, member++);
        await m.kill();
        await sleep(1000);
        await m.start();
        return `member :${m.clientPort}`;
      }],
      ['ZooKeeper member SIGSTOP for 4 s', async () => {
        const m = pick(ensemble.members, member++);
        m.pause();
        await sleep(4000);
        m.resume();
        return `member :${m.clientPort}`;
      }],
      ['provider session expiry (its register process stopped past the session timeout)', async () => {
        const p = pick(providers, provider++);
        p.register.kill('SIGSTOP');
        await sleep(SESSION_MS + 2000);
        p.register.kill('SIGCONT');
        return p.name;
      }],
      ['churn burst: 400 register/deregister in about 2 s', async () => {
        for (let k = 0; k < 200; k++) {
          const target = pick(providers, k).port;
          const node = `/providers/api/churn-${Date.now()}-${k}`;
          await writer.create(node, JSON.stringify({ host: '127.0.0.1', port: target }), { ephemeral: true });
          await writer.delete(node);
        }
        return '200 nodes';
      }],
      ['proxy session expiry (the proxy stopped past the session timeout)', async () => {
        proxy.kill('SIGSTOP');
        await sleep(SESSION_MS + 1000);
        proxy.kill('SIGCONT');
        return `pid ${proxy.pid}`;
      }],
    ];
    const endAt = Date.now() + minutes * 60_000;
    let index = 0;
    while (Date.now() + everyMs <= endAt) {
      const tickAt = Date.now();
      const [name, inject] = faults[index++ % faults.length]!;
      const what = await inject();
      note(`${name}: ${what}`);
      const [p99] = await metric(admin, /^nodejs_eventloop_lag_p99_seconds (\S+)/);
      loopP99Max = Math.max(loopP99Max, p99 ?? 0);
      await sleep(Math.max(0, everyMs - (Date.now() - tickAt)));
    }
    // The last fault's effects settle under traffic, then the end is measured, then traffic stops.
    await sleep(WARMUP_MS);
    const end = procStatus(proxy.pid!);
    const report = await traffic.stop();
    const ejections = (await metric(admin, /^zkroute_ejections_total\{[^}]*\} (\S+)/)).reduce((a, b) => a + b, 0);
    const expiries = (await metric(admin, /^zkroute_zookeeper_expiries_total (\S+)/))[0] ?? 0;
    const reconnects = (await metric(admin, /^zkroute_zookeeper_reconnects_total (\S+)/))[0] ?? 0;
    const growth = (a: number, b: number) => `${(((b - a) / a) * 100).toFixed(1)}%`;
    const lines = [
      `# Soak, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      '',
      `\`npm run soak -- --minutes ${minutes} --every ${everyMs / 1000}\`: one \`zkroute proxy\` process, a three-server ensemble, five`,
      'providers (an upstream process and a `zkroute register` process each), 16 callers (every fourth request a',
      `small POST, 10 ms between a caller's requests), a fault every ${everyMs / 1000} s in turn after ${WARMUP_MS / 1000} s of warm-up, and`,
      `${WARMUP_MS / 1000} s to settle at the end (both measured under traffic). Session timeout ${SESSION_MS / 1000} s.`,
      '',
      '| figure | value |',
      '|---|---|',
      `| requests | ${report.sent.toLocaleString('en-US')} (${report.posts.toLocaleString('en-US')} POST) |`,
      `| answered 200 | ${report.ok.toLocaleString('en-US')} |`,
      `| failed idempotent (GET) | ${report.failedIdempotent.length} ${report.failedIdempotent.length ? `(${summarize(report.failedIdempotent)})` : ''} |`,
      `| failed POSTs | ${report.failedPosts.length} (${summarize(report.failedPosts)}) |`,
      `| faults injected | ${index} |`,
      `| proxy RSS after warm-up -> end | ${start.rssMiB.toFixed(1)} -> ${end.rssMiB.toFixed(1)} MiB (${growth(start.rssMiB, end.rssMiB)}) |`,
      `| proxy open descriptors after warm-up -> end | ${start.fds} -> ${end.fds} (${growth(start.fds, end.fds)}) |`,
      `| event-loop delay p99, highest scraped | ${(loopP99Max * 1000).toFixed(1)} ms |`,
      `| ejections | ${ejections} |`,
      `| proxy ZooKeeper reconnects / expiries | ${reconnects} / ${expiries} |`,
      '',
      '## Faults',
      '',
      '```',
      ...events,
      '```',
      '',
    ];
    mkdirSync(opts.out, { recursive: true });
    const file = path.join(opts.out, `${new Date().toISOString().slice(0, 16).replace(/[T:]/g, '-')}-soak.md`);
    writeFileSync(file, lines.join('\n'));
    console.log(lines.join('\n'));
    console.log(`written: ${path.relative(ROOT, file)}; process logs in ${logDir}`);
    if (report.failedIdempotent.length > 0) process.exitCode = 1;
  } finally {
    stopAll();
    await writer.close().catch(() => {});
    await ensemble.close();
  }
}

await main();
