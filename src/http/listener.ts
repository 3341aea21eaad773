// The HTTP protocol's listener: the callers' server, the request handler, WebSocket tunnels and
// the forwarder with its pools, over the shared provider.
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { viaEntry } from './headers.js';
import type { Logger } from 'pino';
import { bound, closeServer, listen, type ListenAddress } from '../listen.js';
import type { ServiceProvider } from '../upstream/provider.js';
import type { Server as NetServer } from 'node:net';
import type { CallerResponse } from './exchange.js';
import type { Forwarder } from './forwarder.js';
import type { EngineResponse } from './wire/exchange.js';
import { createWireForwarder } from './wire/forwarder.js';
import { createEngineServer, type EngineServer } from './wire/server.js';
import { createRequestHandler, type HandlerOptions, type RequestDone } from './handler.js';
import { createHttpServer, type ServerOptions } from './server.js';
import { createUndiciForwarder, type UndiciForwarderOptions } from './undici-forwarder.js';
import { createWebSocketProxy } from './websocket.js';

export interface HttpListenerOptions extends HandlerOptions, ServerOptions, UndiciForwarderOptions {
  readonly listen: ListenAddress;
  /** `zkroute`: the wire engine (our parser, server and pools); `node`: Node's http + undici. */
  readonly httpEngine: 'zkroute' | 'node';
  readonly websocketIdleTimeoutMs: number;
}

export interface HttpListenerDeps {
  readonly provider: ServiceProvider;
  readonly logger: Logger;
  readonly onRequestDone?: (done: RequestDone) => void;
  /** A caller connection closed on arrival (over --max-client-connections). */
  readonly onDrop?: () => void;
}

export interface HttpListener {
  /** Binds the callers' port (shared by every worker in cluster mode). */
  listen(): Promise<void>;
  address(): { host: string; port: number };
  /** Closes the pools of addresses no service lists any more. */
  release(addresses: readonly string[]): void;
  /**
   * Drains: every answer closes its connection, no new connections, requests in flight finish
   * (up to the timeout, then connections are cut), then tunnels and pools go.
   */
  close(drainTimeoutMs: number): Promise<void>;
}

/** Builds the HTTP listener; call listen() to serve. */
export function createHttpListener(options: HttpListenerOptions, deps: HttpListenerDeps): HttpListener {
  const { logger, provider } = deps;
  const lookupFor = (port: number) => provider.lookupFor(port);
  const via = viaEntry(randomBytes(4).toString('hex'));
  const common = { provider, logger, via, ...(deps.onRequestDone ? { onRequestDone: deps.onRequestDone } : {}) };
  // Node's http + undici: the whole server with engine `node`; with engine `zkroute` only for
  // what the wire engine hands over (upgrades, CONNECT, HTTP/0.9 and 2.0 request lines).
  let draining = false;
  let listening = false;
  // Either engine's handler: while draining, every answer closes its connection so callers move on.
  const serving = <Req, Res extends CallerResponse>(handle: (req: Req, res: Res) => void) => (req: Req, res: Res) => {
    if (draining) res.setHeader('connection', 'close');
    handle(req, res);
  };
  const nodeForwarder = createUndiciForwarder({ ...options, lookupFor });
  const websocket = createWebSocketProxy({ ...options, idleTimeoutMs: options.websocketIdleTimeoutMs }, { provider, logger, via });
  const nodeServer: Server = createHttpServer(options, {
    request: serving(createRequestHandler(options, { ...common, forwarder: nodeForwarder })),
    upgrade: (req, socket, head) => websocket.handleUpgrade(req, socket, head),
    logger,
    ...(deps.onDrop ? { onDrop: deps.onDrop } : {}),
  });

  let engine: EngineServer | undefined;
  let wireForwarder: Forwarder<EngineResponse> | undefined;
  if (options.httpEngine === 'zkroute') {
    const forwarder = createWireForwarder({ ...options, lookupFor });
    wireForwarder = forwarder;
    engine = createEngineServer(options, {
      request: serving(createRequestHandler(options, { ...common, forwarder })),
      handOver(socket, bytes) {
        nodeServer.emit('connection', socket);
        // Node's server now listens for 'data': the message's bytes read so far go to it first.
        socket.emit('data', bytes);
      },
      logger,
      ...(deps.onDrop ? { onDrop: deps.onDrop } : {}),
    });
  }
  const server: NetServer = engine ? engine.server : nodeServer;
  const closeIdle = () => {
    engine?.closeIdleConnections();
    nodeServer.closeIdleConnections();
  };
  const closeAll = () => {
    engine?.closeAllConnections();
    nodeServer.closeAllConnections();
  };

  return {
    async listen() {
      await listen(server, options.listen, '--listen');
      listening = true;
      server.on('error', (err) => logger.error({ err }, 'server error'));
    },
    address: () => bound(server, options.listen),
    release(addresses) {
      nodeForwarder.release(addresses);
      wireForwarder?.release(addresses);
    },
    async close(drainTimeoutMs) {
      if (draining) return;
      draining = true;
      let finished: Promise<void> | undefined;
      if (listening) {
        finished = closeServer(server);
        // Idle keep-alive connections go now; busy ones as soon as their response is done.
        closeIdle();
        const sweep = setInterval(closeIdle, 50);
        const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), drainTimeoutMs).unref());
        const done = await Promise.race([finished.then(() => true), timeout]);
        clearInterval(sweep);
        if (!done) {
          logger.warn({ drainTimeoutMs }, 'drain timeout: closing connections still busy');
          closeAll();
        }
      }
      // WebSocket tunnels hold the listener open: they go after the drain wait.
      websocket.close();
      await finished;
      await Promise.all([nodeForwarder.close(), wireForwarder?.close()]);
    },
  };
}
