import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ZkAuth } from '../zookeeper/client.js';
import { ZkSession, type ZkSessionStats } from '../zookeeper/session.js';
import { ChildrenWatcher, type ChildNode, type ChildrenSnapshot } from './children-watcher.js';
import { decodeInstanceData, type RejectReason } from './instance-data.js';
import { Limiter } from './limiter.js';
import { isValidServiceName, sequentialServiceName, watchedParent, type Layout } from './paths.js';
import { ProviderTable, type Instance, type ReplaceOutcome, type ServiceEntry, type SetDelta } from './provider-table.js';

export interface DiscoveryOptions {
  /** ZooKeeper connect string, every ensemble member, optional chroot. */
  readonly zookeeper: string;
  readonly basePath?: string;
  readonly layout?: Layout;
  /** Services watched from the start; others are watched on first use. */
  readonly services?: readonly string[];
  readonly keepLastOnEmpty?: boolean;
  readonly sessionTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** How long a first lookup of a service waits for its first snapshot. */
  readonly firstSnapshotTimeoutMs?: number;
  readonly auth?: readonly ZkAuth[];
}

export interface DiscoveryDeps {
  readonly logger: Logger;
  /** A session to use instead of opening one (it is then closed by its owner, not here). */
  readonly session?: ZkSession;
}

/** The answer to "where can I send a request for this service?" */
export type Resolution =
  | { readonly kind: 'instances'; readonly instances: readonly Instance[] }
  /** The service exists in ZooKeeper but has no usable instance right now. */
  | { readonly kind: 'empty' }
  /** ZooKeeper has no such service (or it could not be told within the deadline: `timeout`). */
  | { readonly kind: 'unknown' }
  | { readonly kind: 'timeout' };

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

interface DecodedChild {
  readonly czxid: number;
  readonly version: number;
  /** Undefined when the data was unusable (counted once when first seen). */
  readonly instance: Instance | undefined;
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  done: boolean;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  const d: Deferred = { promise, resolve: () => { d.done = true; resolve(); }, done: false };
  return d;
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
 * The provider table kept fresh from ZooKeeper. Nested layout: one children watch on the base
 * path (the service names) and one per used service. Sequential layout: one children watch on
 * the base path whose children are every service's instances.
 *
 * Events: `change` (service, instances) after a service's set changed; `services` (names) when
 * the list of services under the base path changed.
 */
export class Discovery extends EventEmitter {
  readonly basePath: string;
  readonly layout: Layout;
  readonly table: ProviderTable;
  readonly #options: DiscoveryOptions;
  readonly #logger: Logger;
  readonly #session: ZkSession;
  readonly #ownsSession: boolean;
  /** Data reads in flight across all watchers (PERFORMANCE.md: parallel, but bounded). */
  readonly #limiter = new Limiter(256);
  readonly #serviceWatchers = new Map<string, { watcher: ChildrenWatcher; first: Deferred }>();
  #baseWatcher: ChildrenWatcher | undefined;
  readonly #baseLoaded = deferred();
  #knownServices = new Set<string>();
  #baseMissing = false;
  readonly #malformedSeen = new Set<string>();
  /** Decoded children per service, by znode name (see #decode). */
  readonly #decoded = new Map<string, Map<string, DecodedChild>>();
  readonly #malformedByReason: Record<string, number> = {};
  #malformed = 0;
  #closed = false;

