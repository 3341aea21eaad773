import { networkInterfaces } from 'node:os';

/**
 * The address a caller on another host would use for this machine: the first non-internal
 * IPv4 address (then IPv6), else loopback when the machine has no other interface.
 */
export function defaultHost(interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string {
  const all = Object.values(interfaces).flatMap((list) => list ?? []);
  const external = all.filter((a) => !a.internal);
  const v4 = external.find((a) => a.family === 'IPv4');
  if (v4) return v4.address;
  const v6 = external.find((a) => a.family === 'IPv6' && !a.address.startsWith('fe80:'));
  if (v6) return v6.address;
  return '127.0.0.1';
}
