import type { Instance } from '../discovery/provider-table.js';

/** What a pick may consult besides the candidates. */
export interface PickContext {
  readonly service: string;
  /** Requests in flight to an instance now (for least-loaded picks). */
  inFlight(instance: Instance): number;
}

/** Chooses one of `candidates` (never empty when called), or undefined. */
export type Balancer = (candidates: readonly Instance[], ctx: PickContext) => Instance | undefined;

/** A source of uniform numbers in [0, 1); injected so tests can fix it. */
export type RandomSource = () => number;

export const BALANCERS = ['random', 'round-robin', 'p2c'] as const;
export type BalancerName = (typeof BALANCERS)[number];

/** Picks by weight: each candidate's chance is its weight over the total. */
export function weightedIndex(candidates: readonly Instance[], random: RandomSource): number {
  let total = 0;
  let uniform = true;
  const first = candidates[0]!.weight;
  for (const c of candidates) {
    total += c.weight;
    if (c.weight !== first) uniform = false;
  }
  if (uniform) return Math.floor(random() * candidates.length);
  let point = random() * total;
  for (let i = 0; i < candidates.length; i++) {
    point -= candidates[i]!.weight;
    if (point < 0) return i;
  }
  return candidates.length - 1;
}
