import test from 'ava';
import { createDiscovery } from '../../src/discovery/discovery.js';
import { silentLogger } from '../../src/log.js';
import { connectZk } from '../../src/zookeeper/client.js';
import { waitFor } from '../helpers/wait.js';
import { ZooKeeperEnsemble } from '../helpers/zookeeper-server.js';

test('on a three-server ensemble, killing the member the client uses changes nothing visible', async (t) => {
  const ensemble = await ZooKeeperEnsemble.start(3);
  const writer = await connectZk({ connectString: ensemble.connectString, sessionTimeoutMs: 6000 });
  const d = createDiscovery({ zookeeper: ensemble.connectString, basePath: '/providers', services: ['api'], sessionTimeoutMs: 6000 }, { logger: silentLogger() });
  try {
    await writer.mkdirp('/providers/api');
    for (const port of [7601, 7602, 7603]) await writer.create(`/providers/api/i${port}`, `127.0.0.1:${port}`, { ephemeral: true });
    await d.start();
    await d.ready();
    const before = d.instances('api')!.map((i) => i.address);
    t.is(before.length, 3);
    const changes: string[] = [];
    d.on('change', (service: string) => changes.push(service));
    const sessionId = d.session.client!.sessionId;
    const member = await waitFor('the serving member', () => ensemble.memberServing(sessionId));
    await member.kill();
    t.deepEqual(d.instances('api')!.map((i) => i.address), before);
    await waitFor('reconnection to another member', () => d.session.connected && d.stats().session.reconnects >= 1, 10_000);
    t.is(d.session.client!.sessionId, sessionId, 'same session');
    t.deepEqual(changes, [], 'no table change from the failover');
    t.is(d.stats().session.expiries, 0);
    await waitFor('writer reconnection', () => writer.state === 'connected', 10_000);
    await writer.create('/providers/api/i7604', '127.0.0.1:7604', { ephemeral: true });
    await waitFor('a change after failover', () => d.instances('api')?.length === 4, 3000);
  } finally {
    await d.close();
    await writer.close();
    await ensemble.close();
  }
});
