// A proxy whose process is paused (a stopped VM or process, simulated by blocking this
// test's own event loop, so it has a file and a process to itself): what waited meanwhile is
// served on live connections.
import test from 'ava';
import { createConnection } from 'node:net';
import { register, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

const suite = zookeeperSuite(test);

test('a pause longer than --pool-idle-timeout (the timers run before the waiting requests are read): a POST that waited gets a live connection', async (t) => {
  const upstream = await Upstream.start('a');
  suite.defer(() => upstream.close());
  const base = uniquePath('providers');
  await register(suite.zk, base, 'svc1', 'a', upstream.address);
  const proxy = await startProxy(suite.server.connectString, base, { retries: '0', 'pool-idle-timeout': '200ms', 'http-engine': 'zkroute' });
  suite.defer(() => proxy.close());
  t.is((await proxy.request('/svc/svc1/first', { method: 'POST', body: 'x' })).status, 200, 'a connection pooled');
  await waitFor('the connection idle in the pool', () => upstream.count('/first') === 1);
  // A request written to the proxy's port, then this whole process blocked past the idle
  // timeout (a stopped VM or process): when it runs again the expired idle timer fires before
  // the request is read.
  const port = Number(new URL(proxy.origin).port);
  const answer = new Promise<string>((resolve, reject) => {
    const socket = createConnection(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (/\r\n\r\n/.test(text)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
    socket.write('POST /svc/svc1/after HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\ny', () => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    });
  });
  t.regex(await answer, /^HTTP\/1\.1 200 /, 'answered by the instance, on a new connection');
  t.is(upstream.count('/after'), 1);
});
