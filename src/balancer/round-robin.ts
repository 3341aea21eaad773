import type { Balancer } from './balancer.js';

interface ServiceState {
  /** The candidate set the weights below belong to (the same array while nothing changes). */
  candidates: readonly unknown[];
  key: string;
  current: Map<string, number>;
}

/**
 * Smooth weighted round-robin (nginx's): with equal weights a plain rotation; with weights
 * 5:1:1 the order is a a b a c a a, not five in a row. State is per service and resets when
 * the candidate set changes.
 */
export function createRoundRobinBalancer(): Balancer {
  const states = new Map<string, ServiceState>();
  return (candidates, ctx) => {
    let state = states.get(ctx.service);
    if (state?.candidates !== candidates) {
      let key = '';
      for (const c of candidates) key += `${c.uid}|`;
      if (state?.key === key) state.candidates = candidates;
      else states.set(ctx.service, (state = { candidates, key, current: new Map() }));
    }
    let total = 0;
    let best: (typeof candidates)[number] | undefined;
    let bestWeight = -Infinity;
    for (const c of candidates) {
      const weight = (state.current.get(c.uid) ?? 0) + c.weight;
      state.current.set(c.uid, weight);
      total += c.weight;
      if (weight > bestWeight) {
        best = c;
        bestWeight = weight;
      }
    }
    if (best) state.current.set(best.uid, bestWeight - total);
    return best;
  };
}
