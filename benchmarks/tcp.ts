// The TCP section of `npm run bench`: zkroute's --tcp against HAProxy `mode tcp` (the data plane
// Synapse drives) and direct, in one run, alternating (A B C, then C B A): (a) request/response
// over long-lived connections (64-byte ping-pong; at 1 connection for the added latency per
// call), (b) a new connection per call, (c) bulk bytes. Everything on 127.0.0.1, every load
// bounded by time, every process stopped at the end.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ZkClient } from '../src/zookeeper/client.js';
import { freePorts } from '../src/dev/zookeeper-server.js';
import { cpuSeconds, firstLine, median, start } from './lib.js';

/** `node-floor`: benchmarks/tcp-floor.mjs, the cheapest Node forwarder (zkroute's floor). */
export type TcpConfig = 'direct' | 'haproxy' | 'zkroute' | 'node-floor' | 'zkroute-thrift';
/** `thrift-*`: 64-byte Thrift calls (answered by the echoing upstream) at 1 and 32 connections. */
export type TcpTest = 'pingpong-1' | 'pingpong-32' | 'connect-8' | 'bulk-1' | 'thrift-1' | 'thrift-32';

export interface TcpRow {
  readonly test: TcpTest;
  readonly config: TcpConfig;
  readonly perSecond: number;
  readonly mbPerSecond: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly errors: number;
  /** Proxy CPU per operation (per MiB for bulk), microseconds. */
  readonly cpuUs: number | undefined;
}

export interface TcpBenchContext {
  readonly root: string;
  readonly tmp: string;
  readonly zk: ZkClient;
  readonly zookeeper: string;
  readonly seconds: number;
  readonly reps: number;
  readonly loadCpu: string | undefined;
  readonly proxyCpu: string | undefined;
  readonly log: (msg: string) => void;
}

