import test from 'ava';
import { connectZk, type ZkClient } from '../../src/zookeeper/client.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { freePorts, ZooKeeperServer } from '../helpers/zookeeper-server.js';

let server: ZooKeeperServer;
let writer: ZkClient;
let base: string;

test.before(async () => {
  server = await ZooKeeperServer.start();
  writer = await connectZk({ connectString: server.connectString });
  base = uniquePath('providers');
  await writer.mkdirp(`${base}/api`);
  await writer.mkdirp(`${base}/idle`);
  await writer.create(`${base}/api/i-1`, JSON.stringify({ host: '127.0.0.1', port: 8081, zone: 'a' }), { ephemeral: true });
  await writer.create(`${base}/api/i-2`, '127.0.0.1:8082', { ephemeral: true });
});

test.after.always(async () => {
  await writer?.close();
  await server?.close();
});

test('prints a readable table of a known tree', async (t) => {
  const run = await runCli(['providers', '--zookeeper', server.connectString, '--base-path', base]);
  t.is(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.regex(lines[0]!, /^SERVICE\s+ADDRESS\s+ID\s+FORMAT\s+METADATA$/);
  t.regex(lines[1]!, /^api\s+127\.0\.0\.1:8081\s+i-1\s+json\s+\{"zone":"a"\}$/);
  t.regex(lines[2]!, /^api\s+127\.0\.0\.1:8082\s+i-2\s+host-port\s+\{\}$/);
  t.regex(lines[3]!, /^idle\s+-\s+-\s+-\s+\(no instances\)$/);
  t.is(lines.length, 4);
});

test('prints JSON for one service', async (t) => {
  const run = await runCli(['providers', '--zookeeper', server.connectString, '--base-path', base, 'api', '--json']);
  t.is(run.code, 0, run.stderr);
  const parsed = JSON.parse(run.stdout) as { services: Record<string, { host: string; port: number }[]> };
  t.deepEqual(Object.keys(parsed.services), ['api']);
  t.deepEqual(parsed.services['api']!.map((i) => `${i.host}:${i.port}`), ['127.0.0.1:8081', '127.0.0.1:8082']);
});

test('--watch prints changes until interrupted', async (t) => {
  // Its own tree: the other tests read theirs while this one adds an instance.
  const base = uniquePath('providers');
  await writer.mkdirp(`${base}/api`);
  await writer.create(`${base}/api/i-1`, '127.0.0.1:8081', { ephemeral: true });
  await writer.create(`${base}/api/i-2`, '127.0.0.1:8082', { ephemeral: true });
  const run = spawnCli(['providers', '--zookeeper', server.connectString, '--base-path', base, 'api', '--watch']);
  const seen = (re: RegExp) => waitFor(`${re} in the output`, () => re.test(run.output()), 15_000);
  try {
    await seen(/127\.0\.0\.1:8082/);
    const extra = await writer.create(`${base}/api/i-3`, '127.0.0.1:8083', { ephemeral: true });
    await seen(/api: 127\.0\.0\.1:8081 127\.0\.0\.1:8082 127\.0\.0\.1:8083/);
    await writer.delete(extra);
    run.child.kill('SIGINT');
    t.is(await run.exited, 0);
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('unreachable ZooKeeper: one clear line and a non-zero exit', async (t) => {
  const [port] = await freePorts(1);
  const run = await runCli(['providers', '--zookeeper', `127.0.0.1:${port}`, '--zookeeper-connect-timeout', '500ms']);
  t.is(run.code, 1);
  t.is(run.stderr.trim().split('\n').length, 1);
  t.regex(run.stderr, new RegExp(`could not connect to ZooKeeper at 127\\.0\\.0\\.1:${port} within 500 ms`));
});

test('missing base path and bad options are reported', async (t) => {
  const missing = await runCli(['providers', '--zookeeper', server.connectString, '--base-path', '/no/such/base']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /base path \/no\/such\/base does not exist/);
  const badLayout = await runCli(['providers', '--zookeeper', server.connectString, '--layout', 'flat']);
  t.is(badLayout.code, 2);
  t.regex(badLayout.stderr, /--layout "flat": expected one of nested, sequential/);
  const badConnect = await runCli(['providers', '--zookeeper', '127.0.0.1:2181/chroot/']);
  t.is(badConnect.code, 2);
  t.regex(badConnect.stderr, /--zookeeper "127\.0\.0\.1:2181\/chroot\/": .*must not end with "\/"/);
  const noZk = await runCli(['providers'], { env: { ZKROUTE_ZOOKEEPER: '' } });
  t.is(noZk.code, 2);
  t.regex(noZk.stderr, /--zookeeper is required/);
});
