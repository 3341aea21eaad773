import { EventEmitter } from 'node:events';
import type { Endpoint } from '../znode/instance-data.js';

/** One instance of a service as ZooKeeper describes it. */
export interface Instance extends Endpoint {
  readonly service: string;
  /** The znode's name (the registration id, or the sequential name). */
  readonly id: string;
  readonly path: string;
  /** `host:port`: instances are de-duplicated by it. */
  readonly address: string;
  /** Znode identity: a node deleted and re-created gets a new uid, so health starts clean. */
  readonly uid: string;
  /** The zxid that created the znode; orders duplicates (oldest wins). */
  readonly createdZxid: number;
  readonly version: number;
}

export interface ServiceEntry {
  readonly instances: readonly Instance[];
  /** When this set was applied (ms since epoch). */
  readonly updatedAt: number;
  /** True when ZooKeeper reported no instances and the previous set was kept. */
  readonly keptOnEmpty: boolean;
}

export interface ProviderTableOptions {
  /** Keep the last non-empty set when a read returns none (default true; Synapse does the same). */
  readonly keepLastOnEmpty?: boolean;
}

/** What changed in a service's served set: instances that left and instances that joined. */
export interface SetDelta {
  readonly added: readonly Instance[];
  readonly removed: readonly Instance[];
}

/** The served order: by address, then oldest znode first (so the first of an address wins). */
function compare(a: Instance, b: Instance): number {
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  return a.createdZxid - b.createdZxid;
}

/** The same znode at the same version (a re-decoded copy counts as the same). */
function same(a: Instance, b: Instance): boolean {
  return a === b || (a.uid === b.uid && a.version === b.version);
}

