// Helpers for the benchmark harness: processes, /proc readings, wrk runs and their parsing.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connectZk, type ZkClient } from '../src/zookeeper/client.js';

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  /** Non-2xx/3xx responses plus socket errors. */
  readonly errors: number;
}

const CLK_TCK = 100;

/** utime + stime of `pids` in seconds (from /proc/<pid>/stat). */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited
    }
  }
  return ticks / CLK_TCK;
}

/** Peak resident set (VmHWM) of `pid` in MiB. */
export function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

export { childPids } from '../test/helpers/processes.js';

function ms(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value);
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** Parses `wrk --latency` output. */
export function parseWrk(text: string): WrkResult {
  const pct = (p: string) => ms(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text)?.[1] ?? '');
  const done = /(\d+) requests in ([\d.]+)(\w+),/.exec(text);
  const requests = Number(done?.[1] ?? 0);
  const seconds = done ? ms(`${done[2]}${done[3]}`) / 1000 : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { requests, seconds, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0), p50Ms: pct('50'), p90Ms: pct('90'), p99Ms: pct('99'), errors: non2xx + socketErrors };
}

/** Runs wrk for `seconds` (bounded) and parses it. `cpuList` pins it with taskset. */
export function wrk(url: string, connections: number, seconds: number, cpuList?: string): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s', url];
  const [cmd, argv] = cpuList ? ['taskset', ['-c', cpuList, 'wrk', ...args]] : ['wrk', args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`wrk exited ${code}: ${out}`));
      else resolve(parseWrk(out));
    });
  });
}

/** Starts a process (optionally pinned); every one is killed at exit. */
export function start(cmd: string, args: readonly string[], options: { cpuList?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const [c, a] = options.cpuList ? ['taskset', ['-c', options.cpuList, cmd, ...args]] : [cmd, [...args]];
  const child = spawn(c, a as string[], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  started.add(child);
  child.on('exit', () => started.delete(child));
  return child;
}
const started = new Set<ChildProcess>();
export function killAll(): void {
  for (const child of started) child.kill('SIGKILL');
}
process.once('exit', killAll);

/** The first line a process prints on stdout. */
export function firstLine(child: ChildProcess, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('no output in time')), timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      buffer += c.toString();
      const nl = buffer.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(buffer.slice(0, nl).trim());
      }
    });
  });
}

/** Waits until `url` answers 200 (bounded). */
export async function waitForOk(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await sleep(50);
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * The benchmark upstream (`upstream.mjs`, on `cpuList`) registered as service `bench` under
 * /providers in the ZooKeeper at `connectString`; the client holding its ephemeral node is returned.
 */
export async function startRegisteredUpstream(connectString: string, cpuList?: string): Promise<{ client: ZkClient; port: number }> {
  const upstream = start(process.execPath, [path.join(path.dirname(fileURLToPath(import.meta.url)), 'upstream.mjs')], cpuList ? { cpuList } : {});
  const port = Number(await firstLine(upstream));
  const client = await connectZk({ connectString });
  await client.mkdirp('/providers/bench');
  await client.create('/providers/bench/u1', JSON.stringify({ host: '127.0.0.1', port }), { ephemeral: true });
  return { client, port };
}
