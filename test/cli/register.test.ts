import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli, spawnCli, stopAll } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { freePorts } from '../helpers/zookeeper-server.js';

const suite = zookeeperSuite(test);
test.after.always(() => stopAll());

/** Starts `zkroute register ...` from source; collects its output. */
function startRegister(args: string[]) {
  return spawnCli(['register', ...args], { ZKROUTE_LOG_LEVEL: 'warn' });
}

async function childrenOf(parent: string): Promise<string[]> {
  return (await suite.zk.exists(parent)) ? suite.zk.getChildren(parent) : [];
}

test('bad input: missing --service, invalid name, port out of range, bad metadata, unreachable ZooKeeper', async (t) => {
  const cases: [string[], number, RegExp][] = [
    [['--zookeeper', suite.server.connectString, '--port', '80'], 2, /--service is required \(or set ZKROUTE_SERVICE\)/],
    [['--zookeeper', suite.server.connectString, '--service', 'bad/name', '--port', '80'], 2, /--service "bad\/name": may hold only letters/],
    [['--zookeeper', suite.server.connectString, '--service', 'api', '--port', '70000'], 2, /--port "70000": expected a whole number from 1 to 65535/],
    [['--zookeeper', suite.server.connectString, '--service', 'api'], 2, /--port is required/],
    [['--zookeeper', suite.server.connectString, '--service', 'api', '--port', '80', '--metadata', 'novalue'], 2, /--metadata "novalue": expected KEY=VALUE/],
    [['--zookeeper', suite.server.connectString, '--service', 'api', '--port', '80', '--health-url', 'ftp://x'], 2, /--health-url "ftp:\/\/x": must be an http/],
    [['--zookeeper', suite.server.connectString, '--service', 'api', '--port', '80', '--exec'], 2, /--exec needs a command after --/],
  ];
  for (const [args, code, message] of cases) {
    const run = await runCli(['register', ...args]);
    t.is(run.code, code, args.join(' '));
    t.regex(run.stderr, message);
  }
  const [port] = await freePorts(1);
  const run = await runCli(['register', '--zookeeper', `127.0.0.1:${port}`, '--service', 'api', '--port', '80', '--zookeeper-connect-timeout', '500ms']);
  t.is(run.code, 1);
  t.regex(run.stderr, /could not connect to ZooKeeper at 127\.0\.0\.1:\d+ within 500 ms/);
});

test('registers at once, with metadata; SIGTERM deregisters and exits 0', async (t) => {
  const base = uniquePath('providers');
  const run = startRegister(['--zookeeper', suite.server.connectString, '--base-path', base, '--service', 'api', '--host', '127.0.0.1', '--port', '8080', '--metadata', 'zone=b', '--metadata', 'version=7']);
  const [id] = await waitFor('the node', async () => {
    const list = await childrenOf(`${base}/api`);
    return list.length === 1 ? list : undefined;
  }, 15_000);
  const { data } = await suite.zk.getData(`${base}/api/${id}`);
  t.deepEqual(JSON.parse(data.toString()), { zone: 'b', version: '7', host: '127.0.0.1', port: 8080 });
  run.child.kill('SIGTERM');
  t.is(await run.exited, 0, run.output());
  t.deepEqual(await childrenOf(`${base}/api`), []);
});

test('--health-url: registered after `rise` good checks, removed after `fall` bad ones, back after recovery', async (t) => {
  let healthy = true;
  const answers: { at: number; ok: boolean }[] = [];
  const health: Server = createServer((_req, res) => {
    answers.push({ at: Date.now(), ok: healthy });
    res.writeHead(healthy ? 200 : 503).end();
  });
  await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(health.address() as AddressInfo).port}/health`;
  const base = uniquePath('providers');
  const run = startRegister(['--zookeeper', suite.server.connectString, '--base-path', base, '--service', 'api', '--host', '127.0.0.1', '--port', '8080',
    '--health-url', url, '--health-interval', '100ms', '--rise', '2', '--fall', '3']);
  try {
    const present = () => childrenOf(`${base}/api`).then((l) => l.length === 1);
    const absent = () => childrenOf(`${base}/api`).then((l) => l.length === 0);
    await waitFor('registration after rise', present, 15_000, 10);
    t.true(answers.filter((a) => a.ok).length >= 2, 'not before 2 good checks');

    healthy = false;
    const turnedBad = answers.length;
    await waitFor('deregistration after fall', absent, 5000, 10);
    t.true(answers.slice(turnedBad).filter((a) => !a.ok).length >= 3, 'not before 3 bad checks');

    healthy = true;
    const turnedGood = answers.length;
    await waitFor('registration after recovery', present, 5000, 10);
    t.true(answers.slice(turnedGood).filter((a) => a.ok).length >= 2);
    run.child.kill('SIGTERM');
    t.is(await run.exited, 0, run.output());
  } finally {
    health.closeAllConnections();
    health.close();
  }
});

test('--exec: runs the child, registers it, and on SIGTERM deregisters before the child is stopped; exits with its status', async (t) => {
  const base = uniquePath('providers');
  const script = "process.on('SIGTERM', () => { console.log('child-sigterm ' + Date.now()); process.exit(3); }); console.log('child-started'); setInterval(() => {}, 1000);";
  const run = startRegister(['--zookeeper', suite.server.connectString, '--base-path', base, '--service', 'api', '--host', '127.0.0.1', '--port', '8080', '--stop-delay', '200ms', '--exec', '--', process.execPath, '-e', script]);
  await waitFor('child started', () => run.output().includes('child-started'), 15_000);
  const [id] = await waitFor('the node', async () => {
    const list = await childrenOf(`${base}/api`);
    return list.length === 1 ? list : undefined;
  }, 15_000);
  const deleted = new Promise<number>((resolve) => void suite.zk.exists(`${base}/api/${id}`, () => resolve(Date.now())));
  run.child.kill('SIGTERM');
  const code = await run.exited;
  t.is(code, 3, `exit status of the child (output: ${run.output()})`);
  const deletedAt = await deleted;
  const sigtermAt = Number(/child-sigterm (\d+)/.exec(run.output())?.[1]);
  t.true(deletedAt <= sigtermAt, `node deleted ${sigtermAt - deletedAt} ms before the child got SIGTERM`);
  t.log(`node deleted ${sigtermAt - deletedAt} ms before the child got SIGTERM (--stop-delay 200ms)`);
});

test('--exec: a child that exits by itself ends the registration with its status', async (t) => {
  const base = uniquePath('providers');
  const run = startRegister(['--zookeeper', suite.server.connectString, '--base-path', base, '--service', 'api', '--host', '127.0.0.1', '--port', '8080', '--exec', '--', process.execPath, '-e', 'setTimeout(() => process.exit(5), 3000)']);
  await waitFor('the node while the child runs', async () => (await childrenOf(`${base}/api`)).length === 1, 15_000);
  t.is(await run.exited, 5, run.output());
  t.deepEqual(await childrenOf(`${base}/api`), []);
});
