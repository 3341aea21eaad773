import test from 'ava';
import { register, startProxy } from '../helpers/proxy.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';

const suite = zookeeperSuite(test);

test('a service that leaves ZooKeeper (its znode deleted) releases its table entry, watch, health records and metric series', async (t) => {
  const base = uniquePath('removal');
  const ok = await Upstream.start('ok');
  const sick = await Upstream.start('sick', (_req, res) => void res.writeHead(503).end());
  await register(suite.zk, base, 'gone', 'ok', ok.address);
  await register(suite.zk, base, 'gone', 'sick', sick.address);
  await register(suite.zk, base, 'stays', 'ok', ok.address);
  const proxy = await startProxy(suite.server.connectString, base, { 'consecutive-5xx': '1', 'max-ejection-percent': '100' });
  const admin = `http://127.0.0.1:${proxy.app.adminAddress().port}`;
  try {
    for (let i = 0; i < 20; i++) await proxy.request(`/svc/gone/x${i}`);
    await proxy.request('/svc/stays/x');
    const sickInstance = proxy.app.discovery.instances('gone')!.find((i) => i.port === sick.port)!;
    t.true(proxy.app.health.isEjected(sickInstance), 'a health record exists');
    const before = await (await fetch(`${admin}/metrics`)).text();
    t.regex(before, /zkroute_ejections_total\{service="gone",reason="consecutive_5xx"\} 1/);
    t.regex(before, /zkroute_request_duration_seconds_count\{service="gone"\}/);
    const watchedBefore = proxy.app.discovery.stats().watchedServices;

    for (const id of ['ok', 'sick']) await suite.zk.delete(`${base}/gone/${id}`);
    await suite.zk.delete(`${base}/gone`);
    await waitFor('the service forgotten', () => !proxy.app.discovery.knownServices().includes('gone'), 5000);

    const after = await (await fetch(`${admin}/metrics`)).text();
    t.notRegex(after, /service="gone"/, 'no series of the service left');
    t.regex(after, /service="stays"/);
    t.is(proxy.app.discovery.table.get('gone'), undefined);
    t.is(proxy.app.health.describe(sickInstance).ejections, 0, 'health record dropped');
    t.is(proxy.app.discovery.stats().watchedServices, watchedBefore - 1, 'its watch closed');
    t.is((await proxy.request('/svc/gone/x')).status, 404, 'unknown now');
    // It may come back: watched again on first use.
    await register(suite.zk, base, 'gone', 'ok', ok.address);
    await waitFor('listed again', () => proxy.app.discovery.knownServices().includes('gone'), 5000);
    t.is((await proxy.request('/svc/gone/back')).status, 200);
  } finally {
    await proxy.close();
    await ok.close();
    await sick.close();
  }
});
