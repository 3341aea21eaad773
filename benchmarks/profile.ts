// Where the proxy's time goes: one zkroute proxy under wrk (pinned: load + upstream on core 0,
// proxy on core 1) with --cpu-prof, then the functions with the most self time. Optionally
// --trace-gc: scavenges per 10,000 requests (allocation per request is what makes them).
// Usage: npm run bench:profile [-- --engine zkroute|node] [-- --connections 32] [-- --duration 5] [-- --gc] [-- --access-log]
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePorts, ZooKeeperServer } from '../src/dev/zookeeper-server.js';
import { cpuSeconds, killAll, start, startRegisteredUpstream, waitForOk, wrk } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({ options: {
  engine: { type: 'string', default: 'zkroute' },
  connections: { type: 'string', default: '32' },
  duration: { type: 'string', default: '5' },
  gc: { type: 'boolean', default: false },
  /** Run the proxy with --access-log to a file (its cost per request). */
  'access-log': { type: 'boolean', default: false },
  top: { type: 'string', default: '30' },
} });

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** Self time per function, as shares of all samples. */
function selfTimes(profile: Profile): [string, number][] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    const where = frame.url ? `${frame.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:')}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName || '(anonymous)'} ${where}`.trim();
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self].sort((a, b) => b[1] - a[1]).map(([k, t]) => [k, t / total]);
}

async function main(): Promise<void> {
  const zk = await ZooKeeperServer.start();
  const profDir = mkdtempSync(path.join(tmpdir(), 'zkroute-prof-'));
  try {
    const { client } = await startRegisteredUpstream(zk.connectString, '0');
    const nodeFlags = ['--cpu-prof', `--cpu-prof-dir=${profDir}`, ...(opts.gc ? ['--trace-gc'] : [])];
    const [port] = (await freePorts(1)) as [number];
    const proxy = start(process.execPath, [...nodeFlags, path.join(ROOT, 'bin/zkroute.js'), 'proxy', '--zookeeper', zk.connectString, '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--log-level', 'warn', '--http-engine', opts.engine, ...(opts['access-log'] ? ['--access-log', path.join(profDir, 'access.log')] : [])], { cpuList: '1' });
    let gcLines = 0;
    let scavenges = 0;
    let lastGc = '';
    proxy.stdout!.on('data', (c: Buffer) => {
      for (const line of c.toString().split('\n')) {
        if (line.includes('Scavenge')) {
          scavenges += 1;
          lastGc = line.trim();
        }
        if (line.includes('Mark-Compact') || line.includes('Scavenge')) gcLines += 1;
      }
    });
    const url = `http://127.0.0.1:${port}/svc/bench/small`;
    await waitForOk(url);
    await wrk(url, Number(opts.connections), 1, '0');
    const scavengesBefore = scavenges;
    const cpuBefore = cpuSeconds([proxy.pid!]);
    const result = await wrk(url, Number(opts.connections), Number(opts.duration), '0');
    const cpu = cpuSeconds([proxy.pid!]) - cpuBefore;
    const scavengesDuring = scavenges - scavengesBefore;
    proxy.kill('SIGINT');
    await new Promise((r) => proxy.once('exit', r));
    await client.close();
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('no profile written');
    const profile = JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as Profile;
    console.log(`engine ${opts.engine}${opts['access-log'] ? ', access log on' : ''}, ${opts.connections} connections, ${opts.duration} s pinned: ${Math.round(result.rps)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${((cpu / result.requests) * 1e6).toFixed(1)} us CPU/request${opts.gc ? `, ${((scavengesDuring / result.requests) * 10_000).toFixed(1)} scavenges per 10,000 requests (${gcLines} GC lines)` : ''}`);
    if (opts.gc) console.log(`last scavenge: ${lastGc}`);
    console.log(`profile: ${path.join(profDir, file)} (whole run, warm-up included); self time:`);
    for (const [name, share] of selfTimes(profile).slice(0, Number(opts.top))) console.log(`${(share * 100).toFixed(1).padStart(5)}%  ${name}`);
  } finally {
    killAll();
    await zk.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  killAll();
  process.exit(1);
});