/** The first index in `sorted` whose instance is not `before` the one sought (binary search). */
function firstIndex(sorted: readonly Instance[], before: (i: Instance) => boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(sorted[mid]!)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Where `x` goes in `sorted` (or is). */
function lowerBound(sorted: readonly Instance[], x: Instance): number {
  return firstIndex(sorted, (i) => compare(i, x) < 0);
}

/** The index of the first instance with this address in `sorted`, or -1. */
function firstOf(sorted: readonly Instance[], address: string): number {
  const at = firstIndex(sorted, (i) => i.address < address);
  return sorted[at]?.address === address ? at : -1;
}

/** One instance per host:port from a sorted candidate list: the oldest znode. */
function dedupe(sorted: readonly Instance[]): Instance[] {
  const out: Instance[] = [];
  let last: Instance | undefined;
  for (const instance of sorted) {
    if (last?.address !== instance.address) out.push((last = instance));
  }
  return out;
}

/**
 * The delta between two served sets, both sorted by `compare`, in one merge pass (no hashing).
 * An unchanged znode keeps its previous object, so readers holding it see no difference.
 */
function diff(previous: readonly Instance[], next: Instance[]): SetDelta {
  const added: Instance[] = [];
  const removed: Instance[] = [];
  let i = 0;
  let j = 0;
  while (i < previous.length || j < next.length) {
    const p = previous[i];
    const n = next[j];
    if (p && n && same(p, n)) {
      next[j] = p;
      i++;
      j++;
    } else if (n && (!p || compare(n, p) <= 0)) {
      added.push(n);
      j++;
    } else {
      removed.push(p!);
      i++;
    }
  }
  return { added, removed };
}

export type ReplaceOutcome = 'changed' | 'unchanged' | 'kept_on_empty';

/**
 * What ZooKeeper says each service has. Health never edits it. A service's set changes by whole
 * replacement (`replace`) or by a delta (`patch`: binary search and splice, and the winner of
 * only the addresses touched recomputed: one new child in a 1,000-instance service costs a copy
 * of the array and a few comparisons). Every candidate znode is kept, so when the winner
 * of a duplicated host:port goes, the next oldest takes its place.
 *
 * Emits `change` (service, instances, delta) whenever a service's served set changes (the one
 * `change` signature: see source.ts).
 */
export class ProviderTable extends EventEmitter {
  readonly #entries = new Map<string, ServiceEntry>();
  /** Per service, every decoded znode sorted by `compare` (duplicates of an address included). */
  readonly #candidates = new Map<string, readonly Instance[]>();
  readonly #keepLastOnEmpty: boolean;
  #emptyIgnored = 0;
  #duplicatesDropped = 0;

  constructor(options: ProviderTableOptions = {}) {
    super();
    this.#keepLastOnEmpty = options.keepLastOnEmpty ?? true;
  }

  get(service: string): ServiceEntry | undefined {
    return this.#entries.get(service);
  }

  services(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /** Replaces a service's set. Only call with the result of a successful read. */
  replace(service: string, instances: readonly Instance[]): ReplaceOutcome {
    return this.#commit(service, [...instances].sort(compare));
  }

  /**
   * Applies a change to the last set given: `removed` are instances given before (by identity),
   * `added` new ones (a new version of a znode is removed old plus added new).
   */
  patch(service: string, added: readonly Instance[], removed: readonly Instance[]): ReplaceOutcome {
    // Binary search and splice (a memmove): the work in JavaScript is O(changes x log n).
    const candidates = this.#candidates.get(service)?.slice() ?? [];
    const touched = new Set<string>();
    for (const gone of removed) {
      let at = lowerBound(candidates, gone);
      if (candidates[at] !== gone) at = candidates.indexOf(gone);
      if (at < 0) continue;
      candidates.splice(at, 1);
      touched.add(gone.address);
    }
    for (const instance of added) {
      candidates.splice(lowerBound(candidates, instance), 0, instance);
      touched.add(instance.address);
    }
    const previous = this.#entries.get(service);
    if (!previous || previous.keptOnEmpty || candidates.length === 0) return this.#commit(service, candidates);
    // Only the touched addresses can change their winner (the oldest znode of the address).
    this.#candidates.set(service, candidates);
    const next = previous.instances.slice();
    const delta: { added: Instance[]; removed: Instance[] } = { added: [], removed: [] };
    for (const address of touched) {
      const c = firstOf(candidates, address);
      const winner = c < 0 ? undefined : candidates[c]!;
      const s = firstOf(next, address);
      const before = s < 0 ? undefined : next[s]!;
      if (before && winner && same(before, winner)) continue;
      if (before) delta.removed.push(before);
      if (winner) delta.added.push(winner);
      if (before && winner) next[s] = winner;
      else if (before) next.splice(s, 1);
      else if (winner) next.splice(lowerBound(next, winner), 0, winner);
    }
    this.#duplicatesDropped += candidates.length - next.length;
    if (delta.added.length === 0 && delta.removed.length === 0) return 'unchanged';
    return this.#publish(service, next, delta);
  }

  /**
   * Forgets a service that left ZooKeeper (its znode is gone, not just its instances): a last
   * `change` with every instance removed (health and pools let go), then `removed` (service)
   * for whatever else keeps per-service state (metric series).
   */
  remove(service: string): void {
    const previous = this.#entries.get(service);
    this.#candidates.delete(service);
    if (!previous) return;
    this.#entries.delete(service);
    if (previous.instances.length > 0) this.emit('change', service, [], { added: [], removed: previous.instances });
    this.emit('removed', service);
  }

  /** Serves a whole candidate list (sorted by `compare`). */
  #commit(service: string, candidates: Instance[]): ReplaceOutcome {
    this.#candidates.set(service, candidates);
    const previous = this.#entries.get(service);
    const next = dedupe(candidates);
    this.#duplicatesDropped += candidates.length - next.length;
    if (next.length === 0 && this.#keepLastOnEmpty && previous && previous.instances.length > 0) {
      if (!previous.keptOnEmpty) {
        this.#emptyIgnored += 1;
        this.#entries.set(service, { ...previous, keptOnEmpty: true });
      }
      return 'kept_on_empty';
    }
    const delta = diff(previous?.instances ?? [], next);
    if (previous && !previous.keptOnEmpty && delta.added.length === 0 && delta.removed.length === 0) return 'unchanged';
    return this.#publish(service, next, delta);
  }

  #publish(service: string, next: Instance[], delta: SetDelta): ReplaceOutcome {
    // Not frozen (readonly by type): copying a frozen array takes V8's slow path, and the next
    // patch starts from a copy of this one.
    const entry: ServiceEntry = { instances: next, updatedAt: Date.now(), keptOnEmpty: false };
    this.#entries.set(service, entry);
    this.emit('change', service, next, delta);
    return 'changed';
  }

  stats(): { services: number; instances: number; emptySetsIgnored: number; duplicatesDropped: number } {
    let instances = 0;
    for (const entry of this.#entries.values()) instances += entry.instances.length;
    return { services: this.#entries.size, instances, emptySetsIgnored: this.#emptyIgnored, duplicatesDropped: this.#duplicatesDropped };
  }
}
