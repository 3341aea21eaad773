// Zone preference (Envoy's zone-aware routing, simplified to one proxy's view): prefer healthy
// instances in this proxy's zone while the zone keeps enough of its instances healthy; below
// that, spill to the other zones in proportion to the shortfall; with none in the zone, all.
import type { Instance } from '../discovery/provider-table.js';

export interface ZoneOptions {
  /** This proxy's zone. */
  readonly name: string;
  /** The metadata field holding an instance's zone. */
  readonly key: string;
  /** Below this share (percent) of the zone's instances healthy, traffic spills elsewhere. */
  readonly minHealthyPercent: number;
}

/**
 * A metadata field of an instance as text: `key` in its metadata, else in a Curator `payload`,
 * else in a serverset `metadata` map (strings, numbers and booleans; anything else: undefined).
 */
export function metadataValue(instance: Instance, key: string): string | undefined {
  const m = instance.metadata;
  const nested = (outer: unknown) => (typeof outer === 'object' && outer !== null ? (outer as Record<string, unknown>)[key] : undefined);
  const value = m[key] ?? nested(m['payload']) ?? nested(m['metadata']);
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
}

interface Split {
  readonly local: readonly Instance[];
  readonly remote: readonly Instance[];
}

/**
 * Chooses the candidates of one pick by zone. Splits are cached per candidate array (the table
 * and health hand out the same arrays until something changes), so a pick costs two lookups.
 */
export class ZonePreference {
  readonly #options: ZoneOptions;
  readonly #random: () => number;
  readonly #splits = new WeakMap<readonly Instance[], Split>();
  readonly #zones = new WeakMap<Instance, string | undefined>();

  constructor(options: ZoneOptions, random: () => number = Math.random) {
    this.#options = options;
    this.#random = random;
  }

  /**
   * The candidates to balance over among `healthy` (of the service's `all`), and whether they
   * are the local zone's. None in the zone at all: every healthy instance, as remote.
   */
  choose(all: readonly Instance[], healthy: readonly Instance[]): { candidates: readonly Instance[]; local: boolean } {
    const everywhere = this.#split(all);
    if (everywhere.local.length === 0) return { candidates: healthy, local: false };
    const { local, remote } = healthy === all ? everywhere : this.#split(healthy);
    if (local.length === 0) return { candidates: remote, local: false };
    if (remote.length === 0) return { candidates: local, local: true };
    const healthyPercent = (100 * local.length) / everywhere.local.length;
    // At or above the threshold: all local. Below: local in proportion (Envoy's overprovisioning).
    const localShare = Math.min(1, healthyPercent / this.#options.minHealthyPercent);
    return localShare >= 1 || this.#random() < localShare ? { candidates: local, local: true } : { candidates: remote, local: false };
  }

  #split(instances: readonly Instance[]): Split {
    let split = this.#splits.get(instances);
    if (!split) {
      const local: Instance[] = [];
      const remote: Instance[] = [];
      for (const i of instances) (this.#zone(i) === this.#options.name ? local : remote).push(i);
      split = { local, remote };
      this.#splits.set(instances, split);
    }
    return split;
  }

  #zone(instance: Instance): string | undefined {
    if (this.#zones.has(instance)) return this.#zones.get(instance);
    const zone = metadataValue(instance, this.#options.key);
    this.#zones.set(instance, zone);
    return zone;
  }
}
