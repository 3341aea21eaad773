import test from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HealthCheck, httpProbe } from '../../src/registration/health-check.js';

test('rise and fall: up after `rise` successes in a row, down after `fall` failures in a row', (t) => {
  const h = new HealthCheck({ intervalMs: 1000, rise: 2, fall: 3 }, async () => true);
  const events: string[] = [];
  h.on('up', () => events.push('up')).on('down', () => events.push('down'));
  const results = [true, false, true, true, false, false, true, false, false, false, true, true];
  const states = results.map((r) => h.observe(r));
  t.deepEqual(states, [false, false, false, true, true, true, true, true, true, false, false, true]);
  t.deepEqual(events, ['up', 'down', 'up']);
});

test('the HTTP probe: 2xx and 3xx healthy; 5xx, refused and slow answers not', async (t) => {
  let status = 200;
  let delayMs = 0;
  const server = createServer((_req, res) => setTimeout(() => res.writeHead(status, { location: '/x' }).end(), delayMs));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
  const probe = httpProbe(url, 200);
  try {
    t.true(await probe());
    status = 302;
    t.true(await probe());
    status = 503;
    t.false(await probe());
    status = 200;
    delayMs = 500;
    t.false(await probe(), 'slower than the timeout');
  } finally {
    server.closeAllConnections();
    server.close();
  }
  t.false(await probe(), 'refused');
});
