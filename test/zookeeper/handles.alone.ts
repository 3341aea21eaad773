// The native binding's descriptor defect, tested at its root (patches/zookeeper+7.3.0.patch):
// hundreds of ZooKeeper handles opened, closed and expired in one process, with plain sockets
// taking freed descriptor numbers at once, even from inside the native client's own expiry and
// disconnect callbacks. Every new handle must connect, and every plain socket too.
import test from 'ava';
import net, { type AddressInfo } from 'node:net';
import { connectZk, type ZkClient } from '../../src/zookeeper/client.js';
import { waitFor } from '../helpers/wait.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { expireSession } from '../helpers/zk.js';

const suite = zookeeperSuite(test);

test('200 handles opened, 100 expired and 100 closed in one process: every new one connects, and so does every socket given a freed number', async (t) => {
  const sink = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  suite.defer(() => new Promise<void>((resolve) => sink.close(() => resolve())));
  const port = (sink.address() as AddressInfo).port;
  const held: net.Socket[] = [];
  suite.defer(() => held.forEach((s) => s.destroy()));
  let opened = 0;
  let stuck = 0;
  let pending = 0;
  // A plain socket right away: it takes the lowest free descriptor number, often one just freed.
  const grab = () => {
    const socket = net.connect(port, '127.0.0.1');
    opened += 1;
    pending += 1;
    let done = false;
    const settled = (connected: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      pending -= 1;
      if (!connected) stuck += 1;
    };
    // Loopback connects in well under a millisecond: 3 s without an event is a lost registration.
    const timer = setTimeout(() => {
      settled(false);
      socket.destroy();
    }, 3000);
    socket.once('connect', () => {
      settled(true);
      // Connected sockets are kept a while (so numbers stay taken), then closed; never one still connecting.
      held.push(socket);
      if (held.length > 16) held.shift()!.destroy();
    });
    socket.once('error', () => settled(false));
    suite.defer(() => void socket.destroy());
  };
  const connectString = suite.server.connectString;
  let handles = 0;
  const open = async (): Promise<ZkClient> => {
    const client = await connectZk({ connectString, connectTimeoutMs: 5000, sessionTimeoutMs: 4000 });
    // Inside the native client's expiry and disconnect paths: numbers are taken there too.
    client.on('state', (state) => {
      if (state === 'expired' || state === 'disconnected') for (let i = 0; i < 3; i++) grab();
    });
    await client.getChildren('/');
    handles += 1;
    return client;
  };
  const started = Date.now();
  for (let round = 0; round < 20; round++) {
    const group = await Promise.all(Array.from({ length: 10 }, () => open()));
    await Promise.all(group.map(async (client, i) => {
      if (i % 2 === 0) await expireSession(connectString, client);
      await client.close();
      grab();
    }));
  }
  await waitFor('every plain socket to connect or time out', () => pending === 0, 5000);
  t.log(`${handles} handles connected (and ${handles / 2} twins to expire them), ${opened} plain sockets, ${stuck} never connected, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.is(handles, 200);
  t.is(stuck, 0, 'no socket lost its epoll registration to a stale poll handle');
});
