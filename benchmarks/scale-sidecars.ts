// One process of simulated sidecars for bench:scale: N real Discovery clients, each with its own
// ZooKeeper session, watching the same services; driven by the parent over IPC.
import { performance } from 'node:perf_hooks';
import { createDiscovery, type Discovery } from '../src/discovery/discovery.js';
import type { Instance, SetDelta } from '../src/discovery/provider-table.js';
import { createLogger } from '../src/log.js';

type Command =
  | { cmd: 'start'; count: number; zookeeper: string; services: string[]; watched: string; jitterMs: number | 'auto'; sessionTimeoutMs: number }
  | { cmd: 'report' }
  | { cmd: 'count'; service: string }
  | { cmd: 'resynced'; since: number }
  | { cmd: 'failures' }
  | { cmd: 'stop' };

const now = () => performance.timeOrigin + performance.now();
const sidecars: Discovery[] = [];
/** When each sidecar's newest session began (Date.now, as syncStarts). */
const sessionAt = new Map<Discovery, number>();
/** id|add or id|del -> when each sidecar saw it. */
let seen = new Map<string, number[]>();

const send = (message: unknown) => process.send!(message);
/** Failed attempts to open a new session after an expiry (each is retried with backoff). */
let renewFailures = 0;
const logger = createLogger({ level: 'warn', destination: { write: (line: string) => { if (line.includes('could not open a new zookeeper session')) renewFailures += 1; } } });

process.on('message', (raw: unknown) => {
  const m = raw as Command;
  void (async () => {
    switch (m.cmd) {
      case 'start': {
        const rssBefore = process.memoryUsage().rss;
        const cpuBefore = process.cpuUsage();
        for (let i = 0; i < m.count; i += 25) {
          await Promise.all(Array.from({ length: Math.min(25, m.count - i) }, async () => {
            const d = createDiscovery({ zookeeper: m.zookeeper, services: m.services, sessionTimeoutMs: m.sessionTimeoutMs, resyncJitterMs: m.jitterMs, connectTimeoutMs: 30_000 }, { logger });
            d.on('change', (service: string, _instances: readonly Instance[], delta: SetDelta) => {
              if (service !== m.watched) return;
              const at = now();
              const added = new Set(delta.added.map((x) => x.uid));
              const removed = new Set(delta.removed.map((x) => x.uid));
              for (const x of delta.added) if (!removed.has(x.uid)) push(`${x.id}|add`, at);
              for (const x of delta.removed) if (!added.has(x.uid)) push(`${x.id}|del`, at);
            });
            d.session.on('session', () => sessionAt.set(d, Date.now()));
            await d.start();
            await d.ready(30_000);
            sidecars.push(d);
          }));
        }
        const cpu = process.cpuUsage(cpuBefore);
        send({ ready: true, rssBefore, rssAfter: process.memoryUsage().rss, loadCpuUs: cpu.user + cpu.system });
        return;
      }
      case 'report': {
        const cpu = process.cpuUsage();
        send({ report: [...seen], cpuUs: cpu.user + cpu.system, rss: process.memoryUsage().rss });
        seen = new Map();
        return;
      }
      case 'failures':
        send({ failures: renewFailures });
        return;
      case 'count':
        send({ counts: sidecars.map((d) => d.instances(m.service)?.length ?? 0) });
        return;
      case 'resynced': {
        // After this process was stopped past the session timeout: wait until every sidecar
        // has a new session and every watch has read again.
        const deadline = Date.now() + 120_000;
        for (;;) {
          const done = sidecars.every((d) => d.session.stats().state === 'connected' && d.session.stats().expiries > 0 && d.syncStarts().every((s) => s.at >= m.since));
          if (done || Date.now() > deadline) {
            const lastRead = (d: Discovery) => Math.max(...d.syncStarts().map((s) => s.at));
            send({
              resynced: true,
              convergedAt: done ? Math.max(...sidecars.map(lastRead)) : undefined,
              afterSessionMs: done ? Math.max(...sidecars.map((d) => lastRead(d) - (sessionAt.get(d) ?? 0))) : undefined,
              sessionsAt: sidecars.map((d) => sessionAt.get(d) ?? 0),
              renewFailures,
            });
            return;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      case 'stop':
        await Promise.all(sidecars.map((d) => d.close()));
        send({ stopped: true });
        process.exit(0);
    }
  })();
});

function push(key: string, at: number): void {
  let list = seen.get(key);
  if (!list) seen.set(key, (list = []));
  list.push(at);
}

send({ hello: true });
