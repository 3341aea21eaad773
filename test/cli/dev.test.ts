import test from 'ava';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { alive, spawnCli, stopAll } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

test.after.always(() => stopAll());

test('dev mode: local ZooKeeper, demo services and proxy; requests succeed; SIGINT leaves nothing behind', async (t) => {
  const run = spawnCli(['dev', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--tcp', '127.0.0.1:0']);
  try {
    await waitFor('dev mode to be running', () => run.output().includes('Ctrl-C stops everything'), 60_000, 100);
    const out = run.output();
    const proxy = /proxy (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    const admin = /admin (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    const pid = Number(/local, pid (\d+)/.exec(out)![1]);
    const dataDir = /data in (\S+)\)/.exec(out)![1]!;
    t.true(alive(pid));

    const seen = new Set<string>();
    for (let i = 0; i < 30 && seen.size < 2; i++) {
      const res = await fetch(`${proxy}/svc/hello/`);
      t.is(res.status, 200);
      seen.add(((await res.json()) as { instance: string }).instance);
    }
    t.deepEqual([...seen].sort(), ['hello-1', 'hello-2']);
    const echo = await fetch(`${proxy}/svc/echo/anything?x=1`, { method: 'POST', body: 'hi there' });
    t.like(await echo.json(), { service: 'echo', method: 'POST', path: '/anything?x=1', body: 'hi there' });
    t.is((await fetch(`${admin}/readyz`)).status, 200);

    // The TCP demo: a line echo behind the proxy's TCP listener, at the printed address.
    const [, tcpHost, tcpPort] = /tcp (127\.0\.0\.1):(\d+) -> line-echo/.exec(out)!;
    const line = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: tcpHost!, port: Number(tcpPort) }, () => socket.write('hi there\n'));
      socket.setEncoding('utf8');
      socket.once('data', (text: string) => {
        socket.destroy();
        resolve(text);
      });
      socket.once('error', reject);
    });
    t.is(line, 'line-echo-1: hi there\n');

    run.child.kill('SIGINT');
    t.is(await run.exited, 0, run.output());
    await waitFor('the local ZooKeeper to be gone', () => !alive(pid), 10_000);
    t.false(existsSync(dataDir), 'its temporary directory is removed');
  } finally {
    run.child.kill('SIGKILL');
  }
});
