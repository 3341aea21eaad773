import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { isValidServiceName, sequentialServiceName, watchedParent, type Layout } from '../znode/layout.js';
import type { ZkAuth } from '../zookeeper/client.js';
import { ZkSession, type ZkSessionStats } from '../zookeeper/session.js';
import { ChildrenWatcher, type ChildNode, type ChildrenSnapshot } from './children-watcher.js';
import { InstanceDecoder, type AddressRefusal } from './instance-decoder.js';
import { Limiter } from './limiter.js';
import { ProviderTable, type Instance, type SetDelta } from './provider-table.js';
import { ServiceCache } from './service-cache.js';
import { answerLocally, type InstanceSource, type Resolution } from './source.js';

export type { Resolution } from './source.js';

export interface DiscoveryOptions {
  /** ZooKeeper connect string, every ensemble member, optional chroot. */
  readonly zookeeper: string;
  readonly basePath?: string;
  readonly layout?: Layout;
  /** Services watched from the start; others are watched on first use. */
  readonly services?: readonly string[];
  /**
   * Services found under another base path or layout than the default (per-service settings):
   * each is watched there, on the same session, and never looked for under the default one.
   */
  readonly roots?: Readonly<Record<string, { readonly basePath: string; readonly layout: Layout }>>;
  readonly keepLastOnEmpty?: boolean;
  readonly sessionTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** How long a first lookup of a service waits for its first snapshot. */
  readonly firstSnapshotTimeoutMs?: number;
  readonly auth?: readonly ZkAuth[];
  /** The native C client's own log level on stderr (0 off ... 4 debug). */
  readonly nativeLogLevel?: number;
  /**
   * After a new session, each watch re-reads after a random wait within this window, so that
   * sidecars whose sessions expired together do not re-read at once; the last table is served
   * meanwhile. 'auto' (the default): up to 2 s, RESYNC_JITTER_PER_WATCH_MS per watch. A number:
   * that window (ms) whatever the watch count, for fleets large enough to size it (SCALING.md);
   * 0: all at once.
   */
  readonly resyncJitterMs?: number | 'auto';
}

export interface DiscoveryDeps {
  readonly logger: Logger;
  /** A session to use instead of opening one (it is then closed by its owner, not here). */
  readonly session?: ZkSession;
  /** Refuses instance addresses (AddressPolicy): skipped and counted as `forbidden_address`. */
  readonly addressRefusal?: AddressRefusal;
  /** Uniform numbers in [0, 1) for the resync jitter (tests fix it). */
  readonly random?: () => number;
}

/** The 'auto' resync window grows by this much per watch, up to 2 s: one service (two watches) waits at most 500 ms. */
export const RESYNC_JITTER_PER_WATCH_MS = 250;
export const RESYNC_JITTER_AUTO_MAX_MS = 2000;

/** The resync window for a setting ('auto' or ms) and a number of watches. */
export function resyncWindowMs(setting: number | 'auto', watches: number): number {
  return setting === 'auto' ? Math.min(RESYNC_JITTER_AUTO_MAX_MS, RESYNC_JITTER_PER_WATCH_MS * watches) : setting;
}

export interface DiscoveryStats {
  readonly session: ZkSessionStats;
  /** Seconds since ZooKeeper last confirmed the table (0 while connected). */
  readonly staleSeconds: number;
  readonly services: number;
  readonly instances: number;
  readonly watchedServices: number;
  readonly malformed: number;
  readonly malformedByReason: Readonly<Record<string, number>>;
  readonly emptySetsIgnored: number;
  readonly duplicatesDropped: number;
  readonly syncs: number;
  readonly dataReads: number;
  /** Highest number of syncs seen in flight for any one watched path (never above 1). */
  readonly maxSyncsInFlightPerPath: number;
}

function withTimeout(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The provider table kept fresh from ZooKeeper: the session, the base path's watch (the
 * service names; in the sequential layout every instance too) and one ServiceCache per
 * service in use. Nested layout: one children watch per used service, started on first use.
 *
 * Events: `change` (service, instances, delta) after a service's set changed; `services`
 * (names) when the list of services under the base path changed.
 */
