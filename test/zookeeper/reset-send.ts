// A ZooKeeper session in a process of its own, for reset-send.test.ts. The C client's async
// calls send at once, and when that send fails (a connection the server reset) the call closes
// the socket itself, behind the poll handle that watches it. This process makes that happen
// on purpose, round after round: it reaches ZooKeeper through a relay of its own, resets the
// relay's side of the connection and, before the event loop can see the reset, asks for a
// znode. Then it opens sockets that take the freed descriptor numbers and, once the session has
// reconnected, round-trips data on each of them (large writes change their epoll interest).
// Prints one JSON line per round and a summary; exits 0 when every socket worked.
import net from 'node:net';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { silentLogger } from '../../src/log.js';
import { ZkSession } from '../../src/zookeeper/session.js';
import { socketFds } from '../helpers/processes.js';

const [zkPort, roundsText] = process.argv.slice(2) as [string, string];
const rounds = Number(roundsText);
const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

// The relay: each connection the C client opens is piped to the ZooKeeper server.
const relayed: net.Socket[] = [];
const relay = net.createServer((inbound) => {
  const outbound = net.connect(Number(zkPort), '127.0.0.1');
  inbound.pipe(outbound).pipe(inbound);
  const end = () => { inbound.destroy(); outbound.destroy(); };
  inbound.on('error', end).on('close', end);
  outbound.on('error', end).on('close', end);
  relayed.push(inbound);
});
relay.listen(0, '127.0.0.1');
await once(relay, 'listening');
const relayPort = (relay.address() as net.AddressInfo).port;

const echo = net.createServer((socket) => socket.on('error', () => socket.destroy()).pipe(socket));
echo.listen(0, '127.0.0.1');
await once(echo, 'listening');
const echoPort = (echo.address() as net.AddressInfo).port;

const session = new ZkSession({ connectString: `127.0.0.1:${relayPort}`, sessionTimeoutMs: 6000 }, { logger: silentLogger() });
const client = await session.start();
const sessionId = client.sessionId;

/** Writes `bytes` and reads them back, bounded by `ms`. */
const roundTrip = (socket: net.Socket, bytes: number, ms: number) => new Promise<boolean>((resolve) => {
  let got = 0;
  const timer = setTimeout(() => done(false), ms);
  const onData = (chunk: Buffer) => {
    got += chunk.length;
    if (got >= bytes) done(true);
  };
  const done = (ok: boolean) => {
    clearTimeout(timer);
    socket.off('data', onData);
    resolve(ok);
  };
  socket.on('data', onData);
  socket.write(Buffer.alloc(bytes, 0x61));
});

let broken = 0;
let reused = 0;
for (let round = 1; round <= rounds; round++) {
  const deadline = Date.now() + 15_000;
  while (!(session.client?.state === 'connected' && relayed.some((s) => !s.destroyed))) {
    if (Date.now() > deadline) throw new Error(`round ${round}: the session did not reconnect`);
    await new Promise((r) => setTimeout(r, 10));
  }
  // Requests in flight on the connection when it goes (sent, not yet answered).
  const inFlight = Array.from({ length: 3 }, () => client.exists('/').then(() => 'ok', (err: { code?: string }) => err.code ?? 'error'));
  // Reset the connection (an RST on loopback arrives before resetAndDestroy returns; the short
  // block makes sure) and send on it before the event loop polls: the send fails and the C
  // client closes its socket inside this call.
  for (const s of relayed.splice(0)) s.resetAndDestroy();
  block(5);
  const before = socketFds(process.pid);
  const request = client.exists('/').catch(() => undefined);
  const after = new Set(socketFds(process.pid));
  const zkFd = before.find((fd) => !after.has(fd));
  // Sockets, one of which takes the freed number (the kernel hands out the lowest free one),
  // all opened before the C client is called again.
  const connect = () => new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect(echoPort, '127.0.0.1', () => resolve(socket.setTimeout(0))).on('error', reject);
    socket.setTimeout(5000, () => reject(new Error(`round ${round}: a connect to the echo server never completed`)));
  });
  const fdOf = (socket: net.Socket) => (socket as unknown as { _handle: { fd: number } })._handle.fd;
  const inUse = new Set(readdirSync('/proc/self/fd').map(Number));
  const freeBelow = Array.from({ length: zkFd ?? 0 }, (_, fd) => fd).filter((fd) => !inUse.has(fd)).length;
  const sockets = await Promise.all(Array.from({ length: freeBelow + 4 }, connect));
  const taken = sockets.some((s) => fdOf(s) === zkFd);
  if (taken) reused++;
  await request;
  // The session reconnects on the binding's next call of the C client; then every socket,
  // including the one with the C client's old number, must still be heard.
  while (!(relayed.some((r) => !r.destroyed) && (await client.exists('/').then(() => true, () => false)))) {
    if (Date.now() > deadline) throw new Error(`round ${round}: the session did not reconnect after the reset`);
    await new Promise((r) => setTimeout(r, 10));
  }
  // A large write on the socket with the old number changes its epoll interest (EPOLL_CTL_MOD).
  const results = await Promise.all(sockets.map(async (s) => (await roundTrip(s, 16, 2000)) && (fdOf(s) !== zkFd || (await roundTrip(s, 4 << 20, 5000)))));
  const failed = results.filter((ok) => !ok).length;
  broken += failed;
  const outcomes = await Promise.race([Promise.all(inFlight), new Promise((r) => setTimeout(() => r('unsettled'), 5000))]);
  say({ round, zkFd, taken, failed, outcomes });
  for (const s of sockets) s.destroy();
}
say({ summary: true, rounds, reused, broken, sameSession: session.client?.sessionId === sessionId });
await session.close();
relay.close();
echo.close();
process.exit(broken === 0 ? 0 : 1);
