// Real HTTP upstreams on 127.0.0.1 port 0 that record what reached them.
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** Set once the request body was read in full. */
  body?: Buffer;
  /** Set when the proxy closed the request before it was answered. */
  closedAt?: number;
  readonly at: number;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void;

/**
 * The default behaviour: `/status/<code>` answers that code; `/hang` never answers; `/big?bytes=N`
 * streams N bytes; `/slow?ms=N` answers after N ms; anything else echoes the request as JSON with
 * a sha256 of its body. Every answer carries hop-by-hop headers the proxy must strip.
 */
export function echoHandler(name: string): UpstreamHandler {
  return (req, res, seen) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const hopByHop = { connection: 'X-Up-Secret', 'x-up-secret': '1', 'keep-alive': 'timeout=5', 'proxy-connection': 'keep-alive', 'x-upstream': name };
    if (url.pathname === '/hang') return;
    if (url.pathname.startsWith('/status/')) {
      res.writeHead(Number(url.pathname.slice(8)), hopByHop).end(name);
      return;
    }
    if (url.pathname === '/big') {
      const total = Number(url.searchParams.get('bytes'));
      const chunk = Buffer.alloc(64 * 1024, 'z');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upstream': name });
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
          sent += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.body = Buffer.concat(chunks);
      const reply = () => {
        if (res.destroyed) return;
        const body = JSON.stringify({ upstream: name, method: req.method, url: req.url, headers: req.headers, bodyLength: seen.body!.length, bodySha256: createHash('sha256').update(seen.body!).digest('hex') });
        res.writeHead(200, { ...hopByHop, 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] }).end(body);
      };
      const ms = Number(url.searchParams.get('ms') ?? 0);
      if (url.pathname === '/slow' && ms > 0) setTimeout(reply, ms);
      else reply();
    });
  };
}

/** One upstream server that can be killed and brought back on the same port. */
export class Upstream {
  readonly name: string;
  readonly host: string;
  readonly seen: SeenRequest[] = [];
  handler: UpstreamHandler;
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  #wss: WebSocketServer | undefined;
  port = 0;

  private constructor(name: string, handler: UpstreamHandler | undefined, host: string) {
    this.name = name;
    this.host = host;
    this.handler = handler ?? echoHandler(name);
  }

  /** Listens on `host` (127.0.0.1 unless given, e.g. ::1) and a free port. */
  static async start(name: string, handler?: UpstreamHandler, host = '127.0.0.1'): Promise<Upstream> {
    const upstream = new Upstream(name, handler, host);
    await upstream.listen();
    return upstream;
  }

  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /** Requests seen for a path prefix. */
  count(pathPrefix = '/'): number {
    return this.seen.filter((s) => s.url.startsWith(pathPrefix)).length;
  }

  async listen(port = this.port): Promise<void> {
    const server = createServer((req, res) => {
      const seen: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, at: Date.now() };
      this.seen.push(seen);
      res.once('close', () => {
        if (!res.writableFinished) seen.closedAt = Date.now();
      });
      this.handler(req, res, seen);
    });
    server.keepAliveTimeout = 5000;
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    // A WebSocket echo on every path: replies with `<name>:<message>`.
    this.#wss = new WebSocketServer({ server });
    this.#wss.on('connection', (ws, req) => {
      this.seen.push({ method: 'WS', url: req.url ?? '', headers: req.headers, at: Date.now() });
      ws.on('message', (data) => ws.send(`${this.name}:${data.toString()}`));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.host, () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stops listening and drops every connection at once (a crashed process, to callers). */
  async kill(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const client of this.#wss?.clients ?? []) client.terminate();
    this.#wss?.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  async close(): Promise<void> {
    await this.kill();
  }
}