export class Discovery extends EventEmitter implements InstanceSource {
  readonly basePath: string;
  readonly layout: Layout;
  readonly table: ProviderTable;
  readonly #options: DiscoveryOptions;
  readonly #logger: Logger;
  readonly #session: ZkSession;
  readonly #ownsSession: boolean;
  /** Data reads in flight across all watchers (PERFORMANCE.md: parallel, but bounded). */
  readonly #limiter = new Limiter(256);
  readonly #decoder: InstanceDecoder;
  readonly #caches = new Map<string, ServiceCache>();
  #baseWatcher: ChildrenWatcher | undefined;
  #baseLoaded = false;
  #markBaseLoaded!: () => void;
  readonly #baseLoadedPromise = new Promise<void>((resolve) => (this.#markBaseLoaded = resolve));
  #listed = new Set<string>();
  #baseMissing = false;
  #closed = false;
  /** Services the table was seeded with from a saved state: watched once ZooKeeper is reached. */
  readonly #seeded = new Set<string>();
  /** Services watched from the start (`services`, or what a reload set). */
  #eager: Set<string>;
  readonly #random: () => number;
  /** A watcher's wait before re-reading after a new session: uniform over the jitter window. */
  readonly #resyncDelay = (): number => {
    const watches = 1 + this.#caches.size + this.#sequentialRoots.size;
    const windowMs = resyncWindowMs(this.#options.resyncJitterMs ?? 'auto', watches);
    return windowMs > 0 ? Math.floor(this.#random() * windowMs) : 0;
  };
  /** Services with a root of their own (see DiscoveryOptions.roots). */
  readonly #roots: ReadonlyMap<string, { readonly basePath: string; readonly layout: Layout }>;
  /** One watcher per other sequential base path, feeding the caches of the services there. */
  readonly #sequentialRoots = new Map<string, ChildrenWatcher>();

  constructor(options: DiscoveryOptions, deps: DiscoveryDeps) {
    super();
    this.#options = options;
    this.#eager = new Set(options.services ?? []);
    this.#random = deps.random ?? Math.random;
    this.#roots = new Map(Object.entries(options.roots ?? {}).filter(([service]) => isValidServiceName(service)));
    this.basePath = options.basePath ?? '/providers';
    this.layout = options.layout ?? 'nested';
    this.#logger = deps.logger.child({ component: 'discovery' });
    this.#decoder = new InstanceDecoder(this.#logger, deps.addressRefusal);
    this.table = new ProviderTable({ keepLastOnEmpty: options.keepLastOnEmpty ?? true });
    this.table.on('change', (service: string, instances: readonly Instance[], delta: SetDelta) => {
      if (this.#logger.isLevelEnabled('info')) {
        // What changed, not the whole set: a 1,000-instance service logs one address.
        const addresses = (list: readonly Instance[]) => list.slice(0, 20).map((i) => i.address);
        this.#logger.info({ service, count: instances.length, added: addresses(delta.added), removed: addresses(delta.removed) }, 'providers changed');
      }
      this.emit('change', service, instances, delta);
    });
    this.#ownsSession = deps.session === undefined;
    this.#session = deps.session ?? new ZkSession(
      {
        connectString: options.zookeeper,
        sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        ...(options.auth ? { auth: options.auth } : {}),
        ...(options.nativeLogLevel !== undefined ? { nativeLogLevel: options.nativeLogLevel } : {}),
      },
      { logger: deps.logger },
    );
  }

  get session(): ZkSession {
    return this.#session;
  }

