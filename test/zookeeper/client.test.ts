import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connectZk, type WatchEvent, type ZkClient } from '../../src/zookeeper/client.js';
import { ZkError } from '../../src/zookeeper/errors.js';
import { freePorts, ZooKeeperEnsemble, ZooKeeperServer } from '../helpers/zookeeper-server.js';
import { uniquePath } from '../helpers/zk.js';
import { nextEvent, waitFor } from '../helpers/wait.js';
import { socketFds } from '../helpers/processes.js';

let server: ZooKeeperServer;
const clients: ZkClient[] = [];

async function connect(options: { sessionTimeoutMs?: number } = {}): Promise<ZkClient> {
  const client = await connectZk({ connectString: server.connectString, sessionTimeoutMs: options.sessionTimeoutMs ?? 4000 });
  clients.push(client);
  return client;
}

test.before(async () => {
  server = await ZooKeeperServer.start();
});

test.after.always(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.close();
});

test('create, read, set and delete a znode', async (t) => {
  const zk = await connect();
  const base = uniquePath();
  await zk.mkdirp(`${base}/a/b`);
  const created = await zk.create(`${base}/a/b/node`, '{"host":"127.0.0.1","port":8080}');
  t.is(created, `${base}/a/b/node`);
  const { data, stat } = await zk.getData(created);
  t.is(data.toString('utf8'), '{"host":"127.0.0.1","port":8080}');
  t.is(stat.version, 0);
  t.is(stat.ephemeralOwner, '0');
  const updated = await zk.setData(created, 'x', 0);
  t.is(updated.version, 1);
  await t.throwsAsync(zk.setData(created, 'y', 0), { instanceOf: ZkError, code: 'BAD_VERSION' });
  await zk.delete(created);
  t.is(await zk.exists(created), null);
  await t.throwsAsync(zk.getData(created), { instanceOf: ZkError, code: 'NO_NODE' });
  await t.throwsAsync(zk.create(`${base}/a`, ''), { code: 'NODE_EXISTS' });
});

test('sequential ephemeral nodes get a 10-digit suffix and this session as owner', async (t) => {
  const zk = await connect();
  const base = uniquePath();
  await zk.mkdirp(base);
  const first = await zk.create(`${base}/svc`, '127.0.0.1:1', { ephemeral: true, sequential: true });
  const second = await zk.create(`${base}/svc`, '127.0.0.1:2', { ephemeral: true, sequential: true });
  t.regex(first, /\/svc\d{10}$/);
  t.not(first, second);
  const stat = await zk.exists(first);
  t.is(stat?.ephemeralOwner, zk.sessionId);
});

test('a children watch fires once on create and, re-armed, on delete', async (t) => {
  const writer = await connect();
  const watcher = await connect();
  const base = uniquePath();
  await writer.mkdirp(base);

  const events: WatchEvent[] = [];
  let onCreate!: Promise<WatchEvent>;
  const armed = new Promise<string[]>((resolveList) => {
    onCreate = new Promise<WatchEvent>((resolve) => {
      void watcher.getChildren(base, (e) => {
        events.push(e);
        resolve(e);
      }).then(resolveList);
    });
  });
  t.deepEqual(await armed, []);
  await writer.create(`${base}/one`, 'x', { ephemeral: true });
  t.deepEqual(await onCreate, { type: 'child', path: base });

  let onDelete!: Promise<WatchEvent>;
  const rearmed = new Promise<string[]>((resolveList) => {
    onDelete = new Promise<WatchEvent>((resolve) => void watcher.getChildren(base, resolve).then(resolveList));
  });
  t.deepEqual(await rearmed, ['one']);
  await writer.delete(`${base}/one`);
  t.deepEqual(await onDelete, { type: 'child', path: base });
  t.is(events.length, 1, 'a one-shot watch fires once');
});

test('a data watch fires on change', async (t) => {
  const zk = await connect();
  const node = uniquePath();
  await zk.create(node, 'a');
  let fired!: Promise<WatchEvent>;
  await new Promise<unknown>((armed) => {
    fired = new Promise<WatchEvent>((resolve) => void zk.getData(node, resolve).then(armed));
  });
  await zk.setData(node, 'b');
  t.deepEqual(await fired, { type: 'changed', path: node });
});

