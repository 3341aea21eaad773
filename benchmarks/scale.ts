// bench:scale: zkroute's cost on a ZooKeeper ensemble as the fleet grows. W simulated sidecars
// (real Discovery clients, one session each, several per process) watch S services on a
// three-server ensemble (optionally with observers); a rolling deploy of a 100-instance service,
// then every session expired at once, without and with resync jitter. Figures come from the
// servers' own counters (mntr, wchs), not from ours.
// Usage: npm run bench:scale [-- --sidecars 10,100,500] [-- --observers 2] [-- --processes 4] [-- --jitter auto|20s]
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fourLetterWord, ZooKeeperEnsemble } from '../src/dev/zookeeper-server.js';
import { parseDurationOrZeroMs } from '../src/config/options.js';
import { resyncWindowMs } from '../src/discovery/discovery.js';
import { connectZk, type ZkClient } from '../src/zookeeper/client.js';
import { percentile } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({ options: {
  sidecars: { type: 'string', default: '10,100,500' },
  observers: { type: 'string', default: '0' },
  processes: { type: 'string', default: '4' },
  instances: { type: 'string', default: '100' },
  services: { type: 'string', default: '5' },
  jitter: { type: 'string', default: 'auto' },
  out: { type: 'string', default: path.join(ROOT, 'benchmarks/results') },
} });
const FLEETS = opts.sidecars.split(',').map(Number);
const OBSERVERS = Number(opts.observers);
const PROCESSES = Number(opts.processes);
const I = Number(opts.instances);
const S = Number(opts.services);
const SESSION_TIMEOUT_MS = 10_000;
/** The resync jitter of the storm's second fleet (the first has none). */
const JITTER = ((): number | 'auto' => {
  if (opts.jitter === 'auto') return 'auto';
  const ms = parseDurationOrZeroMs(opts.jitter);
  if (typeof ms !== 'number') throw new Error(`--jitter ${JSON.stringify(opts.jitter)}: ${ms.problem}`);
  return ms;
})();
/** Each sidecar's watches: the base path and S services. */
const WINDOW_MS = resyncWindowMs(JITTER, S + 1);
const log = (msg: string) => process.stderr.write(`bench:scale: ${msg}\n`);
const now = () => performance.timeOrigin + performance.now();

/** One mntr figure summed over the members. */
async function mntr(ensemble: ZooKeeperEnsemble, key: string): Promise<number> {
  let total = 0;
  for (const m of ensemble.members) {
    const text = await fourLetterWord(m.clientPort, 'mntr', 3000);
    const line = text.split('\n').find((l) => l.startsWith(`${key}\t`));
    total += Number(line?.split('\t')[1] ?? 0);
  }
  return total;
}

/** Watches per member (wchs: "... Total watches:N"). */
async function watchesPerMember(ensemble: ZooKeeperEnsemble): Promise<number[]> {
  return Promise.all(ensemble.members.map(async (m) => Number(/Total watches:(\d+)/.exec(await fourLetterWord(m.clientPort, 'wchs', 3000))?.[1] ?? 0)));
}

interface Child {
  proc: ChildProcess;
  ask<T>(message: unknown, key: string): Promise<T>;
}

const allChildren: ChildProcess[] = [];

function startChild(): Promise<Child> {
  const proc = fork(path.join(ROOT, 'benchmarks/scale-sidecars.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = <T>(message: unknown, key: string) => new Promise<T>((resolve, reject) => {
    const on = (reply: Record<string, unknown>) => {
      if (key in reply) {
        proc.off('message', on);
        proc.off('exit', gone);
        resolve(reply as T);
      }
    };
    const gone = (code: number | null) => reject(new Error(`a sidecar process exited (${code}) while asked ${JSON.stringify(message)}`));
    proc.on('message', on);
    proc.once('exit', gone);
    proc.send(message as object);
  });
  allChildren.push(proc);
  return new Promise((resolve) => proc.once('message', () => resolve({ proc, ask })));
}

