// A process stopped past its session timeout (a paused VM, a partitioned host) learns of the
// expiry as soon as it runs again and opens a new session: the native binding calls the C
// client again at once when it drops a timed-out connection, instead of a third of the session
// timeout later (the period its timer had while connected).
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connectZk } from '../../src/zookeeper/client.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePath } from '../helpers/zk.js';
import { ZooKeeperServer } from '../helpers/zookeeper-server.js';

const FIXTURE = fileURLToPath(new URL('./stopped-session.ts', import.meta.url));

test('stopped past the session timeout: expiry seen and a new session opened within 1 s of resuming (a third of the timeout is 3 s)', async (t) => {
  const server = await ZooKeeperServer.start();
  const zk = await connectZk({ connectString: server.connectString });
  const node = uniquePath('stopped');
  const sessionTimeoutMs = 9000;
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, server.connectString, String(sessionTimeoutMs), node], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const events: { event: string; at: number }[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => events.push(JSON.parse(line) as { event: string; at: number }));
    const seen = (event: string, after = 0) => events.find((e) => e.event === event && e.at >= after);
    await waitFor('the session in the child', () => seen('ready'), 20_000);
    child.kill('SIGSTOP');
    // The server ends the session (its ephemeral node goes) while the process cannot run.
    await waitFor('the server to expire the stopped session', async () => (await zk.exists(node)) === null, sessionTimeoutMs + 10_000, 100);
    const resumedAt = Date.now();
    child.kill('SIGCONT');
    const expired = await waitFor('the expiry seen by the child', () => seen('expired', resumedAt), 10_000);
    const renewed = await waitFor('a new session in the child', () => seen('session', resumedAt), 10_000);
    t.log(`expiry seen ${expired.at - resumedAt} ms and a new session ${renewed.at - resumedAt} ms after resuming (session timeout ${sessionTimeoutMs} ms)`);
    t.true(expired.at - resumedAt < 1000, 'the expiry is seen at once, not after a third of the session timeout');
    t.true(renewed.at - resumedAt < 1000);
  } finally {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    await zk.close();
    await server.close();
  }
});
