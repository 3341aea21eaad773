// zkroute benchmarks: routing throughput and latency against direct and nginx in one run
// (alternating configurations), then discovery figures. Writes benchmarks/results/<date>.md and
// .svg. Usage: npm run bench [-- --quick] [-- --pin] [-- --duration 5] [-- --reps 2] [-- --workers 2]
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDiscovery } from '../src/discovery/discovery.js';
import { freePorts, ZooKeeperServer } from '../src/dev/zookeeper-server.js';
import { silentLogger } from '../src/log.js';
import { connectZk, type ZkClient } from '../src/zookeeper/client.js';
import { childPids, cpuSeconds, firstLine, killAll, median, peakRssMiB, percentile, start, waitForOk, wrk, type WrkResult } from './lib.js';
import { renderChart } from './chart.js';
import { runTcpBench, tcpReport } from './tcp.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({ options: {
  quick: { type: 'boolean', default: false },
  pin: { type: 'boolean', default: false },
  duration: { type: 'string' },
  reps: { type: 'string' },
  out: { type: 'string', default: path.join(ROOT, 'benchmarks/results') },
  label: { type: 'string', default: '' },
  /** Print the one-child update cost only (for iterating on discovery). */
  'update-only': { type: 'boolean', default: false },
  /** Also measure `zkroute proxy --workers N` (node:cluster) as a fourth configuration. */
  workers: { type: 'string' },
  /** Also measure benchmarks/floor-proxy.mjs, a bare Node + undici proxy (zkroute's floor). */
  floor: { type: 'boolean', default: false },
  /** Only the TCP section (zkroute --tcp vs HAProxy mode tcp vs direct). */
  'tcp-only': { type: 'boolean', default: false },
} });
const WORKERS = opts.workers === undefined ? 0 : Number(opts.workers);
if (opts.workers !== undefined && !(Number.isInteger(WORKERS) && WORKERS > 1)) throw new Error(`--workers ${JSON.stringify(opts.workers)}: expected a whole number above 1`);
const seconds = Number(opts.duration ?? (opts.quick ? 2 : 5));
const reps = Number(opts.reps ?? (opts.quick ? 1 : 2));
const LOAD_CPU = opts.pin ? '0' : undefined;
const PROXY_CPU = opts.pin ? '1' : undefined;
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/** `zkroute`: the wire engine (default); `zkroute-node`: --http-engine node; `zkroute-workers`: --workers N; `undici-floor`: floor-proxy.mjs (when asked for). */
type Config = 'direct' | 'nginx' | 'zkroute' | 'zkroute-node' | 'zkroute-workers' | 'undici-floor';
interface Row { body: string; connections: number; config: Config; rep: number; result: WrkResult; cpuPer10k: number | undefined }

function setAffinity(pids: number[], cpuList: string): void {
  for (const pid of pids) execFileSync('taskset', ['-a', '-pc', cpuList, String(pid)], { stdio: 'ignore' });
}

async function createMany(zk: ZkClient, paths: string[], data: (i: number) => string, batch = 200): Promise<void> {
  for (let i = 0; i < paths.length; i += batch) {
    await Promise.all(paths.slice(i, i + batch).map((p, j) => zk.create(p, data(i + j)).catch((err: { code?: string }) => {
      if (err.code !== 'NODE_EXISTS') throw err;
    })));
  }
}

let stopNginx: (() => Promise<void>) | undefined;

