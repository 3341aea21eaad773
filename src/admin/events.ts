// Recent events for the dashboard: instances joining and leaving, ejections and re-admissions,
// the ZooKeeper session's troubles. A bounded ring, newest last; nothing here is on a request path.
import type { EventEmitter } from 'node:events';
import type { Instance, SetDelta } from '../discovery/provider-table.js';

export type EventKind = 'joined' | 'left' | 'ejected' | 'readmitted' | 'panic' | 'zookeeper_connected' | 'zookeeper_disconnected' | 'zookeeper_expired';

export interface ProxyEvent {
  /** ms since the epoch. */
  readonly at: number;
  readonly kind: EventKind;
  readonly service?: string;
  /** host:port of the instances concerned (at most 5 listed; `count` says how many). */
  readonly instances?: readonly string[];
  readonly count?: number;
  /** Why (an ejection's reason), or how long (`untilMs` of an ejection). */
  readonly reason?: string;
  readonly untilMs?: number;
}

const LISTED = 5;

export class EventLog {
  readonly #capacity: number;
  readonly #now: () => number;
  #events: ProxyEvent[] = [];

  constructor(capacity = 100, now: () => number = Date.now) {
    this.#capacity = capacity;
    this.#now = now;
  }

  add(event: Omit<ProxyEvent, 'at'> & { at?: number }): void {
    this.#events.push({ ...event, at: event.at ?? this.#now() });
    if (this.#events.length > this.#capacity) this.#events = this.#events.slice(-this.#capacity);
  }

  /** One `joined` and one `left` event per change of a service's set (a new version of a znode is neither). */
  addDelta(service: string, delta: SetDelta): void {
    const added = new Set(delta.added.map((i) => i.uid));
    const removed = new Set(delta.removed.map((i) => i.uid));
    const joined = delta.added.filter((i) => !removed.has(i.uid)).map((i) => i.address);
    const left = delta.removed.filter((i) => !added.has(i.uid)).map((i) => i.address);
    if (joined.length > 0) this.add({ kind: 'joined', service, instances: joined.slice(0, LISTED), count: joined.length });
    if (left.length > 0) this.add({ kind: 'left', service, instances: left.slice(0, LISTED), count: left.length });
  }

  /** Newest last. */
  recent(): readonly ProxyEvent[] {
    return this.#events;
  }
}

/** Adds health's ejections, re-admissions and panics (an OutlierDetector's events) to `events`. */
export function followHealth(events: EventLog, health: EventEmitter): void {
  health.on('ejected', (instance: Instance, reason: string, durationMs: number) => events.add({ kind: 'ejected', service: instance.service, instances: [instance.address], reason, untilMs: Date.now() + durationMs }));
  health.on('readmitted', (instance: Instance) => events.add({ kind: 'readmitted', service: instance.service, instances: [instance.address] }));
  health.on('panic', (service: string) => events.add({ kind: 'panic', service }));
}
