import { weightedIndex, type Balancer, type RandomSource } from './balancer.js';

/**
 * Power of two choices: two distinct candidates drawn (by weight), the one with fewer requests
 * in flight per unit of weight wins; ties go to the first draw.
 */
export function createP2cBalancer(random: RandomSource = Math.random): Balancer {
  return (candidates, ctx) => {
    if (candidates.length === 1) return candidates[0];
    const i = weightedIndex(candidates, random);
    let j = weightedIndex(candidates, random);
    if (j === i) j = (i + 1 + Math.floor(random() * (candidates.length - 1))) % candidates.length;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return ctx.inFlight(b) / b.weight < ctx.inFlight(a) / a.weight ? b : a;
  };
}
