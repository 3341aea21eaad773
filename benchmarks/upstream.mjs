// The benchmark upstream: 200 with a 100-byte body (/small, and anything else) or 4 KiB (/4k).
// Plain JavaScript so it starts without a compiler. Usage: node upstream.mjs [port] (prints the port).
import { createServer } from 'node:http';

const small = Buffer.alloc(100, 'a');
const large = Buffer.alloc(4096, 'b');
const server = createServer((req, res) => {
  const body = req.url?.startsWith('/4k') ? large : small;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
