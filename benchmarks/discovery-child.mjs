// Runs discovery alone in its own process so its CPU and memory can be read without the
// benchmark's own work mixed in. Modes:
//   update <zk> <base>: watch service `big`; after a `mark` line on stdin, print `changed <us>`,
//     the CPU used from the mark to the table change.
//   memory <zk> <base> <services>: load that many services (svc-0..), print RSS before/after (MiB).
import { createInterface } from 'node:readline';
// Plain JavaScript on the compiled dist/ (npm run build), as zkroute runs in production: no
// TypeScript loader in the measured process.
import { createDiscovery, silentLogger } from '../dist/index.js';

const [mode, zookeeper, basePath, count] = process.argv.slice(2);
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const gc = () => globalThis.gc?.();

// ZKROUTE_BENCH_PROFILE=<file>: write a CPU profile of the update mode's updates (node:inspector).
const profileFile = process.env.ZKROUTE_BENCH_PROFILE;
let profiler;
async function startProfile() {
  if (!profileFile) return;
  const { Session } = await import('node:inspector/promises');
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.start');
}

if (mode === 'update') {
  const d = createDiscovery({ zookeeper, basePath, services: ['big'] }, { logger: silentLogger() });
  await d.start();
  await d.resolve('big', 20_000);
  // CPU is read right after `marked` is written and right when the change lands, so the
  // printing and stdin handling stay outside the measured span.
  let markedAt = 0;
  d.on('change', (service) => {
    if (service === 'big') console.log(`changed ${cpuUs() - markedAt}`);
  });
  // The profile covers the updates only, not the initial load.
  await startProfile();
  console.log(`ready ${d.instances('big')?.length ?? 0}`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'mark') {
      console.log('marked');
      markedAt = cpuUs();
    }
    if (line === 'quit') break;
  }
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    (await import('node:fs')).writeFileSync(profileFile, JSON.stringify(profile));
  }
  await d.close();
} else if (mode === 'memory') {
  gc();
  const before = process.memoryUsage().rss;
  const services = Array.from({ length: Number(count) }, (_, i) => `svc-${i}`);
  const d = createDiscovery({ zookeeper, basePath, services, firstSnapshotTimeoutMs: 120_000 }, { logger: silentLogger() });
  await d.start();
  await d.ready(120_000);
  let instances = 0;
  for (const s of services) instances += d.instances(s)?.length ?? 0;
  gc();
  const loaded = process.memoryUsage();
  // V8 keeps the heap it grew while loading for a while; RSS after it settles is the steady state.
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    gc();
  }
  const settled = process.memoryUsage();
  const mib = (n) => Math.round((n / 2 ** 20) * 10) / 10;
  console.log(JSON.stringify({
    instances, rssBeforeMiB: mib(before), rssLoadedMiB: mib(loaded.rss), rssSettledMiB: mib(settled.rss),
    heapUsedMiB: mib(settled.heapUsed), heapTotalMiB: mib(settled.heapTotal), externalMiB: mib(settled.external),
  }));
  await d.close();
}
process.exit(0);
