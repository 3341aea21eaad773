// The HTTP protocol's listener: the callers' server, the request handler, WebSocket tunnels and
// the forwarder with its pools, over the shared provider.
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { viaEntry } from './headers.js';
import type { Logger } from 'pino';
import { bound, closeServer, listen, type ListenAddress } from '../listen.js';
import type { ServiceProvider } from '../upstream/provider.js';
import type { Forwarder } from './forwarder.js';
import { createRequestHandler, type HandlerOptions, type RequestDone } from './handler.js';
import { createHttpServer, type ServerOptions } from './server.js';
import { createUndiciForwarder, type UndiciForwarderOptions } from './undici-forwarder.js';
import { createWebSocketProxy } from './websocket.js';

export interface HttpListenerOptions extends HandlerOptions, ServerOptions, UndiciForwarderOptions {
  readonly listen: ListenAddress;
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
  const forwarder: Forwarder = createUndiciForwarder({ ...options, lookupFor: (port) => provider.lookupFor(port) });
  const via = viaEntry(randomBytes(4).toString('hex'));
  const handler = createRequestHandler(options, { provider, forwarder, logger, via, ...(deps.onRequestDone ? { onRequestDone: deps.onRequestDone } : {}) });
  const websocket = createWebSocketProxy({ ...options, idleTimeoutMs: options.websocketIdleTimeoutMs }, { provider, logger, via });

  let draining = false;
  let listening = false;
  const server: Server = createHttpServer(options, {
    request: (req, res) => {
      // While draining, every answer closes its connection so callers move on.
      if (draining) res.setHeader('connection', 'close');
      handler(req, res);
    },
    upgrade: (req, socket, head) => websocket.handleUpgrade(req, socket, head),
    logger,
    ...(deps.onDrop ? { onDrop: deps.onDrop } : {}),
  });

  return {
    async listen() {
      await listen(server, options.listen, '--listen');
      listening = true;
      server.on('error', (err) => logger.error({ err }, 'server error'));
    },
    address: () => bound(server, options.listen),
    release: (addresses) => forwarder.release(addresses),
    async close(drainTimeoutMs) {
      if (draining) return;
      draining = true;
      let finished: Promise<void> | undefined;
      if (listening) {
        finished = closeServer(server);
        // Idle keep-alive connections go now; busy ones as soon as their response is done.
        server.closeIdleConnections();
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), drainTimeoutMs).unref());
        const done = await Promise.race([finished.then(() => true), timeout]);
        clearInterval(sweep);
        if (!done) {
          logger.warn({ drainTimeoutMs }, 'drain timeout: closing connections still busy');
          server.closeAllConnections();
        }
      }
      // WebSocket tunnels hold the listener open: they go after the drain wait.
      websocket.close();
      await finished;
      await forwarder.close();
    },
  };
}
