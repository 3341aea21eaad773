// The messages between the cluster primary (ZooKeeper, admin) and its workers (the proxy), over
// node:cluster's IPC channel. Every message carries `zkroute` (its type), so other users of the
// channel are left alone.
import type { Registry } from 'prom-client';
import type { StatsSnapshot } from '../admin/stats.js';
import type { ProxyConfig } from '../config/proxy.js';
import type { Instance } from '../discovery/provider-table.js';
import type { Resolution } from '../discovery/source.js';
import type { InstanceHealthView } from '../health/view.js';
import type { PlaneAddresses } from '../plane.js';

/** A registry's metrics as JSON (prom-client's aggregation input). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Primary -> worker. */
export type ToWorker =
  /** Every service's set: the answer to `hello`, before any `change`. */
  | { readonly zkroute: 'snapshot'; readonly services: readonly (readonly [string, readonly Instance[]])[] }
  /** The service names ZooKeeper lists, once read and whenever they change. */
  | { readonly zkroute: 'known'; readonly names: readonly string[] }
  /** One service's served set changed: instances that joined, uids that left. */
  | { readonly zkroute: 'change'; readonly service: string; readonly added: readonly Instance[]; readonly removed: readonly string[] }
  /** A service left ZooKeeper (after its last `change`): forget it, its series with it. */
  | { readonly zkroute: 'removed'; readonly service: string }
  | { readonly zkroute: 'resolved'; readonly id: number; readonly kind: Resolution['kind'] }
  | { readonly zkroute: 'health?'; readonly id: number }
  | { readonly zkroute: 'metrics?'; readonly id: number }
  | { readonly zkroute: 'stats?'; readonly id: number }
  | { readonly zkroute: 'drain'; readonly timeoutMs: number }
  /** A reload (SIGHUP): run with this configuration from the next request on. */
  | { readonly zkroute: 'reconfigure'; readonly config: ProxyConfig }
  /** SIGUSR1 reached the primary: reopen the access log file. */
  | { readonly zkroute: 'reopen-access-log' }
  /** Another worker ejected this instance until `untilMs` (one health view across workers). */
  | { readonly zkroute: 'eject'; readonly service: string; readonly uid: string; readonly reason: string; readonly untilMs: number };

/** Worker -> primary. */
export type ToPrimary =
  /** The worker listens for messages: send the snapshot. */
  | { readonly zkroute: 'hello' }
  /** The worker's listeners are bound (the same addresses in every worker: the ports are shared). */
  | { readonly zkroute: 'listening'; readonly addresses: PlaneAddresses }
  /** The worker could not start (e.g. the port is taken): the primary stops. */
  | { readonly zkroute: 'failed'; readonly message: string }
  | { readonly zkroute: 'resolve'; readonly id: number; readonly service: string }
  | { readonly zkroute: 'health'; readonly id: number; readonly entries: readonly (readonly [string, InstanceHealthView])[] }
  | { readonly zkroute: 'metrics'; readonly id: number; readonly metrics: MetricsJson }
  /** The worker's per-second figures, for the dashboard (the primary adds them up). */
  | { readonly zkroute: 'stats'; readonly id: number; readonly stats: StatsSnapshot }
  /** An ejection this worker decided ended, or every instance of a service is ejected here (the dashboard's events). */
  | { readonly zkroute: 'readmitted'; readonly service: string; readonly address: string }
  | { readonly zkroute: 'panic'; readonly service: string }
  /** This worker ejected an instance: the primary passes it to every other worker. */
  | { readonly zkroute: 'ejected'; readonly service: string; readonly uid: string; readonly address: string; readonly reason: string; readonly untilMs: number };

/** A message of ours (not one of another user of the IPC channel)? */
export function isMessage<T extends { zkroute: string }>(value: unknown): value is T {
  return typeof value === 'object' && value !== null && typeof (value as { zkroute?: unknown }).zkroute === 'string';
}

/** The side of an IPC channel a part needs: send, and hear messages. */
export interface Channel<In, Out> {
  send(message: Out): void;
  onMessage(listener: (message: In) => void): void;
}
