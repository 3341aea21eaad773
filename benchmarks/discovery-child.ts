// Runs discovery alone in its own process so its CPU and memory can be read without the
// benchmark's own work mixed in. Modes:
//   update <zk> <base>: watch service `big`; after a `mark` line on stdin, print `changed <us>`,
//     the CPU used from the mark to the table change.
//   memory <zk> <base> <services>: load that many services (svc-0..), print RSS before/after (MiB).
import { createInterface } from 'node:readline';
import { createDiscovery } from '../src/discovery/discovery.js';
import { silentLogger } from '../src/log.js';

const [mode, zookeeper, basePath, count] = process.argv.slice(2) as [string, string, string, string?];
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const gc = () => (globalThis as { gc?: () => void }).gc?.();

if (mode === 'update') {
  const d = createDiscovery({ zookeeper, basePath, services: ['big'] }, { logger: silentLogger() });
  await d.start();
  await d.resolve('big', 20_000);
  // CPU is read right after `marked` is written and right when the change lands, so the
  // printing and stdin handling stay outside the measured span.
  let markedAt = 0;
  d.on('change', (service: string) => {
    if (service === 'big') console.log(`changed ${cpuUs() - markedAt}`);
  });
  console.log(`ready ${d.instances('big')?.length ?? 0}`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'mark') {
      console.log('marked');
      markedAt = cpuUs();
    }
    if (line === 'quit') break;
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
  const after = process.memoryUsage().rss;
  console.log(JSON.stringify({ instances, rssBeforeMiB: before / 2 ** 20, rssAfterMiB: after / 2 ** 20 }));
  await d.close();
}
process.exit(0);
