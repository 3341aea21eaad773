// An upstream in its own process, so a test can SIGSTOP it (the kernel still accepts TCP).
// Prints its port on stdout; answers every request with 200 and `x-upstream: <name>`.
import http from 'node:http';

const name = process.argv[2] ?? 'child';
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'x-upstream': name, 'content-type': 'text/plain' }).end(name));
});
server.keepAliveTimeout = 5000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('disconnect', () => process.exit(0));
