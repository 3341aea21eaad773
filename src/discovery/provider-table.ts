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

function signature(instances: readonly Instance[]): string {
  return instances.map((i) => `${i.uid}@${i.version}`).join(',');
}

/** Orders by address and keeps one instance per host:port (the oldest znode wins). */
function dedupe(instances: readonly Instance[]): Instance[] {
  const byAddress = new Map<string, Instance>();
  for (const instance of instances) {
    const existing = byAddress.get(instance.address);
    if (!existing || instance.createdZxid < existing.createdZxid) byAddress.set(instance.address, instance);
  }
  return [...byAddress.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
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
    const next = dedupe(instances);
    this.#duplicatesDropped += instances.length - next.length;
    if (next.length === 0 && this.#keepLastOnEmpty && previous && previous.instances.length > 0) {
      if (!previous.keptOnEmpty) {
        this.#emptyIgnored += 1;
        this.#entries.set(service, { ...previous, keptOnEmpty: true });
      }
      return 'kept_on_empty';
    }
    if (previous && !previous.keptOnEmpty && signature(previous.instances) === signature(next)) return 'unchanged';
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
