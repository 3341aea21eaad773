// What every protocol's listener shares: passive health, the service provider over one
// instance source, and health records and pools that follow the table.
import type { Logger } from 'pino';
import type { Instance } from '../discovery/provider-table.js';
import type { InstanceSource } from '../discovery/source.js';
import { createOutlierDetector, type OutlierDetector } from '../health/outlier-detector.js';
import type { AddressPolicy } from '../address-policy.js';
import { ServiceProvider } from './provider.js';
import { Settings, type TrafficOverride, type TrafficSettings } from './settings.js';

export interface UpstreamCoreOptions extends TrafficSettings {
  /** Per-service settings over the defaults. */
  readonly serviceSettings?: Readonly<Record<string, TrafficOverride>>;
  /** This proxy's zone ('' or absent: none), the metadata field naming an instance's, and the spill threshold. */
  readonly zone?: string;
  readonly zoneKey?: string;
  readonly zoneMinHealthyPercent?: number;
}

export interface UpstreamCoreDeps {
  readonly source: InstanceSource;
  readonly logger: Logger;
  readonly random?: () => number;
  /** The clock (ms) of retry budgets and slow start (tests inject one). */
  readonly now?: () => number;
  /** Checks host names after resolution, at connect (IP literals are checked by discovery). */
  readonly addressPolicy?: AddressPolicy;
}

export interface UpstreamCore {
  readonly health: OutlierDetector;
  readonly provider: ServiceProvider;
  /** The traffic settings in force (replace() on reload). */
  readonly settings: Settings;
  /** `release` is called with the addresses no service lists any more (close their pools). */
  onAddressesGone(release: (addresses: readonly string[]) => void): void;
  close(): void;
}

/**
 * Builds health and the provider, and makes them follow the table: an instance that left drops
 * its health record, and an address no service uses any more is handed to every `release`.
 * Work per change is proportional to the change, not to the service or the table.
 */
export function createUpstreamCore(options: UpstreamCoreOptions, deps: UpstreamCoreDeps): UpstreamCore {
  const { source } = deps;
  const settings = new Settings(options, options.serviceSettings ?? {}, deps.random);
  const settingsFor = (service: string) => settings.for(service);
  const health = createOutlierDetector(settingsFor, { logger: deps.logger, ...(deps.random ? { random: deps.random } : {}) });
  const policy = deps.addressPolicy;
  const zone = options.zone ? { name: options.zone, key: options.zoneKey ?? 'zone', minHealthyPercent: options.zoneMinHealthyPercent ?? 70 } : undefined;
  const provider = new ServiceProvider({
    source, health, settings: settingsFor,
    ...(zone ? { zone } : {}),
    ...(deps.random ? { random: deps.random } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(policy ? { lookupFor: (port: number) => policy.lookupFor(port) } : {}),
  });
  // Slow start: instances that join a service already served, and instances back from an ejection.
  const served = new Set<string>();
  health.on('released', (instance: Instance) => provider.slowStart.begin(instance.uid));
  const releasers: ((addresses: readonly string[]) => void)[] = [];
  const addressRefs = new Map<string, number>();
  source.on('change', (service, _instances, delta) => {
    for (const i of delta.added) addressRefs.set(i.address, (addressRefs.get(i.address) ?? 0) + 1);
    // A service's first set is where it starts, not a join: nothing ramps then.
    if (served.has(service)) {
      const replaced = new Set(delta.removed.map((i) => i.uid));
      for (const i of delta.added) if (!replaced.has(i.uid)) provider.slowStart.begin(i.uid);
    } else served.add(service);
    if (delta.removed.length === 0) return;
    const gone: string[] = [];
    for (const i of delta.removed) {
      const refs = (addressRefs.get(i.address) ?? 1) - 1;
      if (refs > 0) addressRefs.set(i.address, refs);
      else {
        addressRefs.delete(i.address);
        gone.push(i.address);
      }
    }
    if (gone.length > 0) for (const release of releasers) release(gone);
    // A new version of the same znode keeps its uid (and its health record).
    const kept = new Set(delta.added.map((i) => i.uid));
    const left = delta.removed.map((i) => i.uid).filter((uid) => !kept.has(uid));
    health.forget(left);
    provider.forget(left);
  });
  source.table.on('removed', (service: string) => {
    provider.forgetService(service);
    served.delete(service);
  });
  return {
    health,
    provider,
    settings,
    onAddressesGone: (release) => void releasers.push(release),
    close: () => health.close(),
  };
}
