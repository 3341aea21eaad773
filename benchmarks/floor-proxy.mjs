// The floor for a Node proxy built like zkroute: Node's HTTP server and one undici Pool,
// dispatch callbacks straight into the response, and nothing else (no routing, discovery,
// health, retries, metrics or header rewriting beyond dropping Connection). zkroute's cost
// above this is its own code. Usage: node floor-proxy.mjs <port> <upstream host:port> <prefix>
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, upstream, prefix] = process.argv.slice(2);
const pool = new Pool(`http://${upstream}`, { connections: null, pipelining: 1 });
createServer((req, res) => {
  const headers = { ...req.headers };
  delete headers.connection;
  delete headers['keep-alive'];
  pool.dispatch({ path: req.url.slice(prefix.length), method: req.method, headers }, {
    onConnect() {},
    onHeaders(status, raw) {
      const out = [];
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i].toString('latin1');
        if (name.toLowerCase() !== 'connection' && name.toLowerCase() !== 'keep-alive') out.push(name, raw[i + 1].toString('latin1'));
      }
      res.writeHead(status, out);
      return true;
    },
    onData: (chunk) => res.write(chunk),
    onComplete: () => res.end(),
    onError: () => res.destroy(),
  });
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
