import test from 'ava';
import { createDiscovery } from '../../src/discovery/discovery.js';
import { silentLogger } from '../../src/log.js';
import { connectZk, type ZkClient } from '../../src/zookeeper/client.js';
import { isZkError } from '../../src/zookeeper/errors.js';
import { waitFor } from '../helpers/wait.js';
import { ZooKeeperEnsemble } from '../helpers/zookeeper-server.js';

test('on a three-server ensemble, killing the member the client uses changes nothing visible and re-reads nothing; a change made meanwhile is seen', async (t) => {
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
    const reads = () => ({ syncs: d.stats().syncs, dataReads: d.stats().dataReads });
    const readsBefore = reads();
    const member = await waitFor('the serving member', () => ensemble.memberServing(sessionId));
    await member.kill();
    t.deepEqual(d.instances('api')!.map((i) => i.address), before);
    await waitFor('reconnection to another member', () => d.session.connected && d.stats().session.reconnects >= 1, 10_000);
    t.is(d.session.client!.sessionId, sessionId, 'same session');
    t.deepEqual(changes, [], 'no table change from the failover');
    t.is(d.stats().session.expiries, 0);
    // The session kept its watches: a reconnect costs ZooKeeper no reads (synapse#295).
    t.deepEqual(reads(), readsBefore, 'no re-read on reconnect');

    // A change made while the client is between members still reaches it: the C client re-sets
    // its watches with the last zxid it saw, and the server fires those that are behind.
    member.spawn();
    await member.waitServing();
    const second = await waitFor('the serving member now', () => ensemble.memberServing(sessionId));
    const other = ensemble.members.find((m) => m !== second && m.running)!;
    const side = await connectZk({ connectString: `127.0.0.1:${other.clientPort}`, sessionTimeoutMs: 6000 });
    try {
      const reconnects = d.stats().session.reconnects;
      // The member is gone (kill waits for its exit) before the change is made: only the
      // re-set watches can tell the client.
      await second.kill();
      await createThroughFailover(side, '/providers/api/i7605', '127.0.0.1:7605');
      await waitFor('the change made during the failover', () => d.instances('api')?.length === 4, 10_000);
      await waitFor('the second reconnection', () => d.session.connected && d.stats().session.reconnects > reconnects, 10_000);
      t.deepEqual(reads(), { syncs: readsBefore.syncs + 1, dataReads: readsBefore.dataReads + 1 }, 'one list and one read, for the change');
    } finally {
      await side.close();
    }
    await waitFor('writer reconnection', () => writer.state === 'connected', 10_000);
    await writer.create('/providers/api/i7604', '127.0.0.1:7604', { ephemeral: true });
    // i7605 went with the side session: the set is the first three and i7604.
    await waitFor('a change after failover', () => d.instances('api')?.map((i) => i.address).sort().join() === '127.0.0.1:7601,127.0.0.1:7602,127.0.0.1:7603,127.0.0.1:7604', 3000);
  } finally {
    await d.close();
    await writer.close();
    await ensemble.close();
  }
});

/** Creates an ephemeral node on a client whose member may itself be waiting out a leader election. */
async function createThroughFailover(client: ZkClient, path: string, data: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await client.create(path, data, { ephemeral: true });
      return;
    } catch (err) {
      if (isZkError(err, 'NODE_EXISTS')) return; // an earlier try that lost its answer made it
      if (!isZkError(err, 'CONNECTION_LOSS') || Date.now() > deadline) throw err;
      await waitFor('the side client back', () => client.state === 'connected', 15_000);
    }
  }
}
