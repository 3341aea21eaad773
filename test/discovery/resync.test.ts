// Resync jitter: after a new session, a discovery client with many watches spreads its re-reads
// over the window instead of re-reading all at once; a first read is never delayed.
import test from 'ava';
import { createDiscovery, resyncWindowMs, type Discovery, type DiscoveryDeps, type DiscoveryOptions } from '../../src/discovery/discovery.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/wait.js';
import { zookeeperSuite } from '../helpers/suite.js';
import { expireSession, uniquePath } from '../helpers/zk.js';

const suite = zookeeperSuite(test);

async function withServices(count: number, options: Partial<DiscoveryOptions>, deps: Partial<DiscoveryDeps> = {}): Promise<{ d: Discovery; base: string; services: string[] }> {
  const base = uniquePath('providers');
  const services = Array.from({ length: count }, (_, i) => `s${i}`);
  for (const [i, s] of services.entries()) {
    await suite.zk.mkdirp(`${base}/${s}`);
    await suite.zk.create(`${base}/${s}/a`, JSON.stringify({ host: '127.0.0.1', port: 9000 + i }), { ephemeral: true });
  }
  await suite.zk.mkdirp(`${base}/later`);
  await suite.zk.create(`${base}/later/a`, JSON.stringify({ host: '127.0.0.1', port: 8999 }), { ephemeral: true });
  const d = createDiscovery({ zookeeper: suite.server.connectString, basePath: base, services, sessionTimeoutMs: 4000, ...options }, { logger: silentLogger(), ...deps });
  suite.defer(() => d.close());
  await d.start();
  await d.ready();
  return { d, base, services };
}

/** Expires the session; resolves with when the new one began and every watch's first read on it. */
async function resyncAfterExpiry(d: Discovery): Promise<{ at: number; sessionAt: number; starts: number[] }> {
  const renewed = newSession(d);
  await expireSession(suite.server.connectString, d.session.client!);
  const { expiredAt, sessionAt } = await renewed;
  return { ...(await readsOnNewSession(d, expiredAt)), sessionAt };
}

/**
 * When the session ended and when the next one began. Every read on the new session starts
 * after the first; the watchers act on the second in the same event (with no jitter, before
 * a listener added here runs).
 */
function newSession(d: Discovery): Promise<{ expiredAt: number; sessionAt: number }> {
  return new Promise((resolve) => {
    d.session.once('expired', () => {
      const expiredAt = Date.now();
      d.session.once('session', () => resolve({ expiredAt, sessionAt: Date.now() }));
    });
  });
}

/** Every watch's first read on the session that began at `at`. */
async function readsOnNewSession(d: Discovery, at: number): Promise<{ at: number; starts: number[] }> {
  const starts = await waitFor('every watch read again', () => {
    const all = d.syncStarts().map((s) => s.at);
    return all.every((s) => s >= at) ? all : undefined;
  }, 10_000);
  return { at, starts };
}

test('40 services: after an expiry the re-reads spread over the 2 s window, the table served meanwhile; a first read is not delayed', async (t) => {
  const { d, services } = await withServices(40, { resyncJitterMs: 2000 });
  const renewed = newSession(d);
  await expireSession(suite.server.connectString, d.session.client!);
  // A service no one asked for yet, asked as the session is lost: its first read goes at once.
  const asked = Date.now();
  const { expiredAt, sessionAt } = await renewed;
  const resolved = await d.resolve('later');
  const firstReadMs = Date.now() - asked;
  t.is(resolved.kind, 'instances');
  const { starts } = await readsOnNewSession(d, expiredAt);
  const spread = Math.max(...starts) - Math.min(...starts);
  t.log(`${starts.length} watches re-read over ${spread} ms (window 2000 ms); the first read of a new service took ${firstReadMs} ms`);
  t.true(spread >= 1000, 'spread over the window, not at once');
  t.true(Math.max(...starts) - sessionAt <= 2000 + 500, 'within the window of the new session (timers may run late on a loaded machine)');
  for (const s of services) t.is(d.instances(s)?.length, 1, 'served throughout');
  t.true(firstReadMs < 1500, 'not held back by the jitter');
});

test('--resync-jitter 0: every watch re-reads at once', async (t) => {
  const { d } = await withServices(20, { resyncJitterMs: 0 });
  const { starts } = await resyncAfterExpiry(d);
  const spread = Math.max(...starts) - Math.min(...starts);
  t.log(`${starts.length} watches re-read over ${spread} ms`);
  t.true(spread < 500);
});

test('auto, few services: the window shrinks (250 ms per watch)', async (t) => {
  const { d } = await withServices(2, { resyncJitterMs: 'auto' });
  const { starts } = await resyncAfterExpiry(d);
  const spread = Math.max(...starts) - Math.min(...starts);
  t.log(`3 watches re-read over ${spread} ms`);
  t.true(spread <= 750 + 50, 'at most 750 ms of jitter for three watches');
});

test('a window set explicitly is used whole, however few the watches', async (t) => {
  // Every wait is 90% of the window: 1350 ms of a 1.5 s window ('auto' would allow 750 ms for three watches).
  const { d } = await withServices(2, { resyncJitterMs: 1500 }, { random: () => 0.9 });
  const { starts, sessionAt: session } = await resyncAfterExpiry(d);
  t.log(`3 watches re-read ${Math.min(...starts) - session} to ${Math.max(...starts) - session} ms after the new session`);
  t.true(Math.min(...starts) >= session + 1300, 'each waited 90% of the whole window');
});

test('resyncWindowMs: auto grows 250 ms per watch up to 2 s; a number is the window', (t) => {
  t.is(resyncWindowMs('auto', 2), 500);
  t.is(resyncWindowMs('auto', 40), 2000);
  t.is(resyncWindowMs(30_000, 2), 30_000);
  t.is(resyncWindowMs(0, 40), 0);
});
