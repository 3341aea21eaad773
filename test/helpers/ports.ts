// Ports that refuse connections for the whole test: free now, and below the kernel's ephemeral
// range (ip_local_port_range, 32768-60999 by default), so no listen(0) of a test running
// beside this one (an upstream, a ZooKeeper harness) can be handed one of them, as it can a
// port freePorts() reserved and released.
import { readFileSync } from 'node:fs';
import net from 'node:net';

function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32768;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `count` distinct loopback ports nothing listens on, outside the ephemeral range. */
export async function refusingPorts(count: number): Promise<number[]> {
  const high = Math.min(ephemeralLow(), 32768) - 1;
  const low = 20_000;
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count && attempt < 1000; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (!ports.includes(port) && (await isFree(port))) ports.push(port);
  }
  if (ports.length < count) throw new Error(`no ${count} free ports below ${high + 1}`);
  return ports;
}
