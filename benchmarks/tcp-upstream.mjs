// The TCP benchmark upstream: echoes what it gets (ping-pong, a request/response protocol like
// Thrift's), or, when a connection's first byte is "B", streams 64 KiB chunks until the caller
// goes (bulk). Plain JavaScript. Usage: node tcp-upstream.mjs [port] (prints the port).
import { createServer } from 'node:net';

const chunk = Buffer.alloc(64 * 1024, 'z');
const server = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  socket.once('data', (first) => {
    if (first[0] === 0x42) {
      const pump = () => {
        while (!socket.destroyed && socket.write(chunk));
        if (!socket.destroyed) socket.once('drain', pump);
      };
      pump();
      return;
    }
    socket.write(first);
    socket.on('data', (data) => socket.write(data));
  });
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
