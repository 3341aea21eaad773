import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { mergeSnapshots } from '../admin/stats.js';
import type { AppDeps } from '../app.js';
import type { ProxyConfig } from '../config/proxy.js';
import { AddressPolicy } from '../address-policy.js';
import { createControl, describeListeners, httpAddress, type ProxyRuntime } from '../control.js';
import type { Instance, SetDelta } from '../discovery/provider-table.js';
import { IDLE_HEALTH, mergeHealth, type HealthView, type InstanceHealthView } from '../health/view.js';
import type { PlaneAddresses } from '../plane.js';
import { isMessage, type MetricsJson, type ToPrimary, type ToWorker } from './messages.js';

export interface PrimaryDeps extends Pick<AppDeps, 'logger'> {
  /**
   * Starts a worker process with `env` added (default: node:cluster's fork, which re-runs this
   * command; the worker takes its configuration from ZKROUTE_WORKER_CONFIG, not from the file).
   */
  readonly fork?: (env: Record<string, string>) => Worker;
}

/**
 * start() binds the admin port, connects to ZooKeeper and resolves once every worker listens;
 * close() drains every worker (each up to the timeout), then closes admin and ZooKeeper.
 */
export interface ClusterPrimary extends ProxyRuntime {
  /** Kills every worker at once (a second signal during drain). */
  kill(): void;
}

interface WorkerState {
  readonly worker: Worker;
  subscribed: boolean;
  listening: boolean;
}

/** Replies to the primary's questions, by request id. */
type Reply = Extract<ToPrimary, { zkroute: 'health' | 'metrics' | 'stats' }>;

/**
 * The cluster primary (`--workers N`, N > 1): the one ZooKeeper session and the admin port.
 * It forks N workers that share the callers' port, sends each the table and every change to
 * it, answers their lookups of services not yet watched, gathers their health and metrics for
 * the admin port, and replaces a worker that dies.
 */
/**
 * The wait before replacing a worker that exited: 1 s, doubling while workers keep dying
 * young, up to 30 s; back to 1 s once one had run for a minute. A crash loop never spins.
 */
/** The variable a worker reads its configuration from (the primary's, as JSON). */
export const WORKER_CONFIG_ENV = 'ZKROUTE_WORKER_CONFIG';

export function nextRestartDelay(previousMs: number, uptimeMs: number): number {
  if (previousMs === 0 || uptimeMs >= 60_000) return 1000;
  return Math.min(previousMs * 2, 30_000);
}

