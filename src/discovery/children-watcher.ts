import type { Logger } from 'pino';
import type { Limiter } from './limiter.js';
import type { WatchEvent, ZkClient, ZkStat } from '../zookeeper/client.js';
import { isTransientZkError, isZkError } from '../zookeeper/errors.js';
import type { ZkSession } from '../zookeeper/session.js';
import { joinPath } from '../znode/layout.js';

/** One child as just read: its stat and raw data (undefined when data is not read). */
export interface ChildNode {
  readonly name: string;
  readonly path: string;
  /** Undefined when the watcher reads names only. */
  readonly stat: ZkStat | undefined;
  readonly data: Buffer | undefined;
}

/**
 * A successful read of the parent, or `missing` when the parent does not exist. The watcher
 * keeps only names: the children read in this sync are handed over in `changed` (new ones,
 * ones whose data watch fired, and every child again after a new session: compare versions),
 * and `removed` names the ones gone since the last snapshot. `names` is the watcher's own set
 * of every child read so far: read it during the callback, do not keep it.
 */
export type ChildrenSnapshot =
  | {
    readonly kind: 'children';
    readonly names: ReadonlySet<string>;
    readonly changed: readonly ChildNode[];
    readonly removed: readonly string[];
  }
  | { readonly kind: 'missing' };

export interface ChildrenWatcherOptions {
  readonly path: string;
  /** Read each child's data (and watch it for changes). */
  readonly readData: boolean;
  /** Delay before retrying after a failed read while the session looks connected. */
  readonly retryDelayMs?: number;
}

export interface ChildrenWatcherDeps {
  readonly session: ZkSession;
  readonly logger: Logger;
  readonly onSnapshot: (snapshot: ChildrenSnapshot) => void;
  /** Bounds data reads in flight across watchers (none: unbounded). */
  readonly limiter?: Limiter;
  /**
   * How long to wait before re-reading after a new session (resync jitter: thousands of
   * sidecars whose sessions expired together must not re-read at once). Not asked before the
   * first snapshot: a first read is never delayed.
   */
  readonly resyncDelayMs?: () => number;
}

export interface ChildrenWatcherStats {
  readonly syncs: number;
  readonly dataReads: number;
  readonly maxSyncsInFlight: number;
  readonly failedSyncs: number;
  /** When the last sync started (ms since the epoch; 0: never). */
  readonly lastSyncStartedAt: number;
}

/**
 * Keeps one parent znode's children (and their data) current with one-shot watches
 * (RELIABILITY.md rules 1-6): the read re-arms the watch; at most one sync runs at a time and
 * events during it cause one more; data is read only for children not seen before or whose
 * data watch fired; at most one children watch and one data watch per child are armed per
 * session; a failed read applies nothing and is retried on reconnect or after a delay; a new
 * session (after expiry) re-arms everything and re-reads every child.
 */
export class ChildrenWatcher {
  readonly path: string;
  readonly #readData: boolean;
  readonly #retryDelayMs: number;
  readonly #session: ZkSession;
  readonly #logger: Logger;
  readonly #onSnapshot: (snapshot: ChildrenSnapshot) => void;
  readonly #limiter: Limiter | undefined;
  /** Every child read so far (a child whose first read failed stays out until read). */
  readonly #names = new Set<string>();
  readonly #stale = new Set<string>();
  readonly #dataWatched = new Set<string>();
  #client: ZkClient | undefined;
  #childWatchArmed = false;
  #existsWatchArmed = false;
  #running = false;
  #dirty = false;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #syncs = 0;
  #dataReads = 0;
  #inFlight = 0;
  #maxInFlight = 0;
  #failedSyncs = 0;
  #lastSyncStartedAt = 0;
  #delivered = false;
  #resyncTimer: NodeJS.Timeout | undefined;
  readonly #resyncDelayMs: (() => number) | undefined;
  readonly #onSession = (client: ZkClient) => this.#resetFor(client);
  /** The last sync failed: a reconnect retries it at once (otherwise the retry timer does). */
  #failing = false;
  /**
   * A reconnect of the same session re-reads nothing: the server kept the watches and the C
   * client re-sets them with the last zxid seen, so a change made while disconnected fires its
   * watch on reconnect. Re-reading every watch here would make a leader election cost every
   * sidecar a read per watch, all at once (synapse#295). Only a sync that failed is retried.
   */
  readonly #onConnected = () => {
    if (!this.#failing) return;
    this.#cancelRetry();
    this.sync();
  };

  constructor(options: ChildrenWatcherOptions, deps: ChildrenWatcherDeps) {
    this.path = options.path;
    this.#readData = options.readData;
    this.#retryDelayMs = options.retryDelayMs ?? 1000;
    this.#session = deps.session;
    this.#logger = deps.logger;
    this.#onSnapshot = deps.onSnapshot;
    this.#limiter = deps.limiter;
    this.#resyncDelayMs = deps.resyncDelayMs;
  }

  /** Starts watching; snapshots arrive through onSnapshot. */
  start(): void {
    this.#session.on('session', this.#onSession);
    this.#session.on('connected', this.#onConnected);
    this.#client = this.#session.client;
    this.sync();
  }

