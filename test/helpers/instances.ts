import type { Instance } from '../../src/discovery/provider-table.js';

/** A table entry for pure-logic tests (balancers, health). */
export function fakeInstance(port: number, options: { weight?: number; service?: string; czxid?: number } = {}): Instance {
  const service = options.service ?? 'svc';
  const path = `/providers/${service}/i-${port}`;
  return {
    service,
    id: `i-${port}`,
    path,
    host: '127.0.0.1',
    port,
    address: `127.0.0.1:${port}`,
    weight: options.weight ?? 1,
    metadata: {},
    format: 'json',
    uid: `${path}#${options.czxid ?? port}`,
    createdZxid: options.czxid ?? port,
    version: 0,
  };
}

/** A seeded uniform source (mulberry32) so distribution tests are repeatable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
