import { weightedIndex, type Balancer, type RandomSource } from './balancer.js';

/** Uniform (or weighted) random choice: what the kazoo pattern does by hand, made healthy-aware. */
export function createRandomBalancer(random: RandomSource = Math.random): Balancer {
  return (candidates) => candidates[weightedIndex(candidates, random)];
}
