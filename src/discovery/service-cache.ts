// One service as ZooKeeper describes it (Curator's ServiceCache): its decoded children and the
// table entry it writes. Snapshots come from its own children watch (nested layout) or from
// the base path's watch, routed by service name (sequential layout).
import type { Logger } from 'pino';
import type { ChildNode, ChildrenWatcher } from './children-watcher.js';
import type { DecodedChild, InstanceDecoder } from './instance-decoder.js';
import type { Instance, ProviderTable, ReplaceOutcome } from './provider-table.js';

/** What changed in a service's children: those read now, and names gone. Or the parent is gone. */
export type ServiceSnapshot =
  | { readonly kind: 'children'; readonly changed: readonly ChildNode[]; readonly removed: readonly string[] }
  | { readonly kind: 'missing' };

export interface ServiceCacheDeps {
  readonly table: ProviderTable;
  readonly decoder: InstanceDecoder;
  readonly logger: Logger;
}

/**
 * Keeps one service's table entry equal to its children: only the children named as changed or
 * removed are looked at, and a child decoded before (same znode, same version) is not decoded
 * again, so one new child in a 1,000-instance service decodes one znode and patches the table
 * with one instance.
 */
export class ServiceCache {
  readonly service: string;
  /** The children watch of this service (nested layout); closed with the cache. */
  watcher: ChildrenWatcher | undefined;
  readonly #deps: ServiceCacheDeps;
  readonly #decoded = new Map<string, DecodedChild>();
  readonly #loaded: Promise<void>;
  #markLoaded!: () => void;
  #isLoaded = false;

  constructor(service: string, deps: ServiceCacheDeps) {
    this.service = service;
    this.#deps = deps;
    this.#loaded = new Promise<void>((resolve) => (this.#markLoaded = resolve));
  }

  /** True once a first snapshot was applied. */
  get loaded(): boolean {
    return this.#isLoaded;
  }

  /** Resolves once a first snapshot was applied. */
  whenLoaded(): Promise<void> {
    return this.#loaded;
  }

  /** Applies a snapshot to the table entry. */
  apply(snapshot: ServiceSnapshot): void {
    const { table } = this.#deps;
    if (snapshot.kind === 'missing') {
      this.#decoded.clear();
      // A service that never existed gets no entry: it stays `unknown`, not `empty`.
      if (table.get(this.service)) this.#report(table.replace(this.service, []));
    } else if (this.#decoded.size === 0) {
      // A first read (or the first after the parent was gone): one sorted replace.
      const instances: Instance[] = [];
      for (const child of snapshot.changed) {
        const decoded = this.#decode(child);
        if (decoded?.instance) instances.push(decoded.instance);
      }
      this.#report(table.replace(this.service, instances));
    } else {
      this.#applyDelta(snapshot.changed, snapshot.removed);
    }
    if (!this.#isLoaded) {
      this.#isLoaded = true;
      this.#markLoaded();
    }
  }

  close(): void {
    this.watcher?.close();
  }

  #applyDelta(changed: readonly ChildNode[], removedNames: readonly string[]): void {
    const added: Instance[] = [];
    const removed: Instance[] = [];
    for (const name of removedNames) {
      const gone = this.#decoded.get(name);
      if (!gone) continue;
      this.#decoded.delete(name);
      if (gone.instance) removed.push(gone.instance);
    }
    for (const child of changed) {
      const before = this.#decoded.get(child.name);
      const after = this.#decode(child);
      if (!after || after === before) continue;
      if (before?.instance) removed.push(before.instance);
      if (after.instance) added.push(after.instance);
    }
    if (added.length > 0 || removed.length > 0) this.#report(this.#deps.table.patch(this.service, added, removed));
  }

  /** The child's decoded form (the previous one when the znode and version are the same). */
  #decode(child: ChildNode): DecodedChild | undefined {
    if (!child.data || !child.stat) return undefined;
    const before = this.#decoded.get(child.name);
    if (before && before.czxid === child.stat.czxid && before.version === child.stat.version) return before;
    const decoded = this.#deps.decoder.decode(this.service, child);
    this.#decoded.set(child.name, decoded);
    return decoded;
  }

  #report(outcome: ReplaceOutcome): void {
    if (outcome === 'kept_on_empty') {
      this.#deps.logger.warn({ service: this.service }, 'ZooKeeper lists no instances; keeping the last known set (--keep-last-on-empty)');
    }
  }
}