export function createClusterPrimary(config: ProxyConfig, deps: PrimaryDeps): ClusterPrimary {
  const logger = deps.logger.child({ role: 'primary' });
  const fork = deps.fork ?? ((env: Record<string, string>) => cluster.fork(env));
  // The workers bind the listeners: their configured addresses are the primary's own.
  const addressPolicy = new AddressPolicy(config.allowUpstream);
  for (const at of [config.listen, ...config.tcp.map((r) => r.listen), ...config.thrift.map((r) => r.listen)]) if (at) addressPolicy.addOwn(at.host, at.port);
  const control = createControl(config, {
    logger,
    addressPolicy,
    healthView: () => healthView(),
    // The primary's own metrics (ZooKeeper, process) plus every worker's, added up.
    metrics: (registry) => ({
      contentType: registry.contentType,
      async render() {
        const parts: MetricsJson[] = [await registry.getMetricsAsJSON()];
        for (const answer of await ask<'metrics'>('metrics?')) parts.push(answer.metrics);
        return AggregatorRegistry.aggregate(parts).metrics();
      },
    }),
    // The dashboard's figures: every worker's added up.
    stats: async () => mergeSnapshots((await ask<'stats'>('stats?')).map((answer) => answer.stats)),
    notServing: () => ([...workers.values()].some((w) => w.listening) ? undefined : `no worker listening yet (0 of ${config.workers})`),
  });
  const { discovery } = control;

  const workers = new Map<number, WorkerState>();
  const replies = new Map<number, (reply: Reply) => void>();
  let nextId = 1;
  let closing: Promise<void> | undefined;
  let addresses: PlaneAddresses | undefined;
  let started: { resolve: () => void; reject: (err: Error) => void } | undefined;
  const exited: (() => void)[] = [];

  const send = (state: WorkerState, message: ToWorker) => {
    if (state.worker.isConnected()) state.worker.send(message);
  };

  discovery.on('change', (service: string, _instances: readonly Instance[], delta: SetDelta) => {
    const message: ToWorker = { zkroute: 'change', service, added: delta.added, removed: delta.removed.map((i) => i.uid) };
    for (const state of workers.values()) if (state.subscribed) send(state, message);
  });

  discovery.table.on('removed', (service: string) => {
    const message: ToWorker = { zkroute: 'removed', service };
    for (const state of workers.values()) if (state.subscribed) send(state, message);
  });

  const known = (): ToWorker => ({ zkroute: 'known', names: discovery.knownServices() });
  discovery.on('services', () => {
    const message = known();
    for (const state of workers.values()) if (state.subscribed) send(state, message);
  });

  // Ejections any worker decided, until they end: passed to every other worker, and to a new one.
  const ejections = new Map<string, Extract<ToWorker, { zkroute: 'eject' }>>();
  // Ended ones go whenever the map is used, so it holds at most the instances ejected now.
  const dropEndedEjections = () => {
    const now = Date.now();
    for (const [uid, eject] of ejections) if (eject.untilMs <= now) ejections.delete(uid);
  };

  function onMessage(state: WorkerState, message: ToPrimary): void {
    switch (message.zkroute) {
      case 'hello': {
        const services = discovery.table.services().map((s) => [s, discovery.table.get(s)?.instances ?? []] as const);
        send(state, { zkroute: 'snapshot', services });
        if (discovery.loaded) send(state, known());
        // Forked before a reload its environment did not carry: the configuration in force.
        if (control.config() !== config) send(state, { zkroute: 'reconfigure', config: control.config() });
        state.subscribed = true;
        dropEndedEjections();
        for (const eject of ejections.values()) send(state, eject);
        return;
      }
      case 'ejected': {
        const eject: ToWorker = { zkroute: 'eject', service: message.service, uid: message.uid, reason: message.reason, untilMs: message.untilMs };
        dropEndedEjections();
        ejections.set(message.uid, eject);
        for (const other of workers.values()) if (other !== state && other.subscribed) send(other, eject);
        control.events.add({ kind: 'ejected', service: message.service, instances: [message.address], reason: message.reason, untilMs: message.untilMs });
        return;
      }
      case 'readmitted':
        control.events.add({ kind: 'readmitted', service: message.service, instances: [message.address] });
        return;
      case 'panic':
        control.events.add({ kind: 'panic', service: message.service });
        return;
      case 'listening':
        // Logged here, not by the worker: a worker killed at once may never flush its own line.
        logger.info({ worker: state.worker.id, pid: state.worker.process.pid, ...describeListeners(message.addresses) }, 'worker listening');
        state.listening = true;
        addresses = message.addresses;
        if ([...workers.values()].every((w) => w.listening)) started?.resolve();
        return;
      case 'failed':
        logger.error({ worker: state.worker.id, reason: message.message }, 'worker could not start');
        started?.reject(new Error(message.message));
        return;
      case 'resolve':
        void discovery.resolve(message.service).then((r) => send(state, { zkroute: 'resolved', id: message.id, kind: r.kind }));
        return;
      case 'health':
      case 'metrics':
      case 'stats':
        replies.get(message.id)?.(message);
        return;
    }
  }

  let restartDelayMs = 0;
  function startWorker(): void {
    // The configuration in force: a worker started after a reload runs with it.
    const worker = fork({ [WORKER_CONFIG_ENV]: JSON.stringify(control.config()) });
    const startedAt = Date.now();
    const state: WorkerState = { worker, subscribed: false, listening: false };
    workers.set(worker.id, state);
    worker.on('message', (message: unknown) => {
      if (isMessage<ToPrimary>(message)) onMessage(state, message);
    });
    // A failed IPC send or a kill that could not be delivered: logged, never thrown.
    worker.on('error', (err: Error) => logger.error({ err, worker: worker.id }, 'worker error'));
    worker.on('exit', (code: number | null, signal: string | null) => {
      workers.delete(worker.id);
      for (const done of exited.splice(0)) done();
      if (closing) return;
      restartDelayMs = nextRestartDelay(restartDelayMs, Date.now() - startedAt);
      logger.error({ worker: worker.id, pid: worker.process.pid, code, signal, restartInMs: restartDelayMs }, `worker exited; starting another in ${restartDelayMs / 1000} s`);
      setTimeout(() => {
        if (!closing) startWorker();
      }, restartDelayMs).unref();
    });
  }

  /** Asks every listening worker; answers that do not come within the limit are left out. */
  async function ask<K extends Reply['zkroute']>(question: 'health?' | 'metrics?' | 'stats?', timeoutMs = 2000): Promise<Extract<Reply, { zkroute: K }>[]> {
    const asked = [...workers.values()].filter((w) => w.listening);
    const answers = await Promise.all(asked.map((state) => new Promise<Reply | undefined>((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        replies.delete(id);
        resolve(undefined);
      }, timeoutMs);
      replies.set(id, (reply) => {
        clearTimeout(timer);
        replies.delete(id);
        resolve(reply);
      });
      send(state, { zkroute: question, id });
    })));
    return answers.filter((a): a is Extract<Reply, { zkroute: K }> => a !== undefined);
  }

  /** The workers' addresses once one listens; before that, the configured ones. */
  const listenerAddresses = (): PlaneAddresses => addresses ?? { http: config.listen ?? undefined, tcp: config.tcp.map((r) => ({ service: r.service, ...r.listen })), thrift: config.thrift.map((r) => ({ service: r.service, ...r.listen })) };

  const healthView = async (): Promise<HealthView> => {
    const byUid = new Map<string, InstanceHealthView[]>();
    for (const answer of await ask<'health'>('health?')) {
      for (const [uid, view] of answer.entries) byUid.set(uid, [...(byUid.get(uid) ?? []), view]);
    }
    return (instance) => {
      const views = byUid.get(instance.uid);
      return views ? mergeHealth(views) : IDLE_HEALTH;
    };
  };

  return {
    discovery,
    readiness: control.readiness,
    address: () => httpAddress(listenerAddresses()),
    addresses: () => listenerAddresses(),
    adminAddress: control.adminAddress,
    async start() {
      await control.listen();
      const everyWorkerListening = new Promise<void>((resolve, reject) => (started = { resolve, reject }));
      // Awaited below, after ZooKeeper's first attempt: a worker may fail before then.
      everyWorkerListening.catch(() => {});
      for (let i = 0; i < config.workers; i++) startWorker();
      await control.connect();
      await everyWorkerListening;
      started = undefined;
      const adminAt = this.adminAddress();
      logger.info({ ...describeListeners(listenerAddresses()), admin: `${adminAt.host}:${adminAt.port}`, workers: config.workers, config }, 'zkroute proxy started');
    },
    close(drainTimeoutMs = config.drainTimeoutMs) {
      closing ??= (async () => {
        control.drain();
        if (workers.size > 0) {
          const allGone = new Promise<void>((resolve) => {
            const check = () => (workers.size === 0 ? resolve() : exited.push(check));
            check();
          });
          for (const state of workers.values()) send(state, { zkroute: 'drain', timeoutMs: drainTimeoutMs });
          // Each worker cuts its connections at the drain timeout; a worker still there well after is stuck.
          const stuck = setTimeout(() => this.kill(), drainTimeoutMs + 5000);
          await allGone;
          clearTimeout(stuck);
        }
        await control.close();
      })();
      return closing;
    },
    kill() {
      for (const state of workers.values()) state.worker.process.kill('SIGKILL');
    },
    config: () => control.config(),
    reconfigure(next) {
      control.reconfigure(next);
      for (const state of workers.values()) send(state, { zkroute: 'reconfigure', config: next });
    },
    reopenAccessLog() {
      for (const state of workers.values()) send(state, { zkroute: 'reopen-access-log' });
    },
  };
}
