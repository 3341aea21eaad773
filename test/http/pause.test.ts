// A proxy whose process is paused (a stopped VM or process, simulated by blocking this
// test's own event loop, so it has a file and a process to itself; its tests run one at a
// time): what waited meanwhile is served on live connections, and an answer that arrived
// meanwhile is not a timeout.
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { metricValue, register, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

const suite = zookeeperSuite(test);

test.serial('a pause longer than --pool-idle-timeout (the timers run before the waiting requests are read): a POST that waited gets a live connection', async (t) => {
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

// An instance in a process of its own (this one is about to block) that says when a request
// arrived and answers it 100 ms later.
const UPSTREAM_PROCESS = fileURLToPath(new URL('../helpers/upstream-process.mjs', import.meta.url));

test.serial('a pause past the try timeout with the answer already in (a paused proxy): the answer is read before the limit applies; 200 and no ejection', async (t) => {
  const child = spawn(process.execPath, [UPSTREAM_PROCESS, 'late but in time', '--delay=100', '--announce'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  suite.defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  const port = Number(await waitFor('the instance port', () => lines[0], 10_000));
  const base = uniquePath('providers');
  await register(suite.zk, base, 'svc1', 'a', `127.0.0.1:${port}`);
  const proxy = await startProxy(suite.server.connectString, base, { retries: '0', 'try-timeout': '300ms', 'connect-timeout': '200ms', 'http-engine': 'zkroute' });
  suite.defer(() => proxy.close());
  const answer = proxy.request('/svc/svc1/paused', { method: 'POST', body: 'x' });
  // As soon as the instance has the request, this process stops for 800 ms: the answer comes
  // 100 ms in, the try timeout is due at 300 ms. Stopped after the poll phase (in the check
  // phase, as a busy process is when a SIGSTOP lands), the loop's next step is its timers: the
  // try timer fires before the answer is read.
  await waitFor('the instance to have the request', () => lines.includes('got /paused'), 10_000, 1);
  await new Promise((resolve) => setImmediate(resolve));
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 800);
  const { status, body } = await answer;
  t.is(status, 200, 'the answer that came in time, not 504');
  t.is(body, 'late but in time');
  t.is(await metricValue(proxy, 'zkroute_ejections_total', { service: 'svc1' }) ?? 0, 0, 'the instance is not ejected for the proxy\'s own pause');
});