interface LoadResult {
  ops: number;
  errors: number;
  perSecond: number;
  mbPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

function runLoad(ctx: TcpBenchContext, args: string[]): Promise<LoadResult> {
  const [cmd, argv] = ctx.loadCpu ? ['taskset', ['-c', ctx.loadCpu, process.execPath, path.join(ctx.root, 'benchmarks/tcp-load.mjs'), ...args]] : [process.execPath, [path.join(ctx.root, 'benchmarks/tcp-load.mjs'), ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv as string[], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (ctx.seconds + 30) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`tcp-load ${args.join(' ')} exited ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult);
    });
  });
}

/** Runs the TCP section; resolves with its rows (every repetition). */
export async function runTcpBench(ctx: TcpBenchContext): Promise<{ rows: TcpRow[]; haproxyVersion: string }> {
  const upstream = start(process.execPath, [path.join(ctx.root, 'benchmarks/tcp-upstream.mjs')], ctx.loadCpu ? { cpuList: ctx.loadCpu } : {});
  const upPort = Number(await firstLine(upstream));
  await ctx.zk.mkdirp('/providers/tcpbench');
  await ctx.zk.create('/providers/tcpbench/u1', JSON.stringify({ host: '127.0.0.1', port: upPort }), { ephemeral: true });
  const [haproxyPort, zkroutePort, floorPort, thriftPort] = (await freePorts(4)) as [number, number, number, number];

  const cfg = path.join(ctx.tmp, 'haproxy.cfg');
  writeFileSync(cfg, [
    'global', '  maxconn 4000', '  nbthread 1',
    'defaults', '  mode tcp', '  timeout connect 1s', '  timeout client 1h', '  timeout server 1h',
    'listen bench', `  bind 127.0.0.1:${haproxyPort}`, `  server u1 127.0.0.1:${upPort}`, '',
  ].join('\n'));
  const haproxy = start('haproxy', ['-db', '-f', cfg], ctx.proxyCpu ? { cpuList: ctx.proxyCpu } : {});
  const zkroute = start(process.execPath, [path.join(ctx.root, 'bin/zkroute.js'), 'proxy', '--zookeeper', ctx.zookeeper, '--listen', 'none', '--admin', '127.0.0.1:0', '--tcp', `127.0.0.1:${zkroutePort}=tcpbench`, '--thrift', `127.0.0.1:${thriftPort}=tcpbench`, '--log-level', 'warn'], ctx.proxyCpu ? { cpuList: ctx.proxyCpu } : {});
  zkroute.stderr!.on('data', (c: Buffer) => process.stderr.write(`zkroute: ${c}`));
  const floor = start(process.execPath, [path.join(ctx.root, 'benchmarks/tcp-floor.mjs'), String(floorPort), String(upPort)], ctx.proxyCpu ? { cpuList: ctx.proxyCpu } : {});
  const ports: Record<TcpConfig, number> = { direct: upPort, haproxy: haproxyPort, zkroute: zkroutePort, 'node-floor': floorPort, 'zkroute-thrift': thriftPort };
  const pids: Record<TcpConfig, () => number[]> = { direct: () => [], haproxy: () => [haproxy.pid!], zkroute: () => [zkroute.pid!], 'node-floor': () => [floor.pid!], 'zkroute-thrift': () => [zkroute.pid!] };
  try {
    // Ready when a round trip goes through.
    for (const config of ['haproxy', 'zkroute', 'node-floor', 'zkroute-thrift'] as const) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const r = await runLoad({ ...ctx, seconds: 0.2 }, ['pingpong', String(ports[config]), '1', '0.2', 'thrift']).catch(() => undefined);
        if (r && r.ops > 0 && r.errors === 0) break;
        if (Date.now() > deadline) throw new Error(`${config} did not pass TCP traffic within 20 s`);
        await sleep(100);
      }
    }
    const haproxyVersion = execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0]!.trim();
    const tests: [TcpTest, string[]][] = [
      ['pingpong-1', ['pingpong', '1']],
      ['pingpong-32', ['pingpong', '32']],
      ['connect-8', ['connect', '8']],
      ['bulk-1', ['bulk', '1']],
      ['thrift-1', ['pingpong', '1', 'thrift']],
      ['thrift-32', ['pingpong', '32', 'thrift']],
    ];
    // --thrift is measured on Thrift calls only; the others on everything.
    const takes = (config: TcpConfig, test: TcpTest) => (config === 'zkroute-thrift' ? test.startsWith('thrift') : config !== 'node-floor' || !test.startsWith('thrift'));
    const rows: TcpRow[] = [];
    for (let rep = 0; rep < ctx.reps; rep++) {
      const order: TcpConfig[] = rep % 2 === 0 ? ['direct', 'haproxy', 'zkroute', 'node-floor', 'zkroute-thrift'] : ['zkroute-thrift', 'node-floor', 'zkroute', 'haproxy', 'direct'];
      for (const [test, [mode, count, payload]] of tests) {
        for (const config of order) {
          if (!takes(config, test)) continue;
          const before = cpuSeconds(pids[config]());
          const r = await runLoad(ctx, [mode!, String(ports[config]), count!, String(ctx.seconds), ...(payload ? [payload] : [])]);
          const cpu = cpuSeconds(pids[config]()) - before;
          const per = test === 'bulk-1' ? r.mbPerSecond * ctx.seconds : r.ops;
          rows.push({ test, config, perSecond: r.perSecond, mbPerSecond: r.mbPerSecond, p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.errors, cpuUs: config === 'direct' || per === 0 ? undefined : (cpu / per) * 1e6 });
          ctx.log(`tcp ${test} ${config}: ${test === 'bulk-1' ? `${r.mbPerSecond.toFixed(0)} MiB/s` : `${Math.round(r.perSecond)}/s`}${r.p50Ms !== null ? `, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms!.toFixed(3)} ms` : ''}, errors ${r.errors}`);
        }
      }
    }
    return { rows, haproxyVersion };
  } finally {
    for (const p of [haproxy, zkroute, floor, upstream]) p.kill('SIGTERM');
    await Promise.all([haproxy, zkroute, floor, upstream].map((p) => Promise.race([new Promise((r) => p.once('exit', r)), sleep(5000)])));
  }
}

const f = (v: number | null | undefined, digits = 2) => (v === undefined || v === null || Number.isNaN(v) ? '-' : v.toFixed(digits));

/** The TCP section of the report: medians per test and config, ratios, targets. */
export function tcpReport(rows: readonly TcpRow[], haproxyVersion: string, reps: number, seconds: number): string[] {
  const med = (test: TcpTest, config: TcpConfig, pick: (r: TcpRow) => number | null | undefined) => {
    const values = rows.filter((r) => r.test === test && r.config === config).map(pick).filter((v): v is number => typeof v === 'number');
    return values.length ? median(values) : undefined;
  };
  const met = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : 'not met');
  const lines: string[] = ['## TCP (`--tcp`) and Thrift (`--thrift`), against HAProxy `mode tcp` and direct', ''];
  lines.push(`${haproxyVersion}, 1 thread; node-floor is benchmarks/tcp-floor.mjs (accept, connect, data -> write with pause/resume, nothing else). Load: benchmarks/tcp-load.mjs (one Node process); upstream: benchmarks/tcp-upstream.mjs (echo, or a stream for bulk). Medians of ${reps} run(s) of ${seconds} s, configurations alternating. 64-byte ping-pong.`, '');
  lines.push('| test | config | per second | p50 ms | p99 ms | proxy CPU us per op (per MiB for bulk) | errors |', '|---|---|---|---|---|---|---|');
  const tests: TcpTest[] = ['pingpong-1', 'pingpong-32', 'connect-8', 'bulk-1', 'thrift-1', 'thrift-32'];
  for (const test of tests) {
    for (const config of ['direct', 'haproxy', 'zkroute', 'node-floor', 'zkroute-thrift'] as const) {
      if (!rows.some((r) => r.test === test && r.config === config)) continue;
      const per = test === 'bulk-1' ? `${f(med(test, config, (r) => r.mbPerSecond), 0)} MiB/s` : f(med(test, config, (r) => r.perSecond), 0);
      const errors = rows.filter((r) => r.test === test && r.config === config).reduce((n, r) => n + r.errors, 0);
      lines.push(`| ${test} | ${config} | ${per} | ${f(med(test, config, (r) => r.p50Ms), 3)} | ${f(med(test, config, (r) => r.p99Ms), 3)} | ${f(med(test, config, (r) => r.cpuUs), 1)} | ${errors} |`);
    }
  }
  const ratio = (test: TcpTest, pick: (r: TcpRow) => number) => {
    const z = med(test, 'zkroute', pick);
    const h = med(test, 'haproxy', pick);
    return z !== undefined && h !== undefined ? z / h : undefined;
  };
  const rt = ratio('pingpong-32', (r) => r.perSecond);
  const conn = ratio('connect-8', (r) => r.perSecond);
  const bulk = ratio('bulk-1', (r) => r.mbPerSecond);
  const added = (config: TcpConfig, pick: (r: TcpRow) => number | null) => (med('pingpong-1', config, pick) ?? NaN) - (med('pingpong-1', 'direct', pick) ?? NaN);
  const zP50 = added('zkroute', (r) => r.p50Ms);
  const hP50 = added('haproxy', (r) => r.p50Ms);
  lines.push('', '| ratio | value |', '|---|---|');
  lines.push(`| round trips/s, 32 connections, zkroute / HAProxy | ${f(rt)} |`);
  lines.push(`| connections/s, 8 in parallel, zkroute / HAProxy | ${f(conn)} |`);
  lines.push(`| bulk MiB/s, 1 connection, zkroute / HAProxy | ${f(bulk)} |`);
  const vsFloor = (test: TcpTest, pick: (r: TcpRow) => number) => {
    const z = med(test, 'zkroute', pick);
    const n = med(test, 'node-floor', pick);
    return z !== undefined && n !== undefined ? z / n : undefined;
  };
  lines.push(`| zkroute / node-floor (the cheapest Node forwarder): round trips, connections, bulk | ${f(vsFloor('pingpong-32', (r) => r.perSecond))} / ${f(vsFloor('connect-8', (r) => r.perSecond))} / ${f(vsFloor('bulk-1', (r) => r.mbPerSecond))} |`);
  lines.push(`| node-floor / HAProxy: round trips, connections, bulk | ${f((med('pingpong-32', 'node-floor', (r) => r.perSecond) ?? NaN) / (med('pingpong-32', 'haproxy', (r) => r.perSecond) ?? NaN))} / ${f((med('connect-8', 'node-floor', (r) => r.perSecond) ?? NaN) / (med('connect-8', 'haproxy', (r) => r.perSecond) ?? NaN))} / ${f((med('bulk-1', 'node-floor', (r) => r.mbPerSecond) ?? NaN) / (med('bulk-1', 'haproxy', (r) => r.mbPerSecond) ?? NaN))} |`);
  lines.push(`| added per-call latency at 1 connection, zkroute - direct: p50 / p99 ms | ${f(zP50, 3)} / ${f(added('zkroute', (r) => r.p99Ms), 3)} |`);
  lines.push(`| added per-call latency at 1 connection, HAProxy - direct: p50 / p99 ms | ${f(hP50, 3)} / ${f(added('haproxy', (r) => r.p99Ms), 3)} |`);
  const thriftAdded = (med('thrift-1', 'zkroute-thrift', (r) => r.p50Ms) ?? NaN) - (med('thrift-1', 'direct', (r) => r.p50Ms) ?? NaN);
  const thriftVsHaproxy = (med('thrift-32', 'zkroute-thrift', (r) => r.perSecond) ?? NaN) / (med('thrift-32', 'haproxy', (r) => r.perSecond) ?? NaN);
  lines.push(`| Thrift calls/s, 32 connections, --thrift / HAProxy (which balances connections, not calls) | ${f(thriftVsHaproxy)} |`);
  lines.push(`| Thrift calls/s, 32 connections, --thrift / --tcp | ${f((med('thrift-32', 'zkroute-thrift', (r) => r.perSecond) ?? NaN) / (med('thrift-32', 'zkroute', (r) => r.perSecond) ?? NaN))} |`);
  lines.push(`| added p50 / p99 per Thrift call at 1 connection, --thrift - direct, ms | ${f(thriftAdded, 3)} / ${f((med('thrift-1', 'zkroute-thrift', (r) => r.p99Ms) ?? NaN) - (med('thrift-1', 'direct', (r) => r.p99Ms) ?? NaN), 3)} |`);
  lines.push('', '| target | measured | |', '|---|---|---|');
  lines.push(`| --thrift: added p50 per call <= 0.1 ms over direct at 1 connection | ${f(thriftAdded, 3)} ms | ${met(Number.isNaN(thriftAdded) ? undefined : thriftAdded <= 0.1)} |`);
  lines.push(`| --thrift: calls/s at 32 connections >= 0.7 x HAProxy mode tcp | ${f(thriftVsHaproxy)} | ${met(Number.isNaN(thriftVsHaproxy) ? undefined : thriftVsHaproxy >= 0.7)} |`);
  lines.push(`| round trips/s >= 0.9 x HAProxy | ${f(rt)} | ${met(rt === undefined ? undefined : rt >= 0.9)} |`);
  lines.push(`| connections/s >= 0.9 x HAProxy | ${f(conn)} | ${met(conn === undefined ? undefined : conn >= 0.9)} |`);
  lines.push(`| per-call added p50 within 0.02 ms of HAProxy's | ${f(zP50 - hP50, 3)} ms | ${met(Number.isNaN(zP50 - hP50) ? undefined : zP50 - hP50 <= 0.02)} |`);
  lines.push(`| bulk throughput >= 0.9 x HAProxy | ${f(bulk)} | ${met(bulk === undefined ? undefined : bulk >= 0.9)} |`);
  lines.push('');
  return lines;
}
