// An upstream in its own process, so a test can SIGSTOP it (the kernel still accepts TCP) or
// block its own process while this one answers. Prints its port on stdout; answers every
// request with 200, `x-upstream: <name>` and the name as body.
// Options: --delay=MS answers each request MS after it arrived; --announce prints
// `got <url>` on stdout as each request arrives (leave it off under load: nobody reads those).
import http from 'node:http';

const [name = 'child', ...flags] = process.argv.slice(2);
const delayMs = Number(flags.find((f) => f.startsWith('--delay='))?.slice('--delay='.length) ?? 0);
const announce = flags.includes('--announce');
const server = http.createServer((req, res) => {
  if (announce) process.stdout.write(`got ${req.url}\n`);
  req.resume();
  req.on('end', () => setTimeout(() => res.writeHead(200, { 'x-upstream': name, 'content-type': 'text/plain' }).end(name), delayMs));
});
server.keepAliveTimeout = 5000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('disconnect', () => process.exit(0));
