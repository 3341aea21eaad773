import type { Balancer } from './balancer.js';

/**
 * Smooth weighted round-robin (nginx's): with equal weights a plain rotation; with weights
 * 5:1:1 the order is a a b a c a a, not five in a row. Each instance's running weight is kept
 * per service across picks over different candidate sets, so a retry that leaves some out (or
 * an ejection) does not restart the rotation: the next full pick goes on where it was.
 */
export function createRoundRobinBalancer(): Balancer {
  const states = new Map<string, Map<string, number>>();
  return (candidates, ctx) => {
    let current = states.get(ctx.service);
    if (!current) states.set(ctx.service, (current = new Map()));
    let total = 0;
    let best: (typeof candidates)[number] | undefined;
    let bestWeight = -Infinity;
    for (const c of candidates) {
      const weight = (current.get(c.uid) ?? 0) + c.weight;
      current.set(c.uid, weight);
      total += c.weight;
      if (weight > bestWeight) {
        best = c;
        bestWeight = weight;
      }
    }
    if (best) current.set(best.uid, bestWeight - total);
    // Instances that left the table for good: forget them once they outnumber the candidates.
    if (current.size > 2 * candidates.length + 16) {
      const present = new Set(candidates.map((c) => c.uid));
      for (const uid of current.keys()) if (!present.has(uid)) current.delete(uid);
    }
    return best;
  };
}