  /** Connects (bounded by connectTimeoutMs) and starts the base and eager service watches. */
  async start(): Promise<void> {
    if (!this.#session.client) await this.#session.start();
    this.#baseWatcher = new ChildrenWatcher(
      { path: this.basePath, readData: this.layout === 'sequential' },
      { session: this.#session, logger: this.#logger, limiter: this.#limiter, resyncDelayMs: this.#resyncDelay, onSnapshot: (s) => this.#onBaseSnapshot(s) },
    );
    this.#baseWatcher.start();
    for (const service of [...this.#eager, ...this.#seeded, ...this.#roots.keys()]) this.#cache(service);
  }

  /**
   * Serves these sets until ZooKeeper is read (a saved state, while ZooKeeper is unreachable at
   * start). A service's first read from ZooKeeper replaces its set whole; a service ZooKeeper
   * does not list leaves with the first list of services.
   */
  seed(services: readonly (readonly [string, readonly Instance[]])[]): void {
    for (const [service, instances] of services) {
      if (this.table.get(service) || !isValidServiceName(service)) continue;
      this.table.replace(service, instances);
      this.#seeded.add(service);
    }
  }

  /** Waits until the list of services (and the eager services) has been read once (bounded). */
  async ready(timeoutMs = this.#options.firstSnapshotTimeoutMs ?? 5000): Promise<boolean> {
    const waits = [this.#baseLoadedPromise, ...[...this.#caches.values()].map((c) => c.whenLoaded())];
    return withTimeout(Promise.all(waits).then(() => undefined), timeoutMs);
  }

  knownServices(): string[] {
    return [...new Set([...this.#listed, ...this.#roots.keys(), ...this.table.services()])].sort();
  }

  /** Names ZooKeeper lists under the base path, and the services with roots of their own. */
  #listedNames(): ReadonlySet<string> {
    return this.#roots.size === 0 ? this.#listed : new Set([...this.#listed, ...this.#roots.keys()]);
  }

  /** True once the list of services has been read (the first snapshot is in). */
  get loaded(): boolean {
    return this.#baseLoaded;
  }

  /**
   * The services watched from the start from now on (a reload): new ones are watched at once
   * (readiness waits for them as at start); ones left out stay watched while in use.
   */
  watchFromStart(services: readonly string[]): void {
    this.#eager = new Set(services.filter(isValidServiceName));
    if (this.#baseWatcher) for (const service of this.#eager) this.#cache(service);
  }

  /** True once every service watched from the start (`services`) has had its first snapshot. */
  get eagerLoaded(): boolean {
    return this.eagerPending().length === 0;
  }

  /** The services watched from the start whose first snapshot is not in yet. */
  eagerPending(): string[] {
    return [...this.#eager].filter((service) => !this.#caches.get(service)?.loaded);
  }

  /** True when the base path itself is missing in ZooKeeper. */
  get baseMissing(): boolean {
    return this.#baseMissing;
  }

  /** The current instances of a watched service (sync, for the hot path); undefined if none known. */
  instances(service: string): readonly Instance[] | undefined {
    return this.table.get(service)?.instances;
  }

  /** Resolves a service, watching it on first use and waiting (bounded) for its first snapshot. */
  async resolve(service: string, timeoutMs = this.#options.firstSnapshotTimeoutMs ?? 5000): Promise<Resolution> {
    // Read each time: the base path's snapshot replaces the set while this waits.
    const local = answerLocally(this.table, service, this.#baseLoaded ? this.#listedNames() : undefined);
    if (local) return local;
    let cache = this.#caches.get(service);
    if (!cache) {
      if (!this.#baseLoaded && !(await withTimeout(this.#baseLoadedPromise, timeoutMs))) return { kind: 'timeout' };
      // Only names ZooKeeper lists get a watch, so random names cannot grow our watch set.
      if (!this.#listedNames().has(service)) return { kind: 'unknown' };
      cache = this.#cache(service);
    }
    if (!cache.loaded && !(await withTimeout(cache.whenLoaded(), timeoutMs))) return { kind: 'timeout' };
    const after = this.table.get(service);
    if (after && after.instances.length > 0) return { kind: 'instances', instances: after.instances };
    return this.#listedNames().has(service) || after ? { kind: 'empty' } : { kind: 'unknown' };
  }

  /** The service's cache, created (and its watch started, nested layout) on first use. */
  #cache(service: string): ServiceCache {
    let cache = this.#caches.get(service);
    if (cache) return cache;
    cache = new ServiceCache(service, { table: this.table, decoder: this.#decoder, logger: this.#logger });
    this.#caches.set(service, cache);
    const root = this.#roots.get(service) ?? { basePath: this.basePath, layout: this.layout };
    if (root.layout === 'sequential' && this.#roots.has(service)) this.#sequentialRoot(root.basePath);
    if (root.layout === 'nested') {
      const owner = cache;
      cache.watcher = new ChildrenWatcher(
        { path: watchedParent(root.basePath, root.layout, service), readData: true },
        { session: this.#session, logger: this.#logger, limiter: this.#limiter, resyncDelayMs: this.#resyncDelay, onSnapshot: (snapshot) => owner.apply(snapshot) },
      );
      cache.watcher.start();
    }
    return cache;
  }

  #onBaseSnapshot(snapshot: ChildrenSnapshot): void {
    this.#baseMissing = snapshot.kind === 'missing';
    const before = [...this.#listed].join();
    if (snapshot.kind === 'missing') {
      this.#listed = new Set();
      if (this.layout === 'sequential') for (const cache of this.#caches.values()) cache.apply(snapshot);
    } else if (this.layout === 'nested') {
      this.#listed = new Set([...snapshot.names].filter(isValidServiceName));
    } else {
      this.#applySequential(snapshot.names, snapshot.changed, snapshot.removed);
    }
    if (!this.#baseLoaded) {
      this.#baseLoaded = true;
      this.#markBaseLoaded();
    }
    if ([...this.#listed].join() !== before) {
      // Nested: a service not listed had its znode deleted. Sequential: it may just have no
      // instance right now, which --keep-last-on-empty covers: nothing is forgotten.
      if (this.layout === 'nested') this.#forgetUnlisted();
      this.emit('services', [...this.#listed].sort());
    }
  }

  /**
   * Services ZooKeeper no longer lists have left: their table entries (and with them health
   * records, pools and metric series) go, and their watches, unless watched from the start.
   */
  #forgetUnlisted(): void {
    for (const [service, cache] of this.#caches) {
      if (this.#listed.has(service) || this.#roots.has(service)) continue;
      if (!this.#eager.has(service)) {
        cache.close();
        this.#caches.delete(service);
      }
      this.table.remove(service);
    }
    for (const service of this.table.services()) if (!this.#listed.has(service) && !this.#caches.has(service) && !this.#roots.has(service)) this.table.remove(service);
  }

  /** Sequential layout: every instance is a base-path child; each goes to its service's cache. */
  #applySequential(names: ReadonlySet<string>, changed: readonly ChildNode[], removed: readonly string[]): void {
    const listed = new Set<string>();
    for (const name of names) {
      const service = sequentialServiceName(name);
      if (service && isValidServiceName(service)) listed.add(service);
    }
    this.#listed = listed;
    const byService = new Map<string, { changed: ChildNode[]; removed: string[] }>();
    const group = (name: string) => {
      const service = sequentialServiceName(name);
      // A service with a root of its own is read there, never here.
      if (!service || !isValidServiceName(service) || this.#roots.has(service)) return undefined;
      let g = byService.get(service);
      if (!g) byService.set(service, (g = { changed: [], removed: [] }));
      return g;
    };
    for (const child of changed) group(child.name)?.changed.push(child);
    for (const name of removed) group(name)?.removed.push(name);
    for (const [service, g] of byService) this.#cache(service).apply({ kind: 'children', ...g });
    // Every listed service has a cache; one not loaded yet (no child of it read: a first read,
    // or a service asked for before it had instances) gets its set, possibly empty, now.
    for (const service of listed) if (!this.#roots.has(service)) this.#cache(service);
    for (const [service, cache] of this.#caches) if (!cache.loaded && !this.#roots.has(service)) cache.apply({ kind: 'children', changed: [], removed: [] });
  }

  /** The watcher of another sequential base path (one per path), feeding its services' caches. */
  #sequentialRoot(basePath: string): void {
    if (this.#sequentialRoots.has(basePath) || this.#closed) return;
    const here = () => [...this.#roots].filter(([, r]) => r.layout === 'sequential' && r.basePath === basePath).map(([service]) => service);
    const watcher = new ChildrenWatcher(
      { path: basePath, readData: true },
      {
        session: this.#session, logger: this.#logger, limiter: this.#limiter, resyncDelayMs: this.#resyncDelay,
        onSnapshot: (snapshot) => {
          const services = new Set(here());
          if (snapshot.kind === 'missing') {
            for (const service of services) this.#cache(service).apply(snapshot);
            return;
          }
          const byService = new Map<string, { changed: ChildNode[]; removed: string[] }>([...services].map((s) => [s, { changed: [], removed: [] }]));
          for (const child of snapshot.changed) byService.get(sequentialServiceName(child.name) ?? '')?.changed.push(child);
          for (const name of snapshot.removed) byService.get(sequentialServiceName(name) ?? '')?.removed.push(name);
          for (const [service, g] of byService) {
            const cache = this.#cache(service);
            if (g.changed.length > 0 || g.removed.length > 0 || !cache.loaded) cache.apply({ kind: 'children', ...g });
          }
        },
      },
    );
    this.#sequentialRoots.set(basePath, watcher);
    watcher.start();
  }

  /** Every watch's path and when its last read started (diagnostics: the resync jitter's spread). */
  syncStarts(): { readonly path: string; readonly at: number }[] {
    return this.#watchers().map((w) => ({ path: w.path, at: w.stats().lastSyncStartedAt }));
  }

  #watchers(): ChildrenWatcher[] {
    const all = [this.#baseWatcher, ...this.#sequentialRoots.values(), ...[...this.#caches.values()].map((c) => c.watcher)];
    return all.filter((w): w is ChildrenWatcher => w !== undefined);
  }

  stats(): DiscoveryStats {
    const session = this.#session.stats();
    const table = this.table.stats();
    let syncs = 0;
    let dataReads = 0;
    let maxInFlight = 0;
    for (const watcher of this.#watchers()) {
      const s = watcher.stats();
      syncs += s.syncs;
      dataReads += s.dataReads;
      maxInFlight = Math.max(maxInFlight, s.maxSyncsInFlight);
    }
    return {
      session,
      staleSeconds: session.disconnectedSince === undefined ? 0 : (Date.now() - session.disconnectedSince) / 1000,
      services: this.knownServices().length,
      instances: table.instances,
      watchedServices: this.#caches.size,
      ...this.#decoder.stats(),
      emptySetsIgnored: table.emptySetsIgnored,
      duplicatesDropped: table.duplicatesDropped,
      syncs,
      dataReads,
      maxSyncsInFlightPerPath: maxInFlight,
    };
  }

  /** Stops every watch and closes the session (when this object opened it). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#baseWatcher?.close();
    for (const watcher of this.#sequentialRoots.values()) watcher.close();
    for (const cache of this.#caches.values()) cache.close();
    if (this.#ownsSession) await this.#session.close();
  }
}

/** Creates a discovery client (call start() to connect). */
export function createDiscovery(options: DiscoveryOptions, deps: DiscoveryDeps): Discovery {
  return new Discovery(options, deps);
}
