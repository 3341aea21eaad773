import { EventEmitter } from 'node:events';
import { ProviderTable, type Instance, type SetDelta } from '../discovery/provider-table.js';
import { answerLocally, type InstanceSource, type Resolution } from '../discovery/source.js';
import type { Channel, ToPrimary, ToWorker } from './messages.js';

export interface WorkerSourceOptions {
  /** Longest wait for the primary's answer to a lookup (it waits for ZooKeeper itself). */
  readonly resolveTimeoutMs: number;
}

/**
 * A worker's copy of the primary's provider table, kept by the primary's `snapshot` and
 * `change` messages. Lookups of a service not in the copy ask the primary, which watches it on
 * first use; one question per service is in flight at a time. Names ZooKeeper does not list
 * (the primary sends the list) are answered `unknown` without asking.
 *
 * Events: `change` (service, instances, delta), as Discovery's.
 */
export class WorkerSource extends EventEmitter implements InstanceSource {
  // The primary sends served sets (one instance per address): kept as sent, nothing held back.
  readonly table = new ProviderTable({ keepLastOnEmpty: false });
  readonly #options: WorkerSourceOptions;
  readonly #channel: Channel<ToWorker, ToPrimary>;
  readonly #byUid = new Map<string, Instance>();
  readonly #pending = new Map<number, (kind: Resolution['kind']) => void>();
  readonly #asking = new Map<string, Promise<Resolution>>();
  /** The names ZooKeeper lists (from the primary), once it has read them. */
  #known: Set<string> | undefined;
  #nextId = 1;
  #snapshot = false;

  constructor(options: WorkerSourceOptions, channel: Channel<ToWorker, ToPrimary>) {
    super();
    this.#options = options;
    this.#channel = channel;
    this.table.on('change', (service: string, instances: readonly Instance[], delta: SetDelta) => this.emit('change', service, instances, delta));
  }

  /** True once the primary's snapshot is in. */
  get loaded(): boolean {
    return this.#snapshot;
  }

  /** Applies a table message from the primary; false for messages of another kind. */
  apply(message: ToWorker): boolean {
    switch (message.zkroute) {
      case 'snapshot':
        for (const [service, instances] of message.services) {
          const frozen = instances.map((i) => this.#remember(i));
          this.table.replace(service, frozen);
        }
        this.#snapshot = true;
        return true;
      case 'change': {
        const removed: Instance[] = [];
        for (const uid of message.removed) {
          const gone = this.#byUid.get(uid);
          if (!gone) continue;
          this.#byUid.delete(uid);
          removed.push(gone);
        }
        this.table.patch(message.service, message.added.map((i) => this.#remember(i)), removed);
        return true;
      }
      case 'removed':
        // Its last change already took every instance out (and forgot their uids).
        this.table.remove(message.service);
        return true;
      case 'known':
        this.#known = new Set(message.names);
        return true;
      case 'resolved':
        this.#pending.get(message.id)?.(message.kind);
        this.#pending.delete(message.id);
        return true;
      default:
        return false;
    }
  }

  instances(service: string): readonly Instance[] | undefined {
    return this.table.get(service)?.instances;
  }

  knownServices(): string[] {
    return [...new Set([...(this.#known ?? []), ...this.table.services()])].sort();
  }

  resolve(service: string): Promise<Resolution> {
    // Made-up names are answered here: they cost the primary nothing.
    const local = answerLocally(this.table, service, this.#known);
    if (local) return Promise.resolve(local);
    let asking = this.#asking.get(service);
    if (!asking) {
      asking = this.#ask(service).finally(() => this.#asking.delete(service));
      this.#asking.set(service, asking);
    }
    return asking;
  }

  async #ask(service: string): Promise<Resolution> {
    const id = this.#nextId++;
    let timer: NodeJS.Timeout | undefined;
    const kind = await new Promise<Resolution['kind']>((resolve) => {
      this.#pending.set(id, resolve);
      timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve('timeout');
      }, this.#options.resolveTimeoutMs);
      this.#channel.send({ zkroute: 'resolve', id, service });
    });
    clearTimeout(timer);
    if (kind !== 'instances') return { kind };
    // The primary sent the set before its answer (one channel, in order).
    const instances = this.table.get(service)?.instances;
    return instances && instances.length > 0 ? { kind: 'instances', instances } : { kind: 'empty' };
  }

  #remember(instance: Instance): Instance {
    const frozen = Object.freeze(instance);
    this.#byUid.set(frozen.uid, frozen);
    return frozen;
  }
}
