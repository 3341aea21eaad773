// The floor for zkroute's TCP mode: the cheapest Node forwarder (accept, connect to one fixed
// upstream, `data` -> `write` with pause/resume, end passed on). No discovery, no retries, no
// counters. Not production code: a reference in the TCP benchmark.
// Usage: node tcp-floor.mjs LISTEN_PORT UPSTREAM_PORT (prints the port).
import { connect, createServer } from 'node:net';

const upPort = Number(process.argv[3]);
const forward = (from, to) => {
  from.on('data', (chunk) => {
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.once('end', () => to.end());
  from.once('close', () => to.destroy());
  from.on('error', () => {});
};
const server = createServer({ allowHalfOpen: true }, (down) => {
  down.setNoDelay(true);
  down.pause();
  const up = connect({ host: '127.0.0.1', port: upPort, allowHalfOpen: true });
  up.setNoDelay(true);
  up.once('connect', () => {
    forward(down, up);
    forward(up, down);
    down.resume();
  });
  up.on('error', () => down.destroy());
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
