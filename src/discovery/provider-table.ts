import { EventEmitter } from 'node:events';
import type { Endpoint } from './instance-data.js';

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

/** Same set of znodes at the same versions (any order)? */
function sameSet(previous: readonly Instance[], next: readonly Instance[]): boolean {
  if (previous.length !== next.length) return false;
  // Discovery reuses the Instance object of an unchanged znode: identity settles most cases.
  const objects = new Set<Instance>(previous);
  let identical = true;
  for (const i of next) {
    if (!objects.has(i)) {
      identical = false;
      break;
    }
  }
  if (identical) return true;
  const keys = new Set<string>();
  for (const i of previous) keys.add(`${i.uid}@${i.version}`);
  for (const i of next) if (!keys.has(`${i.uid}@${i.version}`)) return false;
  return true;
}

function byAddress(a: Instance, b: Instance): number {
  return a.address < b.address ? -1 : a.address > b.address ? 1 : 0;
}

/**
 * Orders by address and keeps one instance per host:port (the oldest znode wins). With the
 * previous (sorted) set, instances carried over keep their order and only the new ones are
 * sorted and merged in: a one-child change in a large service costs O(n), not O(n log n).
 */
function dedupe(instances: readonly Instance[], previous?: readonly Instance[]): Instance[] {
  let sorted: Instance[];
  if (previous && previous.length > 0) {
    const pending = new Set(instances);
    const kept: Instance[] = [];
    for (const i of previous) if (pending.delete(i)) kept.push(i);
    const added = [...pending].sort(byAddress);
    sorted = new Array<Instance>(kept.length + added.length);
    let k = 0;
    let a = 0;
    for (let o = 0; o < sorted.length; o++) sorted[o] = a >= added.length || (k < kept.length && byAddress(kept[k]!, added[a]!) <= 0) ? kept[k++]! : added[a++]!;
  } else {
    sorted = [...instances].sort(byAddress);
  }
  const out: Instance[] = [];
  for (const instance of sorted) {
    const last = out[out.length - 1];
    if (last?.address !== instance.address) out.push(instance);
    else if (instance.createdZxid < last.createdZxid) out[out.length - 1] = instance;
  }
  return out;
}

export type ReplaceOutcome = 'changed' | 'unchanged' | 'kept_on_empty';

/**
 * What ZooKeeper says each service has, replaced a whole set at a time. Health never edits it.
 * Emits `change` (service, entry) whenever a service's set changes.
 */
export class ProviderTable extends EventEmitter {
  readonly #entries = new Map<string, ServiceEntry>();
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
    const previous = this.#entries.get(service);
    const next = dedupe(instances, previous?.instances);
    this.#duplicatesDropped += instances.length - next.length;
    if (next.length === 0 && this.#keepLastOnEmpty && previous && previous.instances.length > 0) {
      if (!previous.keptOnEmpty) {
        this.#emptyIgnored += 1;
        this.#entries.set(service, { ...previous, keptOnEmpty: true });
      }
      return 'kept_on_empty';
    }
    if (previous && !previous.keptOnEmpty && sameSet(previous.instances, next)) return 'unchanged';
    const entry: ServiceEntry = { instances: Object.freeze(next), updatedAt: Date.now(), keptOnEmpty: false };
    this.#entries.set(service, entry);
    this.emit('change', service, entry);
    return 'changed';
  }

  stats(): { services: number; instances: number; emptySetsIgnored: number; duplicatesDropped: number } {
    let instances = 0;
    for (const entry of this.#entries.values()) instances += entry.instances.length;
    return { services: this.#entries.size, instances, emptySetsIgnored: this.#emptyIgnored, duplicatesDropped: this.#duplicatesDropped };
  }
}
