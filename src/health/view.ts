// What the admin port shows of health, gathered in one process or from every cluster worker.
import type { Instance } from '../discovery/provider-table.js';
import type { InstanceHealth } from './outlier-detector.js';

/** What health says of one instance, with the tries in flight to it. */
export interface InstanceHealthView extends InstanceHealth {
  /** HTTP requests and TCP connections in flight (what p2c compares). */
  readonly inFlight: number;
  /** Of those, TCP connections open now. */
  readonly tcpConnections: number;
  /** Upstream connections open for Thrift calls (idle or carrying one). */
  readonly thriftConnections: number;
  /** Cluster mode: how many workers have it ejected (one health view: all of them, soon after one). */
  readonly workersEjecting?: number;
}

/** Health of every instance at one moment (gathered from every worker in cluster mode). */
export type HealthView = (instance: Instance) => InstanceHealthView;

/** Merges several workers' views of one instance: ejected if any worker ejected it. */
export function mergeHealth(views: readonly InstanceHealthView[]): InstanceHealthView {
  const latest = views.map((v) => v.lastFailure).filter((f) => f !== undefined).sort((a, b) => b.at - a.at)[0];
  const until = views.map((v) => v.ejectedUntil).filter((u) => u !== undefined);
  return {
    healthy: views.every((v) => v.healthy),
    ejectedUntil: until.length > 0 ? Math.max(...until) : undefined,
    ejectionReason: views.find((v) => !v.healthy)?.ejectionReason,
    ejections: views.reduce((n, v) => n + v.ejections, 0),
    consecutiveFailures: Math.max(...views.map((v) => v.consecutiveFailures)),
    lastFailure: latest,
    inFlight: views.reduce((n, v) => n + v.inFlight, 0),
    tcpConnections: views.reduce((n, v) => n + v.tcpConnections, 0),
    thriftConnections: views.reduce((n, v) => n + v.thriftConnections, 0),
    workersEjecting: views.filter((v) => !v.healthy).length,
  };
}

/** The view of an instance nobody has tried or judged. */
export const IDLE_HEALTH: InstanceHealthView = { healthy: true, ejectedUntil: undefined, ejectionReason: undefined, ejections: 0, consecutiveFailures: 0, lastFailure: undefined, inFlight: 0, tcpConnections: 0, thriftConnections: 0 };

/** Anything worth sending to the primary: state beyond "healthy, idle". */
export function isNotable(h: InstanceHealthView): boolean {
  return !h.healthy || h.inFlight > 0 || h.thriftConnections > 0 || h.ejections > 0 || h.consecutiveFailures > 0 || h.lastFailure !== undefined;
}