test('an unreachable port fails within the connect deadline with a clear message', async (t) => {
  const [port] = await freePorts(1);
  const started = Date.now();
  const err = await t.throwsAsync(connectZk({ connectString: `127.0.0.1:${port}`, connectTimeoutMs: 700 }), { instanceOf: ZkError, code: 'CONNECT_TIMEOUT' });
  const waited = Date.now() - started;
  t.true(waited >= 650 && waited < 3000, `waited ${waited} ms`);
  t.true(err!.message.includes(`127.0.0.1:${port}`), err!.message);
  t.true(err!.message.includes('700 ms'), err!.message);
});

test('a malformed connect string is rejected at once, naming the problem', async (t) => {
  for (const [input, fragment] of [
    ['', 'empty'],
    ['localhost', 'no port'],
    ['127.0.0.1:0', 'port "0"'],
    ['127.0.0.1:99999', 'port "99999"'],
    ['127.0.0.1:2181,', 'empty server'],
    ['127.0.0.1:2181/chroot/', 'must not end with "/"'],
    ['127.0.0.1:2181/a//b', 'empty segment'],
    ['127.0.0.1:2181/a/../b', '".." segment'],
    ['bad_host!:2181', 'not a host name'],
    ['127.0.0.1:2181 ', 'whitespace'],
  ] as const) {
    const started = Date.now();
    const err = await t.throwsAsync(connectZk({ connectString: input }), { instanceOf: ZkError, code: 'BAD_CONNECT_STRING' });
    t.true(err!.message.includes(fragment), `${JSON.stringify(input)}: ${err!.message}`);
    t.true(Date.now() - started < 100);
  }
});

test('a chroot that does not exist is reported; an existing one scopes every path', async (t) => {
  const zk = await connect();
  const root = uniquePath('chroot');
  await t.throwsAsync(connectZk({ connectString: `${server.connectString}${root}`, connectTimeoutMs: 3000 }), { code: 'CHROOT_MISSING' });
  await zk.mkdirp(root);
  const scoped = await connectZk({ connectString: `${server.connectString}${root}` });
  clients.push(scoped);
  await scoped.create('/inside', 'x');
  t.truthy(await zk.exists(`${root}/inside`));
});

test('bad znode paths are rejected before they reach the server', async (t) => {
  const zk = await connect();
  for (const bad of ['relative', '/trailing/', '/a/../b', '/nul\u0000byte', '/a//b']) {
    await t.throwsAsync(zk.getData(bad), { instanceOf: ZkError, code: 'BAD_PATH' });
  }
});

test('closing releases the session: its ephemerals disappear for another client', async (t) => {
  const owner = await connect();
  const observer = await connect();
  const node = uniquePath();
  await owner.create(node, 'x', { ephemeral: true });
  let gone!: Promise<WatchEvent>;
  const armed = new Promise<unknown>((armedWith) => {
    gone = new Promise<WatchEvent>((resolve) => void observer.exists(node, resolve).then(armedWith));
  });
  t.truthy(await armed);
  await owner.close();
  t.is(owner.state, 'closed');
  t.deepEqual(await gone, { type: 'deleted', path: node });
  await t.throwsAsync(owner.getData('/'), { code: 'CLOSED' });
});

test('on a three-server ensemble, killing the connected member keeps the same session', async (t) => {
  const ensemble = await ZooKeeperEnsemble.start(3);
  try {
    const zk = await connectZk({ connectString: ensemble.connectString, sessionTimeoutMs: 4000 });
    try {
      const node = uniquePath();
      await zk.create(node, 'x', { ephemeral: true });
      const sessionId = zk.sessionId;
      const member = await waitFor('the member serving the session', () => ensemble.memberServing(sessionId));
      const disconnected = nextEvent(zk, 'disconnected', 5000);
      await member.kill();
      await disconnected;
      await nextEvent(zk, 'connected', 8000);
      t.is(zk.sessionId, sessionId);
      const stat = await zk.exists(node);
      t.is(stat?.ephemeralOwner, sessionId, 'the ephemeral node survived on the same session');
      const other = await waitFor('the new serving member', () => ensemble.memberServing(sessionId));
      t.not(other, member);
    } finally {
      await zk.close();
    }
  } finally {
    await ensemble.close();
  }
});

test('a child process spawned while a session is open does not inherit the session socket (patches/zookeeper: close-on-exec)', async (t) => {
  const client = await connect();
  const child = spawn('sleep', ['10'], { stdio: 'ignore' });
  try {
    await waitFor('the child running', () => existsSync(`/proc/${child.pid}/fd`));
    t.true(socketFds(process.pid).length > 0, 'this process has sockets (the session among them)');
    t.deepEqual(socketFds(child.pid!), [], 'the child holds none of them');
  } finally {
    child.kill('SIGKILL');
    await client.close();
  }
});
