import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY = path.join(ROOT, 'test/helpers/cli-entry.ts');

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

// Runs at a time in one test process: each one compiles the sources (tsx) for about a second of
// CPU, and a file's config-error tests started 18 at once, which on 2 cores beside another
// test file's ZooKeeper ensemble took past the 20 s limit (CI, stop 24).
const MAX_RUNS = 3;
let running = 0;
const waiting: (() => void)[] = [];

/** Runs the CLI from source (no build needed) and collects its output; killed after timeoutMs (counted from its start). */
export async function runCli(args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  if (running >= MAX_RUNS) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await runOnce(args, options);
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function runOnce(args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: ROOT, env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface SpawnedCli {
  readonly child: import('node:child_process').ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** The parsed JSON log lines on stderr so far. */
  logs(): Record<string, unknown>[];
  readonly exited: Promise<number | null>;
}

/** Starts the CLI from source as a long-running process (killed in `stopAll`). */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): SpawnedCli {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  spawned.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => {
    spawned.delete(child);
    resolve(code);
  }));
  return {
    child,
    output: () => out + err,
    logs: () => err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    exited,
  };
}

const spawned = new Set<import('node:child_process').ChildProcess>();
/** Kills every process spawnCli started that is still running. */
export function stopAll(): void {
  for (const child of spawned) child.kill('SIGKILL');
}
process.once('exit', stopAll);

export { childPids, isAlive as alive } from './processes.js';
