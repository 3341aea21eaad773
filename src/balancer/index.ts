import type { Balancer, BalancerName, RandomSource } from './balancer.js';
import { createP2cBalancer } from './p2c.js';
import { createRandomBalancer } from './random.js';
import { createRoundRobinBalancer } from './round-robin.js';

export { BALANCERS, type Balancer, type BalancerName, type PickContext, type RandomSource } from './balancer.js';

/** The balancer named `name` (one of BALANCERS). */
export function createBalancer(name: BalancerName, random: RandomSource = Math.random): Balancer {
  switch (name) {
    case 'random':
      return createRandomBalancer(random);
    case 'round-robin':
      return createRoundRobinBalancer();
    case 'p2c':
      return createP2cBalancer(random);
  }
}
