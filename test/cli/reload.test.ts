// SIGHUP re-reads --config: retries, the balancer, the log level, the access log and the eager
// services change for the next requests; restart-only options are named and kept; an invalid
// file changes nothing. In one process and with --workers 2.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnCli, stopAll, type SpawnedCli } from '../helpers/cli.js';
import { register } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

test.after.always(() => stopAll());
const suite = zookeeperSuite(test);

/** An instance that resets every request's connection (a retryable failure for a GET). */
async function resetting(): Promise<string> {
  const server: Server = createServer((req) => req.socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  suite.defer(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Sends `n` sequential GETs, each on its own connection (so every worker gets some); the statuses and who answered. */
async function send(proxy: string, service: string, n: number): Promise<{ failed: number; upstreams: string[] }> {
  let failed = 0;
  const upstreams: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://${proxy}/svc/${service}/r${i}`, { headers: { connection: 'close' } });
    const text = await res.text();
    if (res.status === 200) upstreams.push((JSON.parse(text) as { upstream: string }).upstream);
    else failed += 1;
  }
  return { failed, upstreams };
}

const alternates = (names: readonly string[]) => names.every((name, i) => i === 0 || name !== names[i - 1]);

/** Sends SIGHUP and waits for the reload's log line matching `msg`; returns it. */
async function hangUp(run: SpawnedCli, msg: RegExp): Promise<Record<string, unknown>> {
  const before = run.logs().length;
  run.child.kill('SIGHUP');
  return waitFor(`a log line ${msg}`, () => run.logs().slice(before).find((l) => msg.test(String(l['msg']))), 10_000);
}

for (const workers of [1, 2]) {
  test(`--workers ${workers}: SIGHUP applies retries, balancer, log level, access log and eager services; restart-only options are kept; an invalid file changes nothing`, async (t) => {
    const base = uniquePath('providers');
    const a = await Upstream.start('a');
    const c = await Upstream.start('c');
    const d = await Upstream.start('d');
    for (const u of [a, c, d]) suite.defer(() => u.close());
    await register(suite.zk, base, 'flaky', 'a', a.address);
    await register(suite.zk, base, 'flaky', 'r', await resetting());
    await register(suite.zk, base, 'pair', 'c', c.address);
    await register(suite.zk, base, 'pair', 'd', d.address);
    await register(suite.zk, base, 'later', 'a', a.address);

    const dir = await mkdtemp(path.join(tmpdir(), 'zkroute-reload-'));
    const configFile = path.join(dir, 'zkroute.json');
    const accessLog = path.join(dir, 'access.log');
    // No ejection: the resetting instance stays in the set, so retries are what decides.
    const first = { listen: '127.0.0.1:0', admin: '127.0.0.1:0', 'base-path': base, workers, retries: 0, balancer: 'random', 'max-ejection-percent': 0 };
    await writeFile(configFile, JSON.stringify(first));
    const run = spawnCli(['proxy', '--config', configFile], { ZKROUTE_ZOOKEEPER: suite.server.connectString });
    const started = await waitFor('the start-up log line', () => run.logs().find((l) => l['msg'] === 'zkroute proxy started'), 30_000);
    const proxy = String(started['listen']);
    const admin = String(started['admin']);

    const before = await send(proxy, 'flaky', 30);
    t.true(before.failed > 0, `retries 0: requests picked for the resetting instance fail (${before.failed} of 30)`);
    const randomPicks = (await send(proxy, 'pair', 24)).upstreams;
    t.false(alternates(randomPicks), `random: not a strict rotation (${randomPicks.join('')})`);

    await writeFile(configFile, JSON.stringify({ ...first, retries: 1, balancer: 'round-robin', 'log-level': 'debug', 'access-log': accessLog, services: ['later'] }));
    const reloaded = await hangUp(run, /^configuration reloaded/);
    t.deepEqual((reloaded['changed'] as { flag: string }[]).map((c) => c.flag).sort(), ['--access-log', '--balancer', '--log-level', '--retries', '--services']);
    const after = await send(proxy, 'flaky', 30);
    t.is(after.failed, 0, 'retries 1: every request that met the resetting instance went to the other');
    const rotation = (await send(proxy, 'pair', 24)).upstreams;
    if (workers === 1) t.true(alternates(rotation), `round-robin: c and d in turn (${rotation.join('')})`);
    // Each worker keeps its own rotation, and the cluster hands connections to workers in turn.
    else t.is(rotation.filter((u) => u === 'c').length, 12, `round-robin in each worker: an even split (${rotation.join('')})`);
    t.true(run.logs().some((l) => l['msg'] === 'request' && l['level'] === 20), 'log level debug: one line per request');
    await waitFor('the access log', () => existsSync(accessLog) && readFileSync(accessLog, 'utf8').includes('"service":"pair"'), 5000);
    const later = (await (await fetch(`http://${admin}/providers/later`)).json()) as { watched: boolean };
    t.true(later.watched, '--services later: watched without a request');

    // Per-service settings reload too: flaky alone goes back to no retries, the rest keeps 1.
    const second = { ...first, retries: 1, balancer: 'round-robin', 'log-level': 'debug', 'access-log': accessLog };
    await writeFile(configFile, JSON.stringify({ ...second, services: { later: {}, flaky: { retries: 0 } } }));
    const perService = await hangUp(run, /^configuration reloaded/);
    t.deepEqual((perService['changed'] as { flag: string }[]).map((c) => c.flag), ['--services', 'services (per-service settings)']);
    t.true((await send(proxy, 'flaky', 30)).failed > 0, 'services.flaky.retries 0');
    const settings = (await (await fetch(`http://${admin}/providers/flaky`)).json()) as { settings: { retries: number; overridden: string[] } };
    t.like(settings.settings, { retries: 0, overridden: ['retries'] });

    // A restart-only option: named, and left as it is (the proxy keeps its port).
    await writeFile(configFile, JSON.stringify({ ...first, retries: 1, balancer: 'round-robin', 'log-level': 'debug', 'access-log': accessLog, services: ['later'], listen: '127.0.0.1:1', 'http-engine': 'node' }));
    const warning = await hangUp(run, /only take effect after a restart/);
    t.deepEqual(warning['options'], ['--listen', '--http-engine']);
    t.is((await send(proxy, 'pair', 2)).failed, 0, 'still listening where it was');

    // Invalid files: nothing changes, and the log says why.
    for (const [text, problem] of [['{"retries": -1, "balancer": "random"}', /key "retries" "-1": expected a whole number from 0 to 10/], ['{"retries": 0', /not valid JSON/]] as const) {
      await writeFile(configFile, text);
      const refused = await hangUp(run, /^reload refused/);
      t.regex(String(refused['problem']), problem);
      t.is((await send(proxy, 'flaky', 20)).failed, 0, 'retries still 1');
    }
    const stillRotating = (await send(proxy, 'pair', 12)).upstreams;
    if (workers === 1) t.true(alternates(stillRotating), 'still round-robin');

    run.child.kill('SIGTERM');
    t.is(await run.exited, 0);
  });
}