interface Storm {
  peak200ms: number;
  peak1s: number;
  /** From the resume until every watch of every sidecar read again. */
  convergeMs: number | undefined;
  /** The most any sidecar took from its own new session to its last watch's read. */
  afterSessionMs: number | undefined;
  /** Each sidecar's new session, from the resume: median and most. */
  sessionP50Ms: number | undefined;
  sessionMaxMs: number | undefined;
  /** Attempts to open a new session that failed (a 3 s connect limit each) and were retried. */
  renewFailures: number;
}

interface FleetResult {
  w: number;
  perChangePerSidecar: number;
  changes: number;
  watches: number[];
  propagationP50: number;
  propagationP99: number;
  cpuUsPerEvent: number;
  memoryKiBPerSession: number;
  churn: { ops: number; perChangePerSidecar: number; convergeMs: number | undefined };
  storm: Record<'off' | 'on', Storm>;
}

async function fleet(ensemble: ZooKeeperEnsemble, zk: ZkClient, w: number, jitterMs: number | 'auto', base: string): Promise<{ children: Child[]; rssPerSession: number }> {
  const children = await Promise.all(Array.from({ length: Math.min(PROCESSES, w) }, () => startChild()));
  const services = [`${base}-deploy`, ...Array.from({ length: S - 1 }, (_, k) => `${base}-s${k}`)].map((p) => p.slice('/providers/'.length));
  const per = children.map((_, i) => Math.floor(w / children.length) + (i < w % children.length ? 1 : 0));
  const ready = await Promise.all(children.map((c, i) => c.ask<{ rssBefore: number; rssAfter: number }>({ cmd: 'start', count: per[i], zookeeper: ensemble.connectString, services, watched: services[0], jitterMs, sessionTimeoutMs: SESSION_TIMEOUT_MS }, 'ready')));
  const rssPerSession = ready.reduce((n, r) => n + (r.rssAfter - r.rssBefore), 0) / w;
  return { children, rssPerSession };
}

async function stopFleet(children: Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.ask({ cmd: 'stop' }, 'stopped').catch(() => {})));
}

/** Peak requests per second while `during` runs: over 200 ms samples, and over 1 s (five of them). */
async function peakRate(ensemble: ZooKeeperEnsemble, during: Promise<unknown>): Promise<{ peak200ms: number; peak1s: number }> {
  let done = false;
  void during.finally(() => (done = true));
  const samples = [{ v: await mntr(ensemble, 'zk_packets_received'), at: now() }];
  while (!done) {
    await sleep(200);
    samples.push({ v: await mntr(ensemble, 'zk_packets_received'), at: now() });
  }
  const rate = (a: { v: number; at: number }, b: { v: number; at: number }) => ((b.v - a.v) * 1000) / (b.at - a.at);
  let peak200ms = 0;
  let peak1s = 0;
  for (let i = 1; i < samples.length; i++) {
    peak200ms = Math.max(peak200ms, rate(samples[i - 1]!, samples[i]!));
    peak1s = Math.max(peak1s, rate(samples[Math.max(0, i - 5)]!, samples[i]!));
  }
  return { peak200ms, peak1s };
}

