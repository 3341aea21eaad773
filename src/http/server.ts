import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';

export interface ServerOptions {
  /** Time a caller has to send the request headers; then 408. */
  readonly headerTimeoutMs: number;
  /** Idle keep-alive connections from callers are closed after this. */
  readonly clientIdleTimeoutMs: number;
  /** Caller connections open at once; more are closed as they arrive (counted by `onDrop`). */
  readonly maxClientConnections: number;
}

export interface ServerHandlers {
  readonly request: (req: IncomingMessage, res: ServerResponse) => void;
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly logger: Logger;
  /** A caller connection closed at once because --max-client-connections were open. */
  readonly onDrop?: () => void;
}

// What a caller's malformed, slow or oversized request is answered with, on either engine.
export const headersTooLarge = () => new ProxyError('headers_too_large', 'request headers are larger than the server accepts');
export const requestTimedOut = () => new ProxyError('request_timeout', 'request headers or body did not arrive in time');
export const malformedRequest = (code: string) => new ProxyError('bad_request', `malformed HTTP request (${code})`);

function clientErrorFor(err: Error & { code?: string }): ProxyError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return headersTooLarge();
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return requestTimedOut();
    default:
      return malformedRequest(err.code ?? 'parse error');
  }
}

/**
 * The caller-facing HTTP server: Node's strict parser (no insecureHTTPParser), header and idle
 * timeouts checked every second, and JSON answers for requests the parser rejects.
 */
export function createHttpServer(options: ServerOptions, handlers: ServerHandlers): Server {
  const server = createServer({
    insecureHTTPParser: false,
    headersTimeout: options.headerTimeoutMs,
    // Whole-request limit for the caller's side; must not be below the header limit.
    requestTimeout: Math.max(300_000, options.headerTimeoutMs),
    keepAliveTimeout: options.clientIdleTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, options.headerTimeoutMs),
  });
  server.maxConnections = options.maxClientConnections;
  server.on('drop', () => handlers.onDrop?.());
  server.on('request', handlers.request);
  server.on('upgrade', handlers.upgrade);
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    const error = clientErrorFor(err);
    handlers.logger.debug({ code: err.code, status: error.status }, 'rejected a malformed request');
    socket.end(error.rawResponse());
  });
  return server;
}
