import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { register } from '../../src/registration/registration.js';
import { connectZk } from '../../src/zookeeper/client.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { ZooKeeperServer } from '../helpers/zookeeper-server.js';

test('ZooKeeper restarted past the session timeout: the node is there again after the restart', async (t) => {
  const server = await ZooKeeperServer.start();
  const base = uniquePath('providers');
  const r = await register({ zookeeper: server.connectString, service: 'orders', host: '127.0.0.1', port: 8080, basePath: base, sessionTimeoutMs: 2000 });
  try {
    const path = r.path!;
    await server.stop();
    // The outage itself: longer than the 2 s session timeout.
    await sleep(3000);
    await server.start();
    const restartedAt = Date.now();
    const reader = await connectZk({ connectString: server.connectString });
    try {
      const stat = await waitFor('the node owned by the live registration session', async () => {
        const s = await reader.exists(r.path ?? path);
        return s && s.ephemeralOwner === r.session.client?.sessionId ? s : undefined;
      }, 10_000, 20);
      t.truthy(stat);
      t.log(`node present ${Date.now() - restartedAt} ms after the restart`);
      t.true(r.registered);
    } finally {
      await reader.close();
    }
  } finally {
    await r.close();
    await server.close();
  }
});

test('a withdraw during a ZooKeeper outage deletes the node once the session is back', async (t) => {
  const server = await ZooKeeperServer.start();
  const base = uniquePath('providers');
  // A session long enough to outlive a slow JVM restart on a loaded machine (the point is that
  // the withdraw, not an expiry, removes the node), and short enough that the C client's
  // reconnect attempts (spaced by a share of the session timeout) come soon after the restart.
  const r = await register({ zookeeper: server.connectString, service: 'orders', host: '127.0.0.1', port: 8080, basePath: base, sessionTimeoutMs: 12_000 });
  let reader: Awaited<ReturnType<typeof connectZk>> | undefined;
  try {
    const path = r.path!;
    await server.stop();
    await r.withdraw();
    t.false(r.registered);
    await server.start();
    const restartedAt = Date.now();
    // The reader connects after the restart: only the registration's own reconnect is on trial.
    reader = await connectZk({ connectString: server.connectString, sessionTimeoutMs: 12_000 });
    // Generous: under a loaded CI the C client's reconnect attempts come late (1 in 5 full runs
    // on 2026-12-01 needed more than 25 s).
    await waitFor('the node deleted after reconnecting', async () => (await reader!.exists(path).catch(() => undefined)) === null, 45_000, 20);
    t.log(`node deleted ${Date.now() - restartedAt} ms after the restart`);
    t.is(r.session.stats().expiries, 0, 'the same session deleted it');
    // On a loaded machine the freshly restarted JVM can miss pings and the client reconnects
    // once more; it must come back to connected on the same session.
    await waitFor('the session connected', () => r.session.client?.state === 'connected', 20_000, 20);
    t.is(r.session.client!.state, 'connected');
    t.is(r.session.stats().expiries, 0, 'still the same session');
  } finally {
    await reader?.close();
    await r.close();
    await server.close();
  }
});