async function main(): Promise<void> {
  for (const tool of ['wrk', 'nginx', 'haproxy']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is missing: run scripts/install-bench-tools.sh (as root)`);
    }
  }
  const tmp = mkdtempSync(path.join(tmpdir(), 'zkroute-bench-'));
  const zkServer = await ZooKeeperServer.start();
  const zk = await connectZk({ connectString: zkServer.connectString });
  try {
    const tcpContext = { root: ROOT, tmp, zk, zookeeper: zkServer.connectString, seconds, reps: Math.max(reps, 2), loadCpu: LOAD_CPU, proxyCpu: PROXY_CPU, log };
    if (opts['tcp-only']) {
      const tcp = await runTcpBench(tcpContext);
      const name = `${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')}${opts.label ? `-${opts.label}` : ''}-tcp${opts.quick ? '-quick' : ''}`;
      const md = [`# zkroute TCP benchmark ${name}`, '', `Machine: ${cpus().length} cores, Node ${process.version}. Command: \`npm run bench -- --tcp-only${opts.quick ? ' --quick' : ''}${opts.pin ? ' --pin' : ''} --duration ${seconds} --reps ${reps}\`. ${opts.pin ? 'Pinned: load + upstream on core 0, proxy on core 1.' : 'Unpinned.'}`, '', ...tcpReport(tcp.rows, tcp.haproxyVersion, tcpContext.reps, seconds)].join('\n');
      mkdirSync(opts.out, { recursive: true });
      writeFileSync(path.join(opts.out, `${name}.md`), md);
      process.stdout.write(md);
      log(`wrote ${path.relative(ROOT, path.join(opts.out, `${name}.md`))}`);
      return;
    }
    if (opts['update-only']) {
      const cpu = await updateCost(zk, zkServer.connectString, 1000, 20);
      log(`one new child in a 1000-instance service: median ${median(cpu).toFixed(0)} us CPU (${cpu.map((c) => c.toFixed(0)).join(' ')})`);
      return;
    }
    // --- the three configurations -------------------------------------------------------
    const upstream = start(process.execPath, [path.join(ROOT, 'benchmarks/upstream.mjs')], { ...(LOAD_CPU ? { cpuList: LOAD_CPU } : {}) });
    const upPort = Number(await firstLine(upstream));
    await zk.mkdirp('/providers/bench');
    await zk.create('/providers/bench/u1', JSON.stringify({ host: '127.0.0.1', port: upPort }), { ephemeral: true });

    const [zkroutePort, nginxPort, workersPort, floorPort, nodeEnginePort] = (await freePorts(5)) as [number, number, number, number, number];
    const startProxy = (port: number, extra: string[]) => {
      const proxy = start(process.execPath, [path.join(ROOT, 'bin/zkroute.js'), 'proxy', '--zookeeper', zkServer.connectString, '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--log-level', 'warn', ...extra], { ...(PROXY_CPU ? { cpuList: PROXY_CPU } : {}) });
      proxy.stderr!.on('data', (c: Buffer) => process.stderr.write(`zkroute: ${c}`));
      return proxy;
    };
    const zkroute = startProxy(zkroutePort, []);
    const nodeEngine = startProxy(nodeEnginePort, ['--http-engine', 'node']);
    const workers = WORKERS > 1 ? startProxy(workersPort, ['--workers', String(WORKERS)]) : undefined;
    const floor = opts.floor ? start(process.execPath, [path.join(ROOT, 'benchmarks/floor-proxy.mjs'), String(floorPort), `127.0.0.1:${upPort}`, '/svc/bench'], { ...(PROXY_CPU ? { cpuList: PROXY_CPU } : {}) }) : undefined;

    for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(tmp, d), { recursive: true });
    writeFileSync(path.join(tmp, 'nginx.conf'), `
worker_processes 1;
daemon off;
user root;
pid ${tmp}/nginx.pid;
error_log ${tmp}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  upstream bench { server 127.0.0.1:${upPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${nginxPort};
    location /svc/bench/ { proxy_pass http://bench/; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`);
    const nginx = start('nginx', ['-p', tmp, '-c', path.join(tmp, 'nginx.conf')], { ...(PROXY_CPU ? { cpuList: PROXY_CPU } : {}) });
    // A SIGKILLed nginx master leaves its worker behind: stop it with SIGTERM (it stops the
    // workers) and kill any worker still there.
    stopNginx = async () => {
      const workers = childPids(nginx.pid!);
      nginx.kill('SIGTERM');
      await Promise.race([new Promise((r) => nginx.once('exit', r)), sleep(3000)]);
      for (const pid of workers) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    const urls: Record<Config, (body: string) => string> = {
      direct: (body) => `http://127.0.0.1:${upPort}/${body}`,
      nginx: (body) => `http://127.0.0.1:${nginxPort}/svc/bench/${body}`,
      zkroute: (body) => `http://127.0.0.1:${zkroutePort}/svc/bench/${body}`,
      'zkroute-node': (body) => `http://127.0.0.1:${nodeEnginePort}/svc/bench/${body}`,
      'zkroute-workers': (body) => `http://127.0.0.1:${workersPort}/svc/bench/${body}`,
      'undici-floor': (body) => `http://127.0.0.1:${floorPort}/svc/bench/${body}`,
    };
    const configs: Config[] = ['direct', 'nginx', 'zkroute', 'zkroute-node'];
    if (workers) configs.push('zkroute-workers');
    if (floor) configs.push('undici-floor');
    for (const config of configs) await waitForOk(urls[config]('small'));
    const nginxPids = () => [nginx.pid!, ...childPids(nginx.pid!)];
    // The primary and its workers: a cluster's CPU is all of its processes'.
    const workersPids = () => (workers ? [workers.pid!, ...childPids(workers.pid!)] : []);
    const floorPids = () => (floor ? [floor.pid!] : []);
    const proxyPids: Record<Config, () => number[]> = { direct: () => [], nginx: nginxPids, zkroute: () => [zkroute.pid!], 'zkroute-node': () => [nodeEngine.pid!], 'zkroute-workers': workersPids, 'undici-floor': floorPids };
    const allPids = () => [upstream.pid!, zkroute.pid!, nodeEngine.pid!, ...nginxPids(), ...workersPids(), ...floorPids()];
    log(`upstream :${upPort}, nginx :${nginxPort}, zkroute :${zkroutePort}; ${seconds}s runs, ${reps} repetitions, ${opts.pin ? 'pinned (load+upstream core 0, proxy core 1) except at 1 connection' : 'unpinned'}`);

    for (const config of configs) await wrk(urls[config]('small'), 32, 1, LOAD_CPU);
    const rows: Row[] = [];
    const plan: [string, number][] = [['small', 1], ['small', 32], ['small', 128], ['4k', 32]];
    for (const [body, connections] of plan) {
      // One-connection latency unpinned: pinned across cores even nginx pays wake-ups.
      if (opts.pin) setAffinity(allPids(), connections === 1 ? '0,1' : '0');
      if (opts.pin && connections !== 1) setAffinity([zkroute.pid!, nodeEngine.pid!, ...nginxPids(), ...workersPids(), ...floorPids()], '1');
      // One-connection tails swing most run to run on a shared 2-core box: at least 3 repetitions.
      const repsHere = connections === 1 ? Math.max(reps, 3) : reps;
      for (let rep = 0; rep < repsHere; rep++) {
        const order: Config[] = rep % 2 === 0 ? configs : [...configs].reverse();
        for (const config of order) {
          const before = cpuSeconds(proxyPids[config]());
          const result = await wrk(urls[config](body), connections, seconds, connections === 1 ? undefined : LOAD_CPU);
          const cpu = cpuSeconds(proxyPids[config]()) - before;
          rows.push({ body, connections, config, rep, result, cpuPer10k: config === 'direct' ? undefined : (cpu / result.requests) * 10_000 });
          log(`${body} c=${connections} ${config}: ${Math.round(result.rps)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms${config === 'direct' ? '' : `, ${((cpu / result.requests) * 1e6).toFixed(0)} us CPU/req`}, errors ${result.errors}`);
        }
      }
    }
    const rss = { zkroute: peakRssMiB(zkroute.pid!), nginx: Math.max(...nginxPids().map(peakRssMiB)) };
    if (workers) {
      workers.kill('SIGTERM');
      await Promise.race([new Promise((r) => workers.once('exit', r)), sleep(15_000)]);
    }

    // --- TCP and Thrift (while the ZooKeeper client is fresh: the memory step below loads it hard) ---
    const tcp = await runTcpBench(tcpContext);

    // --- discovery: propagation ----------------------------------------------------------
    const events = opts.quick ? 50 : 200;
    await zk.mkdirp('/providers/prop');
    await zk.create('/providers/prop/anchor', '127.0.0.1:1', { ephemeral: true });
    const d = createDiscovery({ zookeeper: zkServer.connectString, services: ['prop'] }, { logger: silentLogger() });
    await d.start();
    await d.ready();
    const propagation: number[] = [];
    for (let i = 0; i < events; i++) {
      const pathI = `/providers/prop/p-${Math.floor(i / 2)}`;
      const changed = new Promise<number>((resolve) => d.once('change', () => resolve(performance.now())));
      const t0 = performance.now();
      if (i % 2 === 0) await zk.create(pathI, `127.0.0.1:${2000 + i}`, { ephemeral: true });
      else await zk.delete(pathI);
      propagation.push((await changed) - t0);
    }
    await d.close();
    propagation.sort((a, b) => a - b);
    log(`propagation over ${events} events: p50 ${percentile(propagation, 50).toFixed(2)} ms, p99 ${percentile(propagation, 99).toFixed(2)} ms`);

    // --- failover: kill one of three instances under load ----------------------------------
    const fail = [0, 1, 2].map(() => start(process.execPath, [path.join(ROOT, 'benchmarks/upstream.mjs')]));
    const failPorts = await Promise.all(fail.map((p) => firstLine(p)));
    await zk.mkdirp('/providers/failover');
    for (const [i, port] of failPorts.entries()) await zk.create(`/providers/failover/f${i}`, JSON.stringify({ host: '127.0.0.1', port: Number(port) }), { ephemeral: true });
    await waitForOk(`http://127.0.0.1:${zkroutePort}/svc/failover/small`);
    const failSeconds = opts.quick ? 4 : 6;
    const failRun = wrk(`http://127.0.0.1:${zkroutePort}/svc/failover/small`, 16, failSeconds);
    await sleep(1500);
    fail[1]!.kill('SIGKILL');
    const failover = await failRun;
    for (const p of fail) p.kill('SIGKILL');
    log(`failover: ${failover.requests} requests, ${failover.errors} failed while one of three instances was killed`);

    // --- discovery: one new child in a 1,000-instance service (CPU of a separate process) --
    const bigCount = 1000;
    const updateCpuUs = await updateCost(zk, zkServer.connectString, bigCount, opts.quick ? 5 : 20);
    log(`one new child in a ${bigCount}-instance service: median ${median(updateCpuUs).toFixed(0)} us CPU`);

    // --- memory for 1,000 services x 10 instances ------------------------------------------
    const services = opts.quick ? 100 : 1000;
    const perService = 10;
    const memPaths: string[] = [];
    for (let s = 0; s < services; s++) memPaths.push(`/mem/svc-${s}`);
    await zk.mkdirp('/mem');
    await createMany(zk, memPaths, () => '');
    const instancePaths: string[] = [];
    for (let s = 0; s < services; s++) for (let i = 0; i < perService; i++) instancePaths.push(`/mem/svc-${s}/i-${i}`);
    // Distinct addresses: the table keeps one instance per host:port.
    await createMany(zk, instancePaths, (i) => JSON.stringify({ host: `10.0.${Math.floor(i / 250)}.${i % 250}`, port: 8080 + (i % perService), zone: 'a' }), 500);
    const memOut = execFileSync(process.execPath, ['--expose-gc', path.join(ROOT, 'benchmarks/discovery-child.mjs'), 'memory', zkServer.connectString, '/mem', String(services)], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    const memory = JSON.parse(memOut.trim().split('\n').at(-1)!) as Memory;
    log(`${services} services x ${perService}: ${memory.instances} instances, RSS ${memory.rssBeforeMiB} -> ${memory.rssLoadedMiB} MiB loaded, ${memory.rssSettledMiB} MiB settled (JS heap used ${memory.heapUsedMiB} MiB)`);

    // --- report -------------------------------------------------------------------------
    const when = new Date();
    const stamp = when.toISOString().slice(0, 16).replace(/[:T]/g, '-');
    mkdirSync(opts.out, { recursive: true });
    const name = `${stamp}${opts.label ? `-${opts.label}` : ''}${opts.quick ? '-quick' : ''}`;
    const summary = summarise(rows);
    const md = `${report({ rows, summary, rss, propagation, failover, updateCpuUs, memory, services, perService, bigCount, events, name })}\n${tcpReport(tcp.rows, tcp.haproxyVersion, tcpContext.reps, seconds).join('\n')}`;
    writeFileSync(path.join(opts.out, `${name}.md`), md);
    writeFileSync(path.join(opts.out, `${name}.svg`), renderChart(summary));
    process.stdout.write(md);
    log(`wrote ${path.relative(ROOT, path.join(opts.out, `${name}.md`))} and .svg`);
  } finally {
    await stopNginx?.();
    killAll();
    await zk.close().catch(() => {});
    await zkServer.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Discovery CPU (in its own process) to apply one new child to a `count`-instance service. */
async function updateCost(zk: ZkClient, connectString: string, count: number, samples: number): Promise<number[]> {
  await zk.mkdirp('/providers/big');
  await createMany(zk, Array.from({ length: count }, (_, i) => `/providers/big/i-${i}`), (i) => `127.0.0.1:${10_000 + i}`, 200);
  const child = start(process.execPath, [path.join(ROOT, 'benchmarks/discovery-child.mjs'), 'update', connectString, '/providers']);
  const lines: string[] = [];
  let waiting: ((line: string) => void) | undefined;
  let buffer = '';
  child.stdout!.on('data', (c: Buffer) => {
    buffer += c.toString();
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w(line);
      } else lines.push(line);
    }
  });
  const nextLine = () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise<string>((r) => (waiting = r)));
  const ready = await nextLine();
  if (!ready.startsWith(`ready ${count}`)) throw new Error(`discovery child: ${ready}`);
  const cpu: number[] = [];
  const warmup = 50;
  for (let i = 0; i < samples + warmup; i++) {
    await sleep(20);
    child.stdin!.write('mark\n');
    await nextLine(); // marked
    const pathI = `/providers/big/new-${i}`;
    await zk.create(pathI, `127.0.0.2:${20_000 + i}`);
    const used = Number((await nextLine()).split(' ')[1]);
    if (i >= warmup) cpu.push(used);
    await zk.delete(pathI);
    await nextLine(); // the delete's change
  }
  child.stdin!.write('quit\n');
  await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
  return cpu;
}