async function main(): Promise<void> {
  log(`ensemble: 3 members${OBSERVERS ? ` + ${OBSERVERS} observers` : ''}; fleets ${FLEETS.join(', ')}; ${PROCESSES} processes; S=${S}, I=${I}`);
  const ensemble = await ZooKeeperEnsemble.start(3, { maxSessionTimeoutMs: 60_000 }, OBSERVERS);
  const zk = await connectZk({ connectString: ensemble.connectString });
  const results: FleetResult[] = [];
  try {
    for (const w of FLEETS) {
      const base = `/providers/scale${w}`;
      for (let k = 0; k < S - 1; k++) {
        await zk.mkdirp(`${base}-s${k}`);
        for (let j = 0; j < 3; j++) await zk.create(`${base}-s${k}/i${j}`, JSON.stringify({ host: '127.0.0.1', port: 7000 + j }));
      }
      await zk.mkdirp(`${base}-deploy`);
      for (let j = 0; j < I; j++) await zk.create(`${base}-deploy/v1-${j}`, JSON.stringify({ host: '127.0.0.1', port: 10_000 + j }));

      // --- a fleet with resync jitter on: load, quiet window, rolling deploy ------------------
      log(`W=${w}: starting sidecars`);
      const { children, rssPerSession } = await fleet(ensemble, zk, w, JITTER, base);
      const watches = await watchesPerMember(ensemble);
      await Promise.all(children.map((c) => c.ask({ cmd: 'report' }, 'report')));
      const q0 = await mntr(ensemble, 'zk_packets_received');
      const quietMs = 5000;
      await sleep(quietMs);
      const pingPerMs = ((await mntr(ensemble, 'zk_packets_received')) - q0) / quietMs;
      const cpu0 = await Promise.all(children.map((c) => c.ask<{ cpuUs: number }>({ cmd: 'report' }, 'report')));
      const p0 = await mntr(ensemble, 'zk_packets_received');
      const t0 = now();
      const changedAt = new Map<string, number>();
      // Each instance in turn: deregister, then register its successor (two changes).
      for (let j = 0; j < I; j++) {
        changedAt.set(`v1-${j}|del`, now());
        await zk.delete(`${base}-deploy/v1-${j}`);
        await sleep(20);
        changedAt.set(`v2-${j}|add`, now());
        await zk.create(`${base}-deploy/v2-${j}`, JSON.stringify({ host: '127.0.0.1', port: 20_000 + j }));
        await sleep(20);
      }
      // Every sidecar must see every change: collect until all are in (or 60 s), laggards included.
      const changes = 2 * I;
      const expected = changes * w;
      const delays: number[] = [];
      const cpuAfter: number[] = children.map(() => 0);
      const waitUntil = now() + 60_000;
      for (;;) {
        await sleep(1000);
        const reports = await Promise.all(children.map((c) => c.ask<{ report: [string, number[]][]; cpuUs: number }>({ cmd: 'report' }, 'report')));
        reports.forEach((r, i) => (cpuAfter[i] = r.cpuUs));
        for (const r of reports) for (const [key, times] of r.report) {
          const at = changedAt.get(key);
          if (at !== undefined) for (const t of times) delays.push(t - at);
        }
        if (delays.length >= expected || now() > waitUntil) break;
      }
      const elapsed = now() - t0;
      const packets = (await mntr(ensemble, 'zk_packets_received')) - p0 - pingPerMs * elapsed;
      delays.sort((a, b) => a - b);
      const cpuUs = cpuAfter.reduce((n, c, i) => n + c - cpu0[i]!.cpuUs, 0);
      log(`W=${w}: ${Math.round(packets)} requests net of pings (${(pingPerMs * 1000).toFixed(0)}/s), ${delays.length}/${expected} sightings, p50 ${percentile(delays, 0.5).toFixed(1)} ms, p99 ${percentile(delays, 0.99).toFixed(1)} ms`);

      // --- a churn burst: 100 create/delete pairs as fast as the writes go -------------------
      const deployService = `${base}-deploy`.slice('/providers/'.length);
      const c0 = await mntr(ensemble, 'zk_packets_received');
      const churnStarted = now();
      for (let k = 0; k < 100; k += 20) {
        const batch = Array.from({ length: 20 }, (_, j) => `${base}-deploy/churn-${k + j}`);
        await Promise.all(batch.map((p) => zk.create(p, JSON.stringify({ host: '127.0.0.1', port: 30_000 }))));
        await Promise.all(batch.map((p) => zk.delete(p)));
      }
      const churnEnded = now();
      let churnConverge: number | undefined;
      while (now() - churnEnded < 60_000) {
        const counts = (await Promise.all(children.map((c) => c.ask<{ counts: number[] }>({ cmd: 'count', service: deployService }, 'counts')))).flatMap((r) => r.counts);
        if (counts.every((n) => n === I)) {
          churnConverge = now() - churnEnded;
          break;
        }
        await sleep(20);
      }
      const churnPackets = (await mntr(ensemble, 'zk_packets_received')) - c0 - pingPerMs * (now() - churnStarted);
      await Promise.all(children.map((c) => c.ask({ cmd: 'report' }, 'report')));
      const churn = { ops: 200, perChangePerSidecar: churnPackets / (200 * w), convergeMs: churnConverge };
      log(`W=${w}: churn burst of 200 ops in ${(churnEnded - churnStarted).toFixed(0)} ms: ${churn.perChangePerSidecar.toFixed(2)} requests per change per sidecar, every sidecar back at ${I} instances ${churnConverge?.toFixed(0)} ms after`);

      // --- the storm: every session expired at once, jitter on (this fleet), then off -------
      // Every sidecar process stopped past the session timeout (a partition of the fleet): the
      // ensemble expires every session; on SIGCONT each finds its session gone and opens another.
      const expireAll = async (fleetChildren: Child[]): Promise<Omit<Storm, 'peak200ms' | 'peak1s'>> => {
        // Counted from this storm on (the processes' counters are cumulative).
        const failuresBefore = (await Promise.all(fleetChildren.map((c) => c.ask<{ failures: number }>({ cmd: 'failures' }, 'failures')))).reduce((n, a) => n + a.failures, 0);
        const since = now();
        for (const c of fleetChildren) c.proc.kill('SIGSTOP');
        await sleep(SESSION_TIMEOUT_MS + 4000);
        const resumed = now();
        const answers = fleetChildren.map((c) => c.ask<{ convergedAt?: number; afterSessionMs?: number; sessionsAt: number[]; renewFailures: number }>({ cmd: 'resynced', since }, 'resynced'));
        for (const c of fleetChildren) c.proc.kill('SIGCONT');
        const done = await Promise.all(answers);
        const renewFailures = done.reduce((n, a) => n + a.renewFailures, 0) - failuresBefore;
        const sessions = done.flatMap((a) => a.sessionsAt).map((at) => at - resumed).sort((a, b) => a - b);
        const sessionP50Ms = percentile(sessions, 0.5);
        const sessionMaxMs = sessions[sessions.length - 1];
        if (!done.every((a) => a.convergedAt !== undefined)) return { convergeMs: undefined, afterSessionMs: undefined, sessionP50Ms, sessionMaxMs, renewFailures };
        return { convergeMs: Math.max(...done.map((a) => a.convergedAt!)) - resumed, afterSessionMs: Math.max(...done.map((a) => a.afterSessionMs!)), sessionP50Ms, sessionMaxMs, renewFailures };
      };
      const storm = async (fleetChildren: Child[]): Promise<Storm> => {
        const expiring = expireAll(fleetChildren);
        await sleep(SESSION_TIMEOUT_MS + 3000);
        const peaks = await peakRate(ensemble, expiring);
        return { ...peaks, ...(await expiring) };
      };
      // The jittered fleet first (the one that ran the deploy), then a fresh one without jitter.
      const on = await storm(children);
      await stopFleet(children);
      const offFleet = await fleet(ensemble, zk, w, 0, base);
      const off = await storm(offFleet.children);
      await stopFleet(offFleet.children);
      log(`W=${w}: storm peak ${Math.round(off.peak200ms)}/s (1 s: ${Math.round(off.peak1s)}) without jitter, ${Math.round(on.peak200ms)}/s (1 s: ${Math.round(on.peak1s)}) with a ${WINDOW_MS} ms window; converged ${off.convergeMs?.toFixed(0)} / ${on.convergeMs?.toFixed(0)} ms after the resume, ${off.afterSessionMs?.toFixed(0)} / ${on.afterSessionMs?.toFixed(0)} ms after a sidecar's new session; new sessions p50 ${off.sessionP50Ms?.toFixed(0)} / ${on.sessionP50Ms?.toFixed(0)}, max ${off.sessionMaxMs?.toFixed(0)} / ${on.sessionMaxMs?.toFixed(0)} ms after the resume, ${off.renewFailures} / ${on.renewFailures} failed attempts`);
      results.push({
        w, changes, perChangePerSidecar: packets / (changes * w), watches,
        propagationP50: percentile(delays, 0.5), propagationP99: percentile(delays, 0.99),
        cpuUsPerEvent: cpuUs / expected, memoryKiBPerSession: rssPerSession / 1024, storm: { on, off }, churn,
      });
    }
  } finally {
    for (const child of allChildren) child.kill('SIGKILL');
    await zk.close().catch(() => {});
    await ensemble.close();
  }

  const name = `${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')}-scale${OBSERVERS ? `-${OBSERVERS}obs` : ''}`;
  const f = (n: number | undefined, d = 1) => (n === undefined ? 'did not converge in 60 s' : n.toFixed(d));
  const md = [
    `# zkroute at scale on one ensemble (${name})`, '',
    `Machine: ${cpus().length} cores, Node ${process.version}. Command: \`npm run bench:scale -- --sidecars ${FLEETS.join(',')} --processes ${PROCESSES}${OBSERVERS ? ` --observers ${OBSERVERS}` : ''}${opts.jitter === 'auto' ? '' : ` --jitter ${opts.jitter}`}\`.`,
    `Ensemble: 3 voting members${OBSERVERS ? ` and ${OBSERVERS} observers (clients list every member)` : ''}, the test harness, on this machine. Each sidecar is a real Discovery client with its own session (${SESSION_TIMEOUT_MS / 1000} s timeout), watching S = ${S} services (one with I = ${I} instances, the others 3), ${PROCESSES} processes of sidecars.`,
    `Rolling deploy: each of the ${I} instances deregistered, then its successor registered, 20 ms apart (${2 * I} changes). Requests: the members' \`zk_packets_received\` (mntr) during the deploy, less the session pings counted in a 5 s quiet window just before. Propagation: from just before each write was sent to each sidecar's table change, every change seen by every sidecar. Churn burst: 100 instances created and deleted in batches of 20, as fast as the writes go (200 changes); converged: every sidecar back at the deploy's ${I} instances. Storm: every sidecar process stopped (SIGSTOP) for the session timeout plus 4 s, so the ensemble expires every session, then resumed: peak requests per second in 200 ms samples from just before the resume, and the time from the resume until every watch of every sidecar has read again on a new session, with --resync-jitter ${opts.jitter} (a window of ${WINDOW_MS / 1000} s for these ${S + 1} watches) and 0; peaks over 200 ms and over 1 s; converged from the resume, and the most any sidecar took from its own new session.`, '',
    `| W sidecars | requests per change per sidecar | watches per member | propagation p50 / p99 ms | discovery CPU per event per sidecar, us | memory per session, KiB | churn burst (200 ops): requests per change per sidecar, converged ms | storm peak req/s over 200 ms, jitter 0 / ${opts.jitter} | over 1 s | peak ratio, 200 ms / 1 s | storm converged ms after the resume, jitter 0 / ${opts.jitter} | after a sidecar's new session | new sessions after the resume, p50 / max ms, jitter 0 / ${opts.jitter} | failed session attempts, jitter 0 / ${opts.jitter} |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) => `| ${r.w} | ${r.perChangePerSidecar.toFixed(2)} | ${r.watches.join(' / ')} | ${f(r.propagationP50)} / ${f(r.propagationP99)} | ${f(r.cpuUsPerEvent)} | ${f(r.memoryKiBPerSession, 0)} | ${r.churn.perChangePerSidecar.toFixed(2)}, ${f(r.churn.convergeMs, 0)} | ${Math.round(r.storm.off.peak200ms)} / ${Math.round(r.storm.on.peak200ms)} | ${Math.round(r.storm.off.peak1s)} / ${Math.round(r.storm.on.peak1s)} | ${(r.storm.off.peak200ms / Math.max(1, r.storm.on.peak200ms)).toFixed(1)}x / ${(r.storm.off.peak1s / Math.max(1, r.storm.on.peak1s)).toFixed(1)}x | ${f(r.storm.off.convergeMs, 0)} / ${f(r.storm.on.convergeMs, 0)} | ${f(r.storm.off.afterSessionMs, 0)} / ${f(r.storm.on.afterSessionMs, 0)} | ${f(r.storm.off.sessionP50Ms, 0)} / ${f(r.storm.off.sessionMaxMs, 0)}, ${f(r.storm.on.sessionP50Ms, 0)} / ${f(r.storm.on.sessionMaxMs, 0)} | ${r.storm.off.renewFailures} / ${r.storm.on.renewFailures} |`),
    '',
  ].join('\n');
  mkdirSync(opts.out, { recursive: true });
  writeFileSync(path.join(opts.out, `${name}.md`), md);
  process.stdout.write(md);
  log(`wrote benchmarks/results/${name}.md`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
