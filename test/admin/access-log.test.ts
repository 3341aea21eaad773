// The access log: the writer on its own (batching, query, reopen), then the real proxy from the
// command line (one line per request, errors included, rotation on SIGUSR1, workers sharing a file).
import test from 'ava';
import { mkdtempSync, readFileSync, renameSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { accessLine, createAccessLog } from '../../src/admin/access-log.js';
import type { RequestDone } from '../../src/http/handler.js';
import { silentLogger } from '../../src/log.js';
import { runCli, spawnCli, stopAll } from '../helpers/cli.js';
import { register } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

const suite = zookeeperSuite(test);
test.after.always(() => stopAll());

const done = (extra: Partial<RequestDone> = {}): RequestDone => ({ service: 'orders', method: 'GET', status: 200, tries: 1, durationMs: 1.23456, outcome: 'ok', url: '/svc/orders/items?token=secret', instance: '127.0.0.1:8080', bytesIn: 3, bytesOut: 120, ...extra });
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : []);

test('a line has the fields, the query stripped unless asked for, the error code when zkroute answered', (t) => {
  const line = JSON.parse(accessLine(done(), Date.UTC(2026, 11, 1, 16, 0, 0), false)) as Record<string, unknown>;
  t.deepEqual(line, { time: '2026-12-01T16:00:00.000Z', method: 'GET', service: 'orders', path: '/svc/orders/items', status: 200, tries: 1, instance: '127.0.0.1:8080', duration_ms: 1.235, bytes_in: 3, bytes_out: 120, outcome: 'ok', error: null });
  t.is((JSON.parse(accessLine(done(), 0, true)) as { path: string }).path, '/svc/orders/items?token=secret');
  const refused = JSON.parse(accessLine(done({ service: '', status: 404, tries: 0, outcome: 'not_routed', error: 'not_routed', url: '/x' }), 0, false)) as Record<string, unknown>;
  t.like(refused, { service: null, status: 404, error: 'not_routed', instance: '127.0.0.1:8080' });
});

test('the writer batches: nothing written per request, one write per batch, in order; close writes the rest', async (t) => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'zkroute-access-')), 'access.log');
  const log = createAccessLog({ target: file, includeQuery: false, flushIntervalMs: 60_000, batchRecords: 3 }, { logger: silentLogger() });
  log.record(done({ url: '/1' }));
  log.record(done({ url: '/2' }));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(lines(file), [], 'below the batch size and before the interval: nothing yet');
  log.record(done({ url: '/3' }));
  await waitFor('the first batch', () => lines(file).length === 3);
  log.record(done({ url: '/4' }));
  await log.close();
  t.deepEqual(lines(file).map((l) => l['path']), ['/1', '/2', '/3', '/4']);
});

test('reopen after a rename (logrotate): earlier lines stay in the moved file, later ones go to a new file of the name', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zkroute-access-'));
  const file = path.join(dir, 'access.log');
  const log = createAccessLog({ target: file, includeQuery: false, flushIntervalMs: 10 }, { logger: silentLogger() });
  log.record(done({ url: '/before' }));
  await waitFor('the first line', () => lines(file).length === 1);
  renameSync(file, `${file}.1`);
  log.record(done({ url: '/moved' })); // still written to the moved file: not reopened yet
  log.reopen();
  log.record(done({ url: '/after' }));
  await log.close();
  t.deepEqual(lines(`${file}.1`).map((l) => l['path']), ['/before', '/moved']);
  t.deepEqual(lines(file).map((l) => l['path']), ['/after']);
});

test('bad --access-log: a directory that does not exist is a config error naming the option', async (t) => {
  const run = await runCli(['proxy', '--zookeeper', '127.0.0.1:1', '--access-log', '/nonexistent-zkroute-dir/access.log']);
  t.is(run.code, 2);
  t.regex(run.stderr, /--access-log.*\/nonexistent-zkroute-dir.*does not exist/);
});

for (const workers of [1, 2]) {
  test(`the proxy${workers > 1 ? ` with --workers ${workers}` : ''} logs every request, proxied or refused, and moves to a new file on SIGUSR1`, async (t) => {
    const upstream = await Upstream.start('a');
    suite.defer(() => upstream.close());
    const base = uniquePath('access');
    await register(suite.zk, base, 'api', 'a', upstream.address);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'zkroute-access-')), 'access.log');
    const run = spawnCli(['proxy', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--base-path', base, '--access-log', file, ...(workers > 1 ? ['--workers', String(workers)] : [])], { ZKROUTE_ZOOKEEPER: suite.server.connectString });
    const started = await waitFor('the start-up log line', () => run.logs().find((l) => l['msg'] === 'zkroute proxy started'), 30_000);
    const origin = `http://${String(started['listen'])}`;
    t.is((await fetch(`${origin}/svc/api/one?secret=1`)).status, 200);
    t.is((await fetch(`${origin}/svc/api/two`, { method: 'POST', body: 'abcde' })).status, 200);
    t.is((await fetch(`${origin}/svc/nope/x`)).status, 404);
    await waitFor('three lines', () => lines(file).length === 3, 5000);
    const [one, two, nope] = [...lines(file)].sort((a, b) => String(a['path']).localeCompare(String(b['path'])));
    t.like(one, { method: 'GET', service: 'api', path: '/svc/api/one', status: 200, tries: 1, instance: upstream.address, outcome: 'ok', error: null });
    t.true((one!['bytes_out'] as number) > 0);
    t.like(nope, { path: '/svc/nope/x', status: 404, error: 'unknown_service', tries: 0 });
    t.like(two, { method: 'POST', path: '/svc/api/two', bytes_in: 5 });
    renameSync(file, `${file}.1`);
    run.child.kill('SIGUSR1');
    await waitFor('the reopen logged', () => run.logs().filter((l) => l['msg'] === 'access log reopened').length === workers, 5000);
    t.is((await fetch(`${origin}/svc/api/three`)).status, 200);
    await waitFor('a line in the new file', () => lines(file).length === 1, 5000);
    t.is(lines(file)[0]!['path'], '/svc/api/three');
    t.is(lines(`${file}.1`).length, 3);
    run.child.kill('SIGTERM');
    t.is(await run.exited, 0);
  });
}