  close(): void {
    this.#closed = true;
    this.#cancelRetry();
    if (this.#resyncTimer) clearTimeout(this.#resyncTimer);
    this.#session.off('session', this.#onSession);
    this.#session.off('connected', this.#onConnected);
  }

  stats(): ChildrenWatcherStats {
    return { syncs: this.#syncs, dataReads: this.#dataReads, maxSyncsInFlight: this.#maxInFlight, failedSyncs: this.#failedSyncs, lastSyncStartedAt: this.#lastSyncStartedAt };
  }

  /** A new session has no watches: re-arm all and re-read every child's data. */
  #resetFor(client: ZkClient): void {
    this.#client = client;
    this.#childWatchArmed = false;
    this.#existsWatchArmed = false;
    this.#dataWatched.clear();
    for (const name of this.#names) this.#stale.add(name);
    // The last snapshot is served meanwhile; a watcher that has none yet reads at once.
    const delayMs = this.#delivered ? this.#resyncDelayMs?.() ?? 0 : 0;
    // The resync below replaces a retry pending from the old session (which would skip the jitter).
    this.#cancelRetry();
    if (delayMs <= 0) return this.sync();
    if (this.#resyncTimer) clearTimeout(this.#resyncTimer);
    this.#resyncTimer = setTimeout(() => {
      this.#resyncTimer = undefined;
      this.sync();
    }, delayMs);
    this.#resyncTimer.unref();
  }

  /** Runs a sync now, or once more after the one in flight. */
  sync(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#dirty = true;
      return;
    }
    this.#running = true;
    void this.#loop();
  }

  async #loop(): Promise<void> {
    for (;;) {
      this.#dirty = false;
      const client = this.#client;
      if (client && !this.#closed) {
        this.#inFlight += 1;
        this.#maxInFlight = Math.max(this.#maxInFlight, this.#inFlight);
        this.#lastSyncStartedAt = Date.now();
        try {
          await this.#syncOnce(client);
          this.#failing = false;
        } catch (err) {
          this.#failing = true;
          this.#failedSyncs += 1;
          if (!isTransientZkError(err)) this.#logger.warn({ err, path: this.path }, 'reading children failed; retrying');
          this.#scheduleRetry();
        } finally {
          this.#inFlight -= 1;
        }
      }
      // `running` is cleared in the same step as the last `dirty` check, with no await between:
      // an event in between would otherwise find a sync "running" and be dropped.
      if (!client || this.#closed || !this.#dirty) {
        this.#running = false;
        return;
      }
    }
  }

  #cancelRetry(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #scheduleRetry(): void {
    if (this.#retryTimer || this.#closed) return;
    // Reconnection also triggers a sync (#onConnected); the timer covers failures while connected.
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.sync();
    }, this.#retryDelayMs);
    this.#retryTimer.unref();
  }

  readonly #onChildEvent = (client: ZkClient) => (event: WatchEvent) => {
    if (client !== this.#client) return; // a watch of an old session
    this.#childWatchArmed = false;
    if (event.type === 'deleted' || event.type === 'created') this.#existsWatchArmed = false;
    this.sync();
  };

  readonly #onDataEvent = (client: ZkClient, name: string) => (event: WatchEvent) => {
    if (client !== this.#client) return;
    this.#dataWatched.delete(name);
    if (event.type === 'changed') {
      this.#stale.add(name);
      this.sync();
    }
  };

  async #syncOnce(client: ZkClient): Promise<void> {
    this.#syncs += 1;
    let names: string[];
    try {
      names = await client.getChildren(this.path, this.#childWatchArmed ? undefined : this.#onChildEvent(client));
      this.#childWatchArmed = true;
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
      // The parent is gone (or not there yet): watch for its creation.
      if (!this.#existsWatchArmed) {
        const stat = await client.exists(this.path, this.#onChildEvent(client));
        this.#existsWatchArmed = true;
        if (stat) {
          this.#dirty = true;
          return;
        }
      }
      this.#names.clear();
      this.#stale.clear();
      this.#delivered = true;
      this.#onSnapshot({ kind: 'missing' });
      return;
    }

    // One pass over the list; a Set of names only when something was removed.
    const toRead: string[] = [];
    let known = 0;
    const stale = this.#stale.size > 0 ? this.#stale : undefined;
    for (const name of names) {
      if (!this.#names.has(name)) toRead.push(name);
      else {
        known += 1;
        if (stale?.has(name)) toRead.push(name);
      }
    }
    const removed: string[] = [];
    if (known < this.#names.size) {
      const present = new Set<string>(names);
      for (const name of this.#names) {
        if (!present.has(name)) {
          this.#names.delete(name);
          this.#stale.delete(name);
          this.#dataWatched.delete(name);
          removed.push(name);
        }
      }
    }
    const changed: ChildNode[] = [];
    let transientFailure: unknown;
    await Promise.all(toRead.map(async (name) => {
      try {
        changed.push(await (this.#limiter ? this.#limiter.run(() => this.#readChild(client, name)) : this.#readChild(client, name)));
      } catch (err) {
        if (isZkError(err, 'NO_NODE')) {
          // Vanished between listing and reading: normal. The children watch reports it.
          if (this.#names.delete(name)) removed.push(name);
          this.#stale.delete(name);
        } else {
          transientFailure = err;
        }
      }
    }));
    // `names` now holds exactly the listed children that were read (a child whose read failed
    // keeps its last data with the consumer, or stays out until read).
    this.#delivered = true;
    this.#onSnapshot({ kind: 'children', names: this.#names, changed, removed });
    if (transientFailure) throw transientFailure;
  }

  async #readChild(client: ZkClient, name: string): Promise<ChildNode> {
    const path = joinPath(this.path, name);
    if (!this.#readData) {
      this.#names.add(name);
      return { name, path, stat: undefined, data: undefined };
    }
    this.#dataReads += 1;
    const watch = !this.#dataWatched.has(name);
    const { data, stat } = await client.getData(path, watch ? this.#onDataEvent(client, name) : undefined);
    if (watch) this.#dataWatched.add(name);
    this.#stale.delete(name);
    this.#names.add(name);
    return { name, path, stat, data };
  }
}
