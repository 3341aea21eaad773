import test from 'ava';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { childPids, runCli, spawnCli, stopAll } from '../helpers/cli.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { connectThrift, startThriftServer } from '../helpers/thrift.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

test.after.always(() => stopAll());
const suite = zookeeperSuite(test);

async function seed(): Promise<{ base: string; servers: Awaited<ReturnType<typeof startThriftServer>>[] }> {
  const base = uniquePath('services');
  const servers = await Promise.all(['a', 'b'].map((n) => startThriftServer(n)));
  for (const s of servers) suite.defer(() => s.close());
  await suite.zk.mkdirp(base);
  for (const s of servers) await suite.zk.create(`${base}/example-service`, s.address, { ephemeral: true, sequential: true });
  return { base, servers };
}

function startTcpProxy(base: string, extra: string[] = []) {
  const run = spawnCli(['proxy', '--listen', 'none', '--admin', '127.0.0.1:0', '--base-path', base, '--layout', 'sequential', '--tcp', '127.0.0.1:0=example-service', ...extra], { ZKROUTE_ZOOKEEPER: suite.server.connectString });
  return run;
}

async function started(run: ReturnType<typeof spawnCli>) {
  const line = await waitFor('the start-up line', () => run.logs().find((l) => l['msg'] === 'zkroute proxy started'), 30_000);
  const tcp = line['tcp'] as string[];
  return { line, port: Number(tcp[0]!.split('=')[0]!.split(':').at(-1)) };
}

test('--listen none --tcp: serves Thrift callers only; drain on SIGTERM lets an open connection finish, then closes it; exit 0', async (t) => {
  const { base } = await seed();
  const run = startTcpProxy(base, ['--drain-timeout', '1500ms']);
  try {
    const { line, port } = await started(run);
    t.is(line['listen'], 'none');
    t.regex(String((line['tcp'] as string[])[0]), /^127\.0\.0\.1:\d+=example-service$/);
    const client = await connectThrift(port);
    t.regex(await client.echo('before'), /^[ab]:before$/);
    run.child.kill('SIGTERM');
    // New connections are refused once the listener is closed; the open one keeps working.
    await waitFor('the listener closed', () => new Promise<boolean>((resolve) => {
      const probe = connect({ host: '127.0.0.1', port });
      probe.once('connect', () => {
        probe.destroy();
        resolve(false);
      });
      probe.once('error', () => resolve(true));
    }), 5000, 50);
    t.regex(await client.echo('during drain'), /^[ab]:during drain$/, 'an open connection is served during the drain');
    const drainStarted = performance.now();
    await client.closed;
    const heldMs = performance.now() - drainStarted;
    t.true(heldMs < 3000, `closed at the drain timeout (${heldMs.toFixed(0)} ms after the check)`);
    t.is(await run.exited, 0, run.output());
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('--workers 2 serves TCP on the shared port; the metrics add up over the workers', async (t) => {
  const { base } = await seed();
  const run = startTcpProxy(base, ['--workers', '2']);
  try {
    const { line, port } = await started(run);
    t.is(childPids(run.child.pid!).length, 2);
    for (let i = 0; i < 10; i++) {
      const client = await connectThrift(port);
      t.regex(await client.echo(`w${i}`), new RegExp(`^[ab]:w${i}$`));
      client.close();
      await client.closed;
    }
    const metrics = await waitFor('ten connections counted', async () => {
      const text = await (await fetch(`http://${String(line['admin'])}/metrics`)).text();
      return /^zkroute_tcp_connections_total\{service="example-service",outcome="ok"\} 10$/m.test(text) ? text : undefined;
    });
    t.regex(metrics, /^zkroute_tcp_active_connections\{service="example-service"\} 0$/m);
  } finally {
    run.child.kill('SIGTERM');
    await run.exited;
  }
});

test('--tcp: bad values exit 2 naming the flag; a port in use exits 1 naming it; --print-config shows the routes', async (t) => {
  const bad = await runCli(['proxy', '--zookeeper', '127.0.0.1:2181', '--tcp', '127.0.0.1:9090']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--tcp "127\.0\.0\.1:9090": expected LISTEN=SERVICE/);
  t.is(bad.stderr.trim().split('\n').length, 1);
  const printed = await runCli(['proxy', '--zookeeper', '127.0.0.1:2181', '--listen', 'none', '--print-config'], { env: { ZKROUTE_TCP: '127.0.0.1:9090=example-service,127.0.0.1:6380=cache' } });
  t.is(printed.code, 0, printed.stderr);
  t.like(JSON.parse(printed.stdout), { listen: null, tcp: [{ listen: { host: '127.0.0.1', port: 9090 }, service: 'example-service' }, { listen: { port: 6380 }, service: 'cache' }] });

  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  try {
    const port = (taken.address() as AddressInfo).port;
    const inUse = await runCli(['proxy', '--zookeeper', suite.server.connectString, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--tcp', `127.0.0.1:${port}=example-service`], { timeoutMs: 30_000 });
    t.is(inUse.code, 1, inUse.stderr);
    t.regex(inUse.stderr, new RegExp(`--tcp 127\\.0\\.0\\.1:${port}=example-service 127\\.0\\.0\\.1:${port}: address already in use`));
  } finally {
    taken.close();
  }
});

test('--workers 2 serves --thrift on the shared port: every call answered, counted over the workers', async (t) => {
  const { base } = await seed();
  const run = spawnCli(['proxy', '--listen', 'none', '--admin', '127.0.0.1:0', '--base-path', base, '--layout', 'sequential', '--thrift', '127.0.0.1:0=example-service', '--workers', '2'], { ZKROUTE_ZOOKEEPER: suite.server.connectString });
  try {
    const line = await waitFor('the start-up line', () => run.logs().find((l) => l['msg'] === 'zkroute proxy started'), 30_000);
    const port = Number(String((line['thrift'] as string[])[0]).split('=')[0]!.split(':').at(-1));
    t.is(childPids(run.child.pid!).length, 2);
    for (let i = 0; i < 6; i++) {
      const client = await connectThrift(port);
      for (let j = 0; j < 5; j++) t.regex(await client.echo(`w${i}-${j}`), new RegExp(`^[ab]:w${i}-${j}$`));
      client.close();
      await client.closed;
    }
    await waitFor('30 calls counted', async () => /^zkroute_thrift_calls_total\{service="example-service",method="echo",outcome="ok"\} 30$/m.test(await (await fetch(`http://${String(line['admin'])}/metrics`)).text()));
  } finally {
    run.child.kill('SIGTERM');
    await run.exited;
  }
});