  constructor(options: DiscoveryOptions, deps: DiscoveryDeps) {
    super();
    this.#options = options;
    this.basePath = options.basePath ?? '/providers';
    this.layout = options.layout ?? 'nested';
    this.#logger = deps.logger.child({ component: 'discovery' });
    this.table = new ProviderTable({ keepLastOnEmpty: options.keepLastOnEmpty ?? true });
    this.table.on('change', (service: string, entry: ServiceEntry, delta: SetDelta) => {
      if (this.#logger.isLevelEnabled('info')) {
        // What changed, not the whole set: a 1,000-instance service logs one address.
        const addresses = (list: readonly Instance[]) => list.slice(0, 20).map((i) => i.address);
        this.#logger.info({ service, count: entry.instances.length, added: addresses(delta.added), removed: addresses(delta.removed) }, 'providers changed');
      }
      this.emit('change', service, entry.instances, delta);
    });
    this.#ownsSession = deps.session === undefined;
    this.#session = deps.session ?? new ZkSession(
      {
        connectString: options.zookeeper,
        sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        ...(options.auth ? { auth: options.auth } : {}),
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
      { session: this.#session, logger: this.#logger, limiter: this.#limiter, onSnapshot: (s) => this.#onBaseSnapshot(s) },
    );
    this.#baseWatcher.start();
    for (const service of this.#options.services ?? []) this.#watch(service);
  }

  /** Waits until the list of services has been read once (bounded). */
  async ready(timeoutMs = this.#options.firstSnapshotTimeoutMs ?? 5000): Promise<boolean> {
    const waits = [this.#baseLoaded.promise, ...[...this.#serviceWatchers.values()].map((w) => w.first.promise)];
    return withTimeout(Promise.all(waits).then(() => undefined), timeoutMs);
  }

  /** Service names ZooKeeper lists now (plus any still held in the table). */
  knownServices(): string[] {
    return [...new Set([...this.#knownServices, ...this.table.services()])].sort();
  }

  /** True once the list of services has been read (the first snapshot is in). */
  get loaded(): boolean {
    return this.#baseLoaded.done;
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
    const entry = this.table.get(service);
    if (entry && entry.instances.length > 0) return { kind: 'instances', instances: entry.instances };
    if (!isValidServiceName(service)) return { kind: 'unknown' };
    let watched = this.#serviceWatchers.get(service);
    if (!watched) {
      if (!this.#baseLoaded.done && !(await withTimeout(this.#baseLoaded.promise, timeoutMs))) return { kind: 'timeout' };
      // Only names ZooKeeper lists get a watch, so random names cannot grow our watch set.
      if (!this.#knownServices.has(service)) return { kind: 'unknown' };
      watched = this.#watch(service);
    }
    if (!watched.first.done && !(await withTimeout(watched.first.promise, timeoutMs))) return { kind: 'timeout' };
    const after = this.table.get(service);
    if (after && after.instances.length > 0) return { kind: 'instances', instances: after.instances };
    return this.#knownServices.has(service) || after ? { kind: 'empty' } : { kind: 'unknown' };
  }

  #watch(service: string): { watcher: ChildrenWatcher; first: Deferred } {
    const existing = this.#serviceWatchers.get(service);
    if (existing) return existing;
    const first = deferred();
    if (this.layout === 'sequential') {
      // One watch on the base path covers every service; its snapshots fill this one too.
      const entry = { watcher: this.#baseWatcher!, first };
      this.#serviceWatchers.set(service, entry);
      if (this.#baseLoaded.done) first.resolve();
      else void this.#baseLoaded.promise.then(() => first.resolve());
      return entry;
    }
    const watcher = new ChildrenWatcher(
      { path: watchedParent(this.basePath, this.layout, service), readData: true },
      {
        session: this.#session,
        logger: this.#logger,
        limiter: this.#limiter,
        onSnapshot: (snapshot) => {
          this.#applyServiceSnapshot(service, snapshot);
          first.resolve();
        },
      },
    );
    const entry = { watcher, first };
    this.#serviceWatchers.set(service, entry);
    watcher.start();
    return entry;
  }

  #onBaseSnapshot(snapshot: ChildrenSnapshot): void {
    this.#baseMissing = snapshot.kind === 'missing';
    const before = [...this.#knownServices].join();
    if (snapshot.kind === 'missing') {
      this.#knownServices = new Set();
      if (this.layout === 'sequential') for (const service of this.table.services()) this.#applyInstances(service, []);
    } else if (this.layout === 'nested') {
      this.#knownServices = new Set([...snapshot.children.keys()].filter(isValidServiceName));
    } else {
      const groups = new Map<string, ChildNode[]>();
      for (const child of snapshot.children.values()) {
        const service = sequentialServiceName(child.name);
        if (!service || !isValidServiceName(service)) continue;
        let group = groups.get(service);
        if (!group) groups.set(service, (group = []));
        group.push(child);
      }
      this.#knownServices = new Set(groups.keys());
      for (const service of new Set([...groups.keys(), ...this.table.services()])) {
        this.#applyInstances(service, this.#decode(service, groups.get(service) ?? []));
      }
    }
    this.#baseLoaded.resolve();
    if ([...this.#knownServices].join() !== before) this.emit('services', [...this.#knownServices].sort());
  }

  /**
   * A service watcher's snapshot. After the first, only the children it names as changed or
   * removed are looked at: one new child in a 1,000-instance service decodes one znode and
   * patches the table with one instance.
   */
  #applyServiceSnapshot(service: string, snapshot: ChildrenSnapshot): void {
    if (snapshot.kind === 'missing') {
      this.#decoded.delete(service);
      this.#applyInstances(service, []);
      return;
    }
    const decoded = this.#decoded.get(service);
    if (!decoded) {
      this.#applyInstances(service, this.#decode(service, snapshot.children.values()));
      return;
    }
    const added: Instance[] = [];
    const removed: Instance[] = [];
    for (const name of snapshot.removed) {
      const gone = decoded.get(name);
      if (!gone) continue;
      decoded.delete(name);
      if (gone.instance) removed.push(gone.instance);
    }
    for (const name of snapshot.changed) {
      const child = snapshot.children.get(name);
      if (!child?.data || !child.stat) continue;
      const before = decoded.get(name);
      if (before && before.czxid === child.stat.czxid && before.version === child.stat.version) continue;
      const after = this.#decodeChild(service, child);
      decoded.set(name, after);
      if (before?.instance) removed.push(before.instance);
      if (after.instance) added.push(after.instance);
    }
    if (added.length === 0 && removed.length === 0) return;
    this.#warnIfKept(service, this.table.patch(service, added, removed));
  }

  #applyInstances(service: string, instances: Instance[]): void {
    this.#warnIfKept(service, this.table.replace(service, instances));
  }

  #warnIfKept(service: string, outcome: ReplaceOutcome): void {
    if (outcome === 'kept_on_empty') {
      this.#logger.warn({ service }, 'ZooKeeper lists no instances; keeping the last known set (--keep-last-on-empty)');
    }
  }

  /**
   * Instances from all of a service's children (a first read, or the sequential layout). A child
   * decoded before (same znode, same version) is reused as is.
   */
  #decode(service: string, children: Iterable<ChildNode>): Instance[] {
    const previous = this.#decoded.get(service);
    const next = new Map<string, DecodedChild>();
    const instances: Instance[] = [];
    for (const child of children) {
      if (!child.data || !child.stat) continue;
      const cached = previous?.get(child.name);
      const entry = cached && cached.czxid === child.stat.czxid && cached.version === child.stat.version ? cached : this.#decodeChild(service, child);
      next.set(child.name, entry);
      if (entry.instance) instances.push(entry.instance);
    }
    if (next.size > 0) this.#decoded.set(service, next);
    else this.#decoded.delete(service);
    return instances;
  }

  #decodeChild(service: string, child: ChildNode): DecodedChild {
    const stat = child.stat!;
    const result = decodeInstanceData(child.data!);
    if (!result.ok) {
      this.#noteMalformed(service, child, result.reason, result.detail);
      return { czxid: stat.czxid, version: stat.version, instance: undefined };
    }
    const { endpoint } = result;
    const instance: Instance = Object.freeze({
      ...endpoint,
      service,
      id: child.name,
      path: child.path,
      address: endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`,
      uid: `${child.path}#${stat.czxid}`,
      createdZxid: stat.czxid,
      version: stat.version,
    });
    return { czxid: stat.czxid, version: stat.version, instance };
  }

  /** Counts and logs a bad znode once per znode version. */
  #noteMalformed(service: string, child: ChildNode, reason: RejectReason, detail: string): void {
    const key = `${child.path}#${child.stat?.czxid}@${child.stat?.version}`;
    if (this.#malformedSeen.has(key)) return;
    if (this.#malformedSeen.size > 100_000) this.#malformedSeen.clear();
    this.#malformedSeen.add(key);
    if (reason === 'not_alive') return; // a serverset member that is not serving: skipped, not malformed
    this.#malformed += 1;
    this.#malformedByReason[reason] = (this.#malformedByReason[reason] ?? 0) + 1;
    this.#logger.warn({ service, path: child.path, version: child.stat?.version, reason, detail }, 'skipping znode with unusable data');
  }

  stats(): DiscoveryStats {
    const session = this.#session.stats();
    const table = this.table.stats();
    let syncs = 0;
    let dataReads = 0;
    let maxInFlight = 0;
    const watchers = new Set([this.#baseWatcher, ...[...this.#serviceWatchers.values()].map((w) => w.watcher)]);
    for (const watcher of watchers) {
      if (!watcher) continue;
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
      watchedServices: this.#serviceWatchers.size,
      malformed: this.#malformed,
      malformedByReason: { ...this.#malformedByReason },
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
    for (const { watcher } of this.#serviceWatchers.values()) watcher.close();
    if (this.#ownsSession) await this.#session.close();
  }
}

/** Creates a discovery client (call start() to connect). */
export function createDiscovery(options: DiscoveryOptions, deps: DiscoveryDeps): Discovery {
  return new Discovery(options, deps);
}
