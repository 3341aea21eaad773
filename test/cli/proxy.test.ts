import test from 'ava';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectZk } from '../../src/zookeeper/client.js';
import { runCli } from '../helpers/cli.js';
import { register } from '../helpers/proxy.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { freePorts, ZooKeeperServer } from '../helpers/zookeeper-server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const badFlags: [string[], NodeJS.ProcessEnv, RegExp][] = [
  [['--retries=-1'], {}, /--retries "-1": expected a whole number from 0 to 10/],
  [['--balancer', 'fastest'], {}, /--balancer "fastest": expected one of random, round-robin, p2c/],
  [[], { ZKROUTE_BALANCER: 'bogus' }, /ZKROUTE_BALANCER "bogus": expected one of/],
  [['--connect-timeout=-5s'], {}, /--connect-timeout "-5s": expected a duration/],
  [['--try-timeout', '0'], {}, /--try-timeout "0": must be above zero/],
  [['--listen', '127.0.0.1:99999'], {}, /--listen "127.0.0.1:99999": port must be 0-65535/],
  [['--listen', 'nonsense'], {}, /--listen "nonsense": expected HOST:PORT/],
  [['--prefix', 'svc/'], {}, /--prefix "svc\/": must start with "\/"/],
  [['--retry-buffer', 'lots'], {}, /--retry-buffer "lots": expected a size/],
  [['--max-ejection-percent', '150'], {}, /--max-ejection-percent "150": expected a whole number from 0 to 100/],
  [['--preserve-host=maybe'], {}, /preserve-host/],
  [['--no-such-flag'], {}, /no-such-flag/],
  [['--try-timeout', '20s', '--deadline', '10s'], {}, /--try-timeout 20000ms is longer than --deadline 10000ms/],
];
for (const [flags, env, message] of badFlags) {
  test(`config error: ${[...flags, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')}`, async (t) => {
    const run = await runCli(['proxy', '--zookeeper', '127.0.0.1:2181', ...flags], { env });
    t.is(run.code, 2, run.stderr);
    t.regex(run.stderr, message);
    t.is(run.stderr.trim().split('\n').length, 1, 'one clear line');
  });
}

test('config error: a missing or malformed --zookeeper', async (t) => {
  const missing = await runCli(['proxy'], { env: { ZKROUTE_ZOOKEEPER: '' } });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--zookeeper is required \(or set ZKROUTE_ZOOKEEPER\)/);
  const bad = await runCli(['proxy', '--zookeeper', '127.0.0.1:2181/chroot/']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--zookeeper "127.0.0.1:2181\/chroot\/"/);
});

test('ZooKeeper unreachable at start: exit 1 with a clear error after the connect deadline', async (t) => {
  const [port] = await freePorts(1);
  const run = await runCli(['proxy', '--zookeeper', `127.0.0.1:${port}`, '--zookeeper-connect-timeout', '500ms', '--listen', '127.0.0.1:0']);
  t.is(run.code, 1);
  t.regex(run.stderr, /could not connect to ZooKeeper at 127\.0\.0\.1:\d+ within 500 ms/);
});

test('runs from flags and environment, serves, and exits 0 on SIGTERM; a port in use is a clear error', async (t) => {
  const server = await ZooKeeperServer.start();
  const upstream = await Upstream.start('a');
  const zk = await connectZk({ connectString: server.connectString });
  const base = uniquePath('providers');
  await register(zk, base, 'api', 'a', upstream.address);
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/cli-entry.ts', 'proxy', '--listen', '127.0.0.1:0', '--base-path', base], {
    cwd: ROOT,
    env: { ...process.env, ZKROUTE_ZOOKEEPER: server.connectString, ZKROUTE_BALANCER: 'p2c', ZKROUTE_LOG_LEVEL: 'info' },
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    const started = await waitFor('the start-up log line', () => stderr.split('\n').map((l) => (l.startsWith('{') ? JSON.parse(l) : {})).find((l) => l.msg === 'zkroute proxy started'), 15_000);
    t.is(started.config.balancer, 'p2c', 'settings are logged at start-up, env applied');
    const port = Number(String(started.listen).split(':').at(-1));
    const res = await fetch(`http://127.0.0.1:${port}/svc/api/hello`);
    t.is(res.status, 200);
    t.is(((await res.json()) as { url: string }).url, '/hello');

    const inUse = await runCli(['proxy', '--zookeeper', server.connectString, '--listen', `127.0.0.1:${port}`]);
    t.is(inUse.code, 1);
    t.regex(inUse.stderr, new RegExp(`--listen 127\\.0\\.0\\.1:${port}: address already in use`));

    child.kill('SIGTERM');
    t.is(await exited, 0);
    t.regex(stderr, /"msg":"stopped"/);
  } finally {
    child.kill('SIGKILL');
    await zk.close();
    await upstream.close();
    await server.close();
  }
});
