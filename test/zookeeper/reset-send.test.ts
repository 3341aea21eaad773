// The C client closes its own socket inside an API call when a send fails (a connection the
// server reset): the native binding must drop the poll handle on that number at once, or a
// socket that takes the number later goes deaf and the process aborts (libuv's abort() on a
// failed EPOLL_CTL_MOD), as test/faults/zookeeper.test.ts once did in CI. The fixture makes it
// happen round after round in a process of its own; without the binding's fix it hangs on a
// connect that never completes or dies of SIGABRT.
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ZooKeeperServer } from '../helpers/zookeeper-server.js';

const FIXTURE = fileURLToPath(new URL('./reset-send.ts', import.meta.url));

interface Round { round: number; zkFd: number; taken: boolean; failed: number; outcomes: string[] | 'unsettled' }
interface Summary { summary: true; rounds: number; reused: number; broken: number; sameSession: boolean }

test('a send that fails inside a call closes the socket: the number is released cleanly, every socket given it works, the session goes on', async (t) => {
  const server = await ZooKeeperServer.start();
  const rounds = 8;
  const port = server.connectString.split(':').pop()!;
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, port, String(rounds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const lines: (Round | Summary)[] = [];
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as Round | Summary));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    const done = lines.filter((l): l is Round => !('summary' in l));
    const summary = lines.find((l): l is Summary => 'summary' in l);
    t.log(`${done.length} rounds; the C client's old number taken by a new socket in ${done.filter((r) => r.taken).length}; in-flight requests ended ${[...new Set(done.flatMap((r) => (r.outcomes === 'unsettled' ? ['unsettled'] : r.outcomes)))].join(', ')}`);
    t.deepEqual({ code, signal }, { code: 0, signal: null }, `the fixture ended: ${/^\w*Error: .*$/m.exec(stderr)?.[0] ?? stderr.trim().split('\n').slice(-3).join(' | ')}`);
    t.is(done.length, rounds);
    t.truthy(summary);
    t.is(summary?.broken, 0, 'every socket given a freed number connected and round-tripped');
    t.true(summary!.reused >= rounds / 2, `the freed number was taken in ${summary?.reused} of ${rounds} rounds (else the test did not test it)`);
    t.true(summary?.sameSession, 'one session throughout');
    // Requests in flight on the reset connection end with an error (the C client reports the
    // replies it lost as an out-of-order reply, RUNTIME_INCONSISTENCY) or succeed: none hangs.
    for (const r of done) {
      t.not(r.outcomes, 'unsettled', `round ${r.round}: every in-flight request ended`);
      if (r.outcomes !== 'unsettled') for (const o of r.outcomes) t.true(['ok', 'CONNECTION_LOSS', 'RUNTIME_INCONSISTENCY'].includes(o), o);
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await server.close();
  }
});
