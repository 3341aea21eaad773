import test from 'ava';
import { Limiter } from '../../src/discovery/limiter.js';

test('runs at most `limit` tasks at once, all of them eventually, errors passed through', async (t) => {
  const limiter = new Limiter(3);
  let running = 0;
  let peak = 0;
  const task = (i: number) => limiter.run(async () => {
    running += 1;
    peak = Math.max(peak, running);
    await new Promise((r) => setImmediate(r));
    running -= 1;
    if (i === 5) throw new Error('five');
    return i;
  });
  const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => task(i)));
  t.is(peak, 3);
  t.is(results.filter((r) => r.status === 'fulfilled').length, 19);
  t.like(results[5], { status: 'rejected', reason: { message: 'five' } });
});
