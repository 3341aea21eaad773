// The soak: moderate mixed traffic through one `zkroute proxy` process on a three-server
// ensemble, five providers (each an upstream process beside its own `zkroute register`
// process), and a fault every 10 s drawn in turn from the matrix. Reports requests, failed
// idempotent requests (expected 0), failed POSTs by reason, the proxy's RSS and open file
// descriptors at start and end, event-loop delay p99, ejections; writes
// benchmarks/results/<date>-soak.md. Usage: npm run soak [-- --minutes 10] [-- --every 10]
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { freePorts, ZooKeeperEnsemble, type ZooKeeperServer } from '../src/dev/zookeeper-server.js';
import { silentLogger } from '../src/log.js';
import { ZkSession } from '../src/zookeeper/session.js';
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
/** The churning client's session: short, so it leaves a faulty member as quickly as the proxy does. */
const WRITER_SESSION_MS = 6000;
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

function procStatus(pid: number): { rssMiB: number; fds: number; sockets: number; devNull: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  let sockets = 0;
  let devNull = 0;
  const fds = readdirSync(`/proc/${pid}/fd`);
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith('socket:')) sockets += 1;
      else if (target === '/dev/null') devNull += 1;
    } catch {
      // closed while listing
    }
  }
  return { rssMiB: rssKiB / 1024, fds: fds.length, sockets, devNull };
}

/** The proxy's /metrics text. */
async function scrape(adminPort: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
}

/** The values of the series `pattern` matches (its first group) in a scrape. */
function values(text: string, pattern: RegExp): number[] {
  return [...text.matchAll(new RegExp(pattern.source, 'gm'))].map((m) => Number(m[1]));
}