interface Memory {
  readonly instances: number;
  readonly rssBeforeMiB: number;
  readonly rssLoadedMiB: number;
  readonly rssSettledMiB: number;
  readonly heapUsedMiB: number;
}

export interface Summary {
  readonly body: string;
  readonly connections: number;
  readonly config: Config;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerReq: number | undefined;
  readonly errors: number;
}

function summarise(rows: Row[]): Summary[] {
  const out: Summary[] = [];
  const keys = [...new Set(rows.map((r) => `${r.body}|${r.connections}|${r.config}`))];
  for (const key of keys) {
    const group = rows.filter((r) => `${r.body}|${r.connections}|${r.config}` === key);
    const first = group[0]!;
    const cpu = group.map((g) => g.cpuPer10k).filter((c): c is number => c !== undefined);
    out.push({
      body: first.body,
      connections: first.connections,
      config: first.config,
      rps: median(group.map((g) => g.result.rps)),
      p50Ms: median(group.map((g) => g.result.p50Ms)),
      p90Ms: median(group.map((g) => g.result.p90Ms)),
      p99Ms: median(group.map((g) => g.result.p99Ms)),
      cpuUsPerReq: cpu.length ? median(cpu) * 100 : undefined,
      errors: group.reduce((a, g) => a + g.result.errors, 0),
    });
  }
  return out;
}

