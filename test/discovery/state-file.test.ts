// The saved table: every unusable file ignored with one line, writes atomic and spaced, and the
// real proxy serving from a good file while ZooKeeper is down, then following ZooKeeper.
import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { ProviderTable, type Instance } from '../../src/discovery/provider-table.js';
import { createStateFileWriter, loadState, STATE_FORMAT, STATE_VERSION } from '../../src/discovery/state-file.js';
import { freePorts, ZooKeeperServer } from '../../src/dev/zookeeper-server.js';
import { connectZk } from '../../src/zookeeper/client.js';
import { register, startProxy } from '../helpers/proxy.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write(chunk: Buffer, _e, cb) {
    for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  } });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const instance = (service: string, port: number, id = `i${port}`): Instance => Object.freeze({
  service, id, path: `/providers/${service}/${id}`, address: `127.0.0.1:${port}`, uid: `/providers/${service}/${id}#1`,
  host: '127.0.0.1', port, weight: 1, metadata: { zone: 'a' }, format: 'json', createdZxid: 1, version: 0,
} as Instance);

const dir = () => mkdtempSync(path.join(tmpdir(), 'zkroute-state-'));
const options = (file: string) => ({ path: file, basePath: '/providers', zookeeper: '127.0.0.1:2181', maxAgeMs: 60_000 });

test('written atomically, at most once a second, and read back whole', async (t) => {
  const d = dir();
  const file = path.join(d, 'state.json');
  const table = new ProviderTable();
  const writer = createStateFileWriter({ ...options(file), minIntervalMs: 300 }, { table, logger: capture().logger });
  table.replace('orders', [instance('orders', 1001), instance('orders', 1002)]);
  writer.changed();
  await waitFor('the first write', () => readdirSync(d).includes('state.json'));
  const first = JSON.parse(readFileSync(file, 'utf8')) as { writtenAt: number };
  table.replace('users', [instance('users', 2001)]);
  writer.changed();
  table.replace('users', [instance('users', 2001), instance('users', 2002)]);
  writer.changed();
  await waitFor('the second write', () => (JSON.parse(readFileSync(file, 'utf8')) as { writtenAt: number }).writtenAt !== first.writtenAt);
  const second = JSON.parse(readFileSync(file, 'utf8')) as { writtenAt: number; services: Record<string, unknown[]> };
  // (A timer may fire a millisecond before Date.now says the interval is over: libuv's clock.)
  t.true(second.writtenAt - first.writtenAt >= 295, `spaced by the interval: two changes, one write (${first.writtenAt} then ${second.writtenAt})`);
  t.deepEqual(Object.keys(second.services).sort(), ['orders', 'users']);
  t.deepEqual(readdirSync(d), ['state.json'], 'no temporary file left');
  await writer.close();
  const loaded = loadState(options(file), { logger: capture().logger })!;
  t.deepEqual(loaded.services.map(([s, list]) => [s, list.map((i) => i.address)]), [['orders', ['127.0.0.1:1001', '127.0.0.1:1002']], ['users', ['127.0.0.1:2001', '127.0.0.1:2002']]]);
  t.deepEqual(loaded.services[0]![1][0], instance('orders', 1001));
});

const good = (overrides: Record<string, unknown> = {}) => JSON.stringify({ format: STATE_FORMAT, version: STATE_VERSION, writtenAt: Date.now(), basePath: '/providers', zookeeper: 'x:1', services: { orders: [instance('orders', 1001)] }, ...overrides });
const bad: Record<string, [string | undefined, RegExp]> = {
  missing: [undefined, /no such file/],
  empty: ['', /empty/],
  truncated: [good().slice(0, 60), /not whole JSON/],
  corrupt: ['{"format": zkroute', /not whole JSON/],
  foreign: [JSON.stringify({ some: 'other file' }), /not a zkroute state file/],
  'another version': [good({ version: 99 }), /format version 99/],
  'another base path': [good({ basePath: '/services' }), /base path "\/services"/],
  'too old': [good({ writtenAt: Date.now() - 3_600_000 }), /over --state-max-age/],
  'a bad instance': [good({ services: { orders: [{ ...instance('orders', 1001), port: 70000 }] } }), /bad port/],
};
for (const [name, [content, why]] of Object.entries(bad)) {
  test(`ignored with one clear line: ${name}`, (t) => {
    const file = path.join(dir(), 'state.json');
    if (content !== undefined) writeFileSync(file, content);
    const { logger, lines } = capture();
    t.is(loadState(options(file), { logger }), undefined);
    t.is(lines.length, 1);
    t.is(lines[0]!['msg'], 'state file ignored');
    t.regex(String(lines[0]!['why']), why);
  });
}

test('ZooKeeper down at start with a good state file: requests succeed, /readyz says state-file; ZooKeeper back with a changed set: the proxy follows it', async (t) => {
  const [zkPort] = (await freePorts(1)) as [number];
  const old = await Upstream.start('old');
  const fresh = await Upstream.start('fresh');
  const file = path.join(dir(), 'state.json');
  writeFileSync(file, JSON.stringify({ format: STATE_FORMAT, version: STATE_VERSION, writtenAt: Date.now() - 5000, basePath: '/providers', zookeeper: `127.0.0.1:${zkPort}`, services: { api: [{ ...instance('api', old.port, 'old'), port: old.port, address: old.address }] } }));
  const proxy = await startProxy(`127.0.0.1:${zkPort}`, '/providers', { 'state-file': file, 'zookeeper-connect-timeout': '500ms', 'zookeeper-session-timeout': '4s' });
  let server: ZooKeeperServer | undefined;
  try {
    const admin = `http://127.0.0.1:${proxy.app.adminAddress().port}`;
    const ready = (await (await fetch(`${admin}/readyz`)).json()) as Record<string, unknown>;
    t.like(ready, { status: 'ready', source: 'state-file' });
    t.true((ready['stateAgeSeconds'] as number) >= 4);
    const res = await proxy.request('/svc/api/from-file');
    t.is(res.status, 200);
    t.is(old.count('/from-file'), 1, 'served by the instance the file names');
    t.regex(await (await fetch(`${admin}/metrics`)).text(), /zkroute_table_source\{source="state-file"\} 1/);

    // ZooKeeper comes up on that port with another set: the first read replaces the service whole.
    server = await ZooKeeperServer.start({ clientPort: zkPort });
    const zk = await connectZk({ connectString: server.connectString });
    await register(zk, '/providers', 'api', 'fresh', fresh.address);
    await waitFor('the table from ZooKeeper', () => proxy.app.discovery.instances('api')?.map((i) => i.id).join() === 'fresh', 30_000);
    t.is((await proxy.request('/svc/api/from-zookeeper')).status, 200);
    t.is(fresh.count('/from-zookeeper'), 1);
    t.like((await (await fetch(`${admin}/readyz`)).json()) as Record<string, unknown>, { status: 'ready', source: 'zookeeper' });
    // And the file now holds what ZooKeeper said.
    await waitFor('the file rewritten', () => readFileSync(file, 'utf8').includes(fresh.address), 5000);
    await zk.close();
  } finally {
    await proxy.close();
    await server?.close();
    await old.close();
    await fresh.close();
  }
});
