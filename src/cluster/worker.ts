import type { Logger } from 'pino';
import { createRegistry } from '../admin/metrics.js';
import type { ProxyConfig } from '../config/proxy.js';
import { isNotable, type InstanceHealthView } from '../health/view.js';
import { AddressPolicy } from '../address-policy.js';
import { createProxyPlane } from '../plane.js';
import type { Instance } from '../discovery/provider-table.js';
import type { Channel, ToPrimary, ToWorker } from './messages.js';
import { WorkerSource } from './worker-source.js';

export interface WorkerDeps {
  readonly logger: Logger;
  /** The IPC channel to the primary. */
  readonly channel: Channel<ToWorker, ToPrimary>;
  /** Resolves when the worker should drain without being told (its own signal, primary gone). */
  readonly stop: Promise<void>;
}

/**
 * A cluster worker: the proxy plane on the shared listen port, fed by the primary's table.
 * Runs until the primary says drain (or `stop` resolves), then drains and resolves.
 */
export async function runWorker(config: ProxyConfig, deps: WorkerDeps): Promise<void> {
  const { logger, channel } = deps;
  // The primary answers within its own first-snapshot wait (5 s); a little more here.
  const source = new WorkerSource({ resolveTimeoutMs: 6000 }, channel);
  const registry = createRegistry();
  const plane = createProxyPlane(config, { source, logger, registry, addressPolicy: new AddressPolicy(config.allowUpstream) });

  let drainTimeoutMs = config.drainTimeoutMs;
  let drain!: () => void;
  const drained = new Promise<void>((resolve) => (drain = resolve));
  channel.onMessage((message) => {
    if (source.apply(message)) return;
    switch (message.zkroute) {
      case 'health?': {
        const view = plane.healthView();
        const entries: [string, InstanceHealthView][] = [];
        for (const service of source.table.services()) {
          for (const instance of source.table.get(service)?.instances ?? []) {
            const h = view(instance);
            if (isNotable(h)) entries.push([instance.uid, h]);
          }
        }
        channel.send({ zkroute: 'health', id: message.id, entries });
        return;
      }
      case 'metrics?':
        void registry.getMetricsAsJSON().then((metrics) => channel.send({ zkroute: 'metrics', id: message.id, metrics }));
        return;
      case 'stats?':
        channel.send({ zkroute: 'stats', id: message.id, stats: plane.stats() });
        return;
      case 'reconfigure':
        try {
          plane.reconfigure(message.config);
          logger.level = message.config.logLevel;
        } catch (err) {
          logger.error({ err }, 'reload not applied in this worker: its configuration is unchanged');
        }
        return;
      case 'reopen-access-log':
        plane.reopenAccessLog();
        return;
      case 'eject': {
        const instance = source.table.get(message.service)?.instances.find((i) => i.uid === message.uid);
        if (instance) plane.health.applyEjection(instance, message.reason, message.untilMs);
        return;
      }
      case 'drain':
        drainTimeoutMs = message.timeoutMs;
        drain();
        return;
    }
  });
  // One health view: what this worker ejects, every other worker avoids too (its own failure
  // counting stays local; re-admission is at the same time everywhere: the same end).
  plane.health.on('ejected', (instance: Instance, reason: string, durationMs: number) => {
    channel.send({ zkroute: 'ejected', service: instance.service, uid: instance.uid, address: instance.address, reason, untilMs: Date.now() + durationMs });
  });
  plane.health.on('readmitted', (instance: Instance) => channel.send({ zkroute: 'readmitted', service: instance.service, address: instance.address }));
  plane.health.on('panic', (service: string) => channel.send({ zkroute: 'panic', service }));
  channel.send({ zkroute: 'hello' });
  void deps.stop.then(() => drain());

  try {
    await plane.listen();
  } catch (err) {
    channel.send({ zkroute: 'failed', message: (err as Error).message });
    await plane.close(0);
    throw err;
  }
  channel.send({ zkroute: 'listening', addresses: plane.addresses() });
  // A SIGUSR1 sent to the whole process group reaches the workers too: reopen, never the inspector.
  const reopen = () => plane.reopenAccessLog();
  process.on('SIGUSR1', reopen);
  try {
    await drained;
    await plane.close(drainTimeoutMs);
  } finally {
    process.off('SIGUSR1', reopen);
  }
}