function report(r: {
  rows: Row[]; summary: Summary[]; rss: { zkroute: number; nginx: number }; propagation: number[]; failover: WrkResult; updateCpuUs: number[];
  memory: Memory; services: number; perService: number; bigCount: number; events: number; name: string;
}): string {
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const nginxVersion = execFileSync('nginx', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim() || execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' }).trim();
  const get = (body: string, c: number, config: Config) => r.summary.find((s) => s.body === body && s.connections === c && s.config === config)!;
  const f = (n: number | undefined, d = 2) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
  const lines: string[] = [];
  lines.push(`# zkroute benchmark ${r.name}`, '');
  lines.push(`Machine: ${cpus().length} cores (${cpuModel}), Node ${process.version}, ${nginxVersion.replace('nginx version: ', '')}, wrk (1 thread), Apache ZooKeeper (Debian) standalone.`);
  lines.push(`Command: \`npm run bench --${opts.quick ? ' --quick' : ''}${opts.pin ? ' --pin' : ''} --duration ${seconds} --reps ${reps}${WORKERS ? ` --workers ${WORKERS}` : ''}${opts.floor ? ' --floor' : ''}\`. ${opts.pin ? 'Pinned: wrk + upstream on core 0, proxy on core 1 (1-connection runs unpinned).' : 'Unpinned.'} Configurations alternate (A B C, then C B A); figures are medians of ${reps} run(s) of ${seconds} s (at 1 connection, ${Math.max(reps, 3)} runs); keep-alive everywhere; all on 127.0.0.1.`, '');
  lines.push('| body | conns | config | req/s | p50 ms | p90 ms | p99 ms | proxy CPU us/req | CPU s per 10k req | errors |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const s of r.summary) lines.push(`| ${s.body} | ${s.connections} | ${s.config} | ${Math.round(s.rps)} | ${f(s.p50Ms, 3)} | ${f(s.p90Ms, 3)} | ${f(s.p99Ms, 3)} | ${f(s.cpuUsPerReq, 0)} | ${f(s.cpuUsPerReq === undefined ? undefined : s.cpuUsPerReq / 100, 2)} | ${s.errors} |`);
  lines.push('');
  lines.push('| ratio | value |', '|---|---|');
  for (const [body, c] of [['small', 32], ['small', 128], ['4k', 32]] as const) {
    const z = get(body, c, 'zkroute');
    lines.push(`| throughput zkroute / nginx, ${body}, ${c} conns | ${f(z.rps / get(body, c, 'nginx').rps)} |`);
    lines.push(`| throughput zkroute / direct, ${body}, ${c} conns | ${f(z.rps / get(body, c, 'direct').rps)} |`);
    lines.push(`| throughput zkroute --http-engine node / nginx, ${body}, ${c} conns | ${f(get(body, c, 'zkroute-node').rps / get(body, c, 'nginx').rps)} |`);
  }
  if (r.summary.some((s) => s.config === 'zkroute-workers')) {
    for (const [body, c] of [['small', 32], ['small', 128], ['4k', 32]] as const) {
      lines.push(`| throughput zkroute --workers ${WORKERS} / zkroute, ${body}, ${c} conns | ${f(get(body, c, 'zkroute-workers').rps / get(body, c, 'zkroute').rps)} |`);
    }
  }
  if (r.summary.some((s) => s.config === 'undici-floor')) {
    for (const [body, c] of [['small', 32], ['small', 128]] as const) {
      const floorRow = get(body, c, 'undici-floor');
      lines.push(`| throughput undici-floor / nginx, ${body}, ${c} conns | ${f(floorRow.rps / get(body, c, 'nginx').rps)} |`);
      lines.push(`| proxy CPU per request zkroute - undici-floor (zkroute's own code), ${body}, ${c} conns, us | ${f((get(body, c, 'zkroute').cpuUsPerReq ?? NaN) - (floorRow.cpuUsPerReq ?? NaN), 1)} |`);
    }
  }
  const z1 = get('small', 1, 'zkroute');
  const d1 = get('small', 1, 'direct');
  const n1 = get('small', 1, 'nginx');
  lines.push(`| added latency at 1 conn, zkroute - direct: p50 / p99 ms | ${f(z1.p50Ms - d1.p50Ms, 3)} / ${f(z1.p99Ms - d1.p99Ms, 3)} |`);
  lines.push(`| added latency at 1 conn, nginx - direct: p50 / p99 ms | ${f(n1.p50Ms - d1.p50Ms, 3)} / ${f(n1.p99Ms - d1.p99Ms, 3)} |`);
  const e1 = get('small', 1, 'zkroute-node');
  lines.push(`| added latency at 1 conn, zkroute --http-engine node - direct: p50 / p99 ms | ${f(e1.p50Ms - d1.p50Ms, 3)} / ${f(e1.p99Ms - d1.p99Ms, 3)} |`);
  for (const c of [32, 128]) {
    const cpu = (config: Config) => get('small', c, config).cpuUsPerReq ?? NaN;
    lines.push(`| proxy CPU per request, small, ${c} conns: zkroute / zkroute --http-engine node / nginx, us | ${f(cpu('zkroute'), 1)} / ${f(cpu('zkroute-node'), 1)} / ${f(cpu('nginx'), 1)} |`);
  }
  lines.push(`| peak RSS zkroute / nginx worker, MiB | ${f(r.rss.zkroute, 1)} / ${f(r.rss.nginx, 1)} |`);
  lines.push('');
  const p = r.propagation;
  lines.push('| discovery | value |', '|---|---|');
  lines.push(`| propagation, znode create/delete -> table change (${r.events} events), p50 / p99 ms | ${f(percentile(p, 50))} / ${f(percentile(p, 99))} |`);
  lines.push(`| failed requests while 1 of 3 instances was killed (${r.failover.requests} requests, 16 conns) | ${r.failover.errors} |`);
  lines.push(`| one new child in a ${r.bigCount}-instance service: discovery CPU, median us | ${f(median(r.updateCpuUs), 0)} |`);
  lines.push(`| ${r.services} services x ${r.perService} instances (${r.memory.instances} loaded), Discovery alone on plain node: RSS empty / just loaded / settled 10 s later, MiB (JS heap used) | ${f(r.memory.rssBeforeMiB, 1)} / ${f(r.memory.rssLoadedMiB, 1)} / ${f(r.memory.rssSettledMiB, 1)} (${f(r.memory.heapUsedMiB, 1)}) |`);
  lines.push('');
  const zs32 = get('small', 32, 'zkroute');
  const zs128 = get('small', 128, 'zkroute');
  const target = (ok: boolean) => (ok ? 'met' : 'not met');
  lines.push('| target | measured | |', '|---|---|---|');
  lines.push(`| throughput >= 0.5 x nginx at 32 and 128 conns | ${f(zs32.rps / get('small', 32, 'nginx').rps)} / ${f(zs128.rps / get('small', 128, 'nginx').rps)} | ${target(zs32.rps / get('small', 32, 'nginx').rps >= 0.5 && zs128.rps / get('small', 128, 'nginx').rps >= 0.5)} |`);
  lines.push(`| proxy CPU <= 150 us per request (128 conns) | ${f(zs128.cpuUsPerReq, 0)} us | ${target((zs128.cpuUsPerReq ?? Infinity) <= 150)} |`);
  lines.push(`| added p50 <= 0.35 ms, p99 <= 1 ms at 1 conn | ${f(z1.p50Ms - d1.p50Ms, 3)} / ${f(z1.p99Ms - d1.p99Ms, 3)} ms | ${target(z1.p50Ms - d1.p50Ms <= 0.35 && z1.p99Ms - d1.p99Ms <= 1)} |`);
  lines.push(`| propagation p99 <= 50 ms | ${f(percentile(p, 99))} ms | ${target(percentile(p, 99) <= 50)} |`);
  lines.push(`| 0 failed requests while an instance is killed | ${r.failover.errors} | ${target(r.failover.errors === 0)} |`);
  lines.push(`| one-child update <= 1 ms CPU | ${f(median(r.updateCpuUs) / 1000, 3)} ms | ${target(median(r.updateCpuUs) <= 1000)} |`);
  if (r.services * r.perService >= 10_000) lines.push(`| 10,000 instances <= 100 MB RSS (settled; just loaded) | ${f(r.memory.rssSettledMiB * 1.048576, 1)} MB; ${f(r.memory.rssLoadedMiB * 1.048576, 1)} MB | ${target(r.memory.rssSettledMiB * 1.048576 <= 100)} |`);
  lines.push('', `![throughput and latency](${r.name}.svg)`, '');
  return `${lines.join('\n')}\n`;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  killAll();
  process.exit(1);
});