async function main(): Promise<void> {
  const ensemble = await ZooKeeperEnsemble.start(3);
  const zookeeper = ensemble.connectString;
  const ports = await freePorts(7);
  const [listen, admin] = [ports[0]!, ports[1]!];
  const providers: Provider[] = [];
  // The churning client: a ZkSession, as zkroute's own clients use, so it renews itself after
  // a fault expired it (a plain handle stays dead, and a new one can hit the native connect stall).
  const churner = new ZkSession({ connectString: zookeeper, sessionTimeoutMs: WRITER_SESSION_MS, connectTimeoutMs: 10_000 }, { logger: silentLogger() });
  await churner.start();
  // This process's own event-loop delay: a stall here (the native client of the churner, the JVM
  // harness) would show as slow requests, so it is reported beside the proxy's.
  const ownLoop = monitorEventLoopDelay({ resolution: 20 });
  ownLoop.enable();
  const events: { at: number; line: string }[] = [];
  const t0 = Date.now();
  const stamp = (at: number, what: string) => `${((at - t0) / 1000).toFixed(1).padStart(6)} s  ${what}`;
  const note = (what: string, at = Date.now()) => {
    events.push({ at, line: stamp(at, what) });
    console.log(events.at(-1)!.line);
  };
  try {
    for (let i = 0; i < 5; i++) {
      const p = { name: `p${i + 1}`, port: ports[2 + i]! };
      providers.push({ ...p, upstream: startUpstream(p), register: startRegister(p, zookeeper) });
    }
    const proxy = run('proxy', [
      BIN, 'proxy', '--zookeeper', zookeeper, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--services', 'api',
      '--zookeeper-session-timeout', `${SESSION_MS}ms`, '--try-timeout', '1s', '--connect-timeout', '300ms', '--ejection-base', '5s',
      // Every request's tries, instance and error code, to read a failure by.
      '--access-log', path.join(logDir, 'access.log'),
    ]);
    await waitForOk(`http://127.0.0.1:${admin}/readyz`, 30_000);
    for (const p of providers) await waitForOk(`http://127.0.0.1:${p.port}/`, 10_000);
    const deadline = Date.now() + 30_000;
    while (values(await scrape(admin), /^zkroute_instances\{service="api",state="total"\} (\d+)/)[0] !== 5) {
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
    let scrapeFailures = 0;
    const samples: { at: number; rssMiB: number; fds: number; sockets: number; devNull: number; heapMiB: number; heapTotalMiB: number; externalMiB: number }[] = [];
    let proxyDied = false;
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
      ['churn burst: 200 register/deregister pairs', async () => {
        // The churning client is a ZooKeeper client like any other: a member fault a moment ago
        // may still have it reconnecting. Its own errors end the burst, not the soak.
        let pairs = 0;
        const connectedBy = Date.now() + 10_000;
        while (!churner.connected && Date.now() < connectedBy) await sleep(50);
        const writer = churner.client;
        if (!writer) return 'no ZooKeeper session for the churning client';
        try {
          for (; pairs < 200; pairs++) {
            const node = `/providers/api/churn-${Date.now()}-${pairs}`;
            await writer.create(node, JSON.stringify({ host: '127.0.0.1', port: pick(providers, pairs).port }), { ephemeral: true });
            await writer.delete(node);
          }
          return `${pairs} pairs`;
        } catch (err) {
          return `${pairs} pairs, then the churning client's ${(err as { code?: string }).code ?? (err as Error).message}`;
        }
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
      // Stamped when the fault began (a kill -9 and its restart 3 s later are one line), so a
      // failure listed right after it is one the fault caused.
      note(`${name}: ${what}`, tickAt);
      if (proxy.exitCode !== null || proxy.signalCode !== null) {
        note(`the proxy exited (code ${proxy.exitCode}, signal ${proxy.signalCode}): stopping`);
        proxyDied = true;
        break;
      }
      const scrapeStart = Date.now();
      try {
        const text = await scrape(admin);
        const [p99] = values(text, /^nodejs_eventloop_lag_p99_seconds (\S+)/);
        loopP99Max = Math.max(loopP99Max, p99 ?? 0);
        // Where the RSS is: the JS heap V8 uses and has reserved, and memory outside it
        // (buffers, the native client's), so that growth can be told from a leak.
        const [heap] = values(text, /^nodejs_heap_size_used_bytes (\S+)/);
        const [heapTotal] = values(text, /^nodejs_heap_size_total_bytes (\S+)/);
        const [external] = values(text, /^nodejs_external_memory_bytes (\S+)/);
        const mib = (bytes: number | undefined) => (bytes ?? NaN) / 2 ** 20;
        samples.push({ at: (Date.now() - t0) / 1000, ...procStatus(proxy.pid!), heapMiB: mib(heap), heapTotalMiB: mib(heapTotal), externalMiB: mib(external) });
      } catch (err) {
        note(`the admin port did not answer within ${Date.now() - scrapeStart} ms: ${(err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`);
        scrapeFailures += 1;
      }
      await sleep(Math.max(0, everyMs - (Date.now() - tickAt)));
    }
    // The last fault's effects settle under traffic, then the end is measured, then traffic stops.
    await sleep(WARMUP_MS);
    const end = proxyDied ? { rssMiB: NaN, fds: NaN, sockets: NaN, devNull: NaN } : procStatus(proxy.pid!);
    const report = await traffic.stop();
    const finalText = await scrape(admin).catch(() => '');
    const final = (pattern: RegExp) => (finalText ? values(finalText, pattern) : [NaN]);
    const ejections = final(/^zkroute_ejections_total\{[^}]*\} (\S+)/).reduce((a, b) => a + b, 0);
    const expiries = final(/^zkroute_zookeeper_expiries_total (\S+)/)[0] ?? 0;
    const reconnects = final(/^zkroute_zookeeper_reconnects_total (\S+)/)[0] ?? 0;
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
      `| proxy process | ${proxyDied ? `EXITED (code ${proxy.exitCode}, signal ${proxy.signalCode})` : 'ran throughout'}; admin scrapes that failed: ${scrapeFailures} |`,
      `| proxy RSS after warm-up -> end | ${start.rssMiB.toFixed(1)} -> ${end.rssMiB.toFixed(1)} MiB (${growth(start.rssMiB, end.rssMiB)}) |`,
      `| proxy open descriptors after warm-up -> end | ${start.fds} -> ${end.fds} (${growth(start.fds, end.fds)}); sockets ${start.sockets} -> ${end.sockets}, /dev/null ${start.devNull} -> ${end.devNull} |`,
      `| event-loop delay p99, highest scraped | ${(loopP99Max * 1000).toFixed(1)} ms |`,
      `| the soak process's own event-loop delay, p99 / max | ${(ownLoop.percentile(99) / 1e6).toFixed(1)} / ${(ownLoop.max / 1e6).toFixed(1)} ms |`,
      `| ejections | ${ejections} |`,
      `| proxy ZooKeeper reconnects / expiries | ${reconnects} / ${expiries} |`,
      '',
      '## The proxy over time (sampled after each fault; every sixth sample)',
      '',
      '| at | RSS MiB | JS heap used / reserved MiB | external MiB | descriptors | sockets | /dev/null |',
      '|---|---|---|---|---|---|---|',
      ...samples.filter((_, i) => i % 6 === 0 || i === samples.length - 1).map((x) => `| ${x.at.toFixed(0)} s | ${x.rssMiB.toFixed(1)} | ${x.heapMiB.toFixed(1)} / ${x.heapTotalMiB.toFixed(1)} | ${x.externalMiB.toFixed(1)} | ${x.fds} | ${x.sockets} | ${x.devNull} |`),
      '',
      '## Faults, and every failed request among them',
      '',
      '```',
      ...[...events, ...report.failures.map((f) => ({ at: f.at, line: stamp(f.at, `    failed: ${f.method} ${f.what}`) }))].sort((a, b) => a.at - b.at).map((e) => e.line),
      '```',
      '',
    ];
    mkdirSync(opts.out, { recursive: true });
    const file = path.join(opts.out, `${new Date().toISOString().slice(0, 16).replace(/[T:]/g, '-')}-soak.md`);
    writeFileSync(file, lines.join('\n'));
    console.log(lines.join('\n'));
    console.log(`written: ${path.relative(ROOT, file)}; process logs in ${logDir}`);
    if (report.failedIdempotent.length > 0 || proxyDied) process.exitCode = 1;
  } finally {
    stopAll();
    await churner.close().catch(() => {});
    await ensemble.close();
  }
}

await main();
