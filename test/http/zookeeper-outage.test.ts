import test from 'ava';
import { connectZk } from '../../src/zookeeper/client.js';
import { register, startProxy } from '../helpers/proxy.js';
import { Upstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { ZooKeeperServer } from '../helpers/zookeeper-server.js';

test('ZooKeeper stopped mid-run, past the session timeout: requests keep succeeding on the last-known table', async (t) => {
  const server = await ZooKeeperServer.start();
  const upstreams = [await Upstream.start('a'), await Upstream.start('b')];
  const zk = await connectZk({ connectString: server.connectString, sessionTimeoutMs: 2000 });
  const base = uniquePath('providers');
  const proxy = await startProxy(server.connectString, base, { 'zookeeper-session-timeout': '2s' });
  try {
    for (const u of upstreams) await register(zk, base, 'api', u.name, u.address);
    t.is((await proxy.request('/svc/api/before')).status, 200);
    await waitFor('both instances in the table', () => proxy.app.discovery.instances('api')?.length === 2);

    await server.stop();
    await waitFor('the proxy to notice', () => proxy.app.discovery.stats().staleSeconds > 0);
    const statuses: number[] = [];
    const until = Date.now() + 3000; // longer than the 2 s session timeout
    while (Date.now() < until && statuses.length < 300) {
      statuses.push((await proxy.request(`/svc/api/during?i=${statuses.length}`)).status);
    }
    t.true(statuses.length > 20);
    t.deepEqual(statuses.filter((s) => s !== 200), []);
    t.true(upstreams.every((u) => u.count('/during') > 0), 'both instances kept receiving traffic');
    t.is(proxy.app.discovery.instances('api')?.length, 2);
  } finally {
    await proxy.close();
    await zk.close().catch(() => {});
    for (const u of upstreams) await u.close();
    await server.close();
  }
});
