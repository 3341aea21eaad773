// What the proxy side reads of a provider table, wherever the table is kept: Discovery itself
// (one process, or a cluster's primary) or a cluster worker's copy of the primary's table.
import { isValidServiceName } from '../znode/layout.js';
import type { Instance, ProviderTable, SetDelta } from './provider-table.js';

/** The answer to "where can I send a request for this service?" */
export type Resolution =
  | { readonly kind: 'instances'; readonly instances: readonly Instance[] }
  /** The service exists in ZooKeeper but has no usable instance right now. */
  | { readonly kind: 'empty' }
  /** ZooKeeper has no such service. */
  | { readonly kind: 'unknown' }
  /** It could not be told within the deadline. */
  | { readonly kind: 'timeout' };

/** The one `change` listener signature: a service's served set after a change, and the change. */
export type ChangeListener = (service: string, instances: readonly Instance[], delta: SetDelta) => void;

/** A provider table the proxy can read, ask about services not watched yet, and follow. */
export interface InstanceSource {
  /** What ZooKeeper says, service by service (health never edits it). */
  readonly table: ProviderTable;
  /** The current set, synchronously, when the service is already watched. */
  instances(service: string): readonly Instance[] | undefined;
  /** Watches the service on first use and waits (bounded) for its first snapshot. */
  resolve(service: string): Promise<Resolution>;
  /** Service names ZooKeeper lists now (plus any still held in the table), sorted. */
  knownServices(): string[];
  on(event: 'change', listener: ChangeListener): this;
}

const UNKNOWN: Resolution = { kind: 'unknown' };

/**
 * The answer a lookup gets without asking ZooKeeper, or undefined when it must ask: the set
 * when there is one; `unknown` for an invalid name, or for a name not in `listed` (the names
 * ZooKeeper lists, once read), so made-up names never cost a watch or a question.
 */
export function answerLocally(table: ProviderTable, service: string, listed: ReadonlySet<string> | undefined): Resolution | undefined {
  const entry = table.get(service);
  if (entry && entry.instances.length > 0) return { kind: 'instances', instances: entry.instances };
  if (!isValidServiceName(service)) return UNKNOWN;
  if (!entry && listed && !listed.has(service)) return UNKNOWN;
  return undefined;
}
