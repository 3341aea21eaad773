// GET /stats: the dashboard's one document, built from the table (what ZooKeeper says), health
// (ejections, in flight), the per-second figures and the recent events. Its shape is in the README.
import type { Instance } from '../discovery/provider-table.js';
import type { HealthView } from '../health/view.js';
import { metadataValue } from '../upstream/zones.js';
import type { ProxyEvent } from './events.js';
import { summarize, type SeriesSnapshot, type SeriesSummary, type StatsSnapshot } from './stats.js';

export interface StatsDocumentInput {
  readonly now: number;
  readonly workers: number;
  readonly basePath: string;
  /** The metadata field naming an instance's zone (--zone-key). */
  readonly zoneKey: string;
  readonly staleSeconds: number;
  readonly source: 'zookeeper' | 'state-file';
  readonly ready: boolean;
  readonly zookeeper: { readonly state: string; readonly sessionId: string | null; readonly reconnects: number; readonly expiries: number };
  readonly services: readonly string[];
  readonly entry: (service: string) => { readonly instances: readonly Instance[]; readonly updatedAt: number } | undefined;
  readonly health: HealthView;
  readonly snapshot: StatsSnapshot;
  readonly events: readonly ProxyEvent[];
}

type Summary = Omit<SeriesSummary, 'sparkRequests' | 'sparkErrors'> & { readonly spark: { readonly requests: number[]; readonly errors: number[] } };

function shaped(summary: SeriesSummary): Summary {
  const { sparkRequests, sparkErrors, ...figures } = summary;
  return { ...figures, spark: { requests: sparkRequests, errors: sparkErrors } };
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function statsDocument(input: StatsDocumentInput) {
  const { snapshot, health } = input;
  const byKey = new Map<string, SeriesSnapshot>();
  for (const s of snapshot.series) byKey.set(s.instance === undefined ? s.service : `${s.service}\u0000${s.instance}`, s);
  const figures = (key: string) => shaped(summarize(byKey.get(key)));

  const services = input.services.map((name) => {
    const entry = input.entry(name);
    if (!entry) return { name, watched: false, updatedAt: null, instanceCount: 0, healthyCount: 0, panic: false, ...figures(name), instances: [] };
    const views = entry.instances.map((i) => [i, health(i)] as const);
    const healthyCount = views.filter(([, h]) => h.healthy).length;
    // Every instance ejected: the balancer uses all of them anyway (panic mode).
    const panic = entry.instances.length > 0 && healthyCount === 0;
    return {
      name,
      watched: true,
      updatedAt: iso(entry.updatedAt),
      instanceCount: entry.instances.length,
      healthyCount,
      panic,
      ...figures(name),
      instances: views.map(([i, h]) => ({
        id: i.id,
        address: i.address,
        // The same field zone preference reads (--zone-key).
        zone: metadataValue(i, input.zoneKey) ?? null,
        metadata: i.metadata,
        state: h.healthy ? 'healthy' : panic ? 'panic' : 'ejected',
        ejectedUntil: iso(h.ejectedUntil),
        ejectionReason: h.ejectionReason ?? null,
        inFlight: h.inFlight,
        tcpConnections: h.tcpConnections,
        thriftConnections: h.thriftConnections,
        ...figures(`${name}\u0000${i.address}`),
      })),
    };
  });

  return {
    at: new Date(input.now).toISOString(),
    intervalSec: 1,
    windowSec: snapshot.windowSec,
    workers: input.workers,
    ready: input.ready,
    source: input.source,
    basePath: input.basePath,
    staleSeconds: input.staleSeconds,
    zookeeper: input.zookeeper,
    services,
    // Newest first.
    events: input.events.slice(-50).reverse().map(({ at, untilMs, ...event }) => ({ at: iso(at), ...event, ...(untilMs !== undefined ? { until: iso(untilMs) } : {}) })),
  };
}

export type StatsDocument = ReturnType<typeof statsDocument>;
