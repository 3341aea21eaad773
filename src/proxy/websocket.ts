import { Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';
import { CONNECT_ERRORS, type ForwardOutcome } from './forwarder.js';
import { upstreamRequestHeaders } from './headers.js';
import type { Picker } from './picker.js';
import { parseRoute, routeError } from './route.js';

export interface WebSocketOptions {
  readonly prefix: string;
  readonly preserveHost: boolean;
  readonly connectTimeoutMs: number;
  /** Limit on the upstream's handshake answer. */
  readonly tryTimeoutMs: number;
  /** An established tunnel with no traffic either way for this long is closed. */
  readonly idleTimeoutMs: number;
}

export interface WebSocketDeps {
  readonly picker: Picker;
  readonly logger: Logger;
}

export interface WebSocketProxy {
  /** The server's `upgrade` listener. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes every tunnel and the upstream agent. */
  close(): void;
}

/** Answers a handshake that cannot be proxied with a JSON error and closes the socket. */
function rejectUpgrade(socket: Duplex, error: ProxyError): void {
  if (socket.writable) socket.end(error.rawResponse());
  else socket.destroy();
}

function outcomeOf(err: Error & { code?: string }, timedOut: boolean): ForwardOutcome {
  if (timedOut) return { kind: 'timeout', code: 'HANDSHAKE_TIMEOUT' };
  const code = err.code ?? 'UNKNOWN';
  if (CONNECT_ERRORS.has(code)) return { kind: 'connect-failed', code };
  return { kind: 'reset-before-response', code };
}

/**
 * WebSocket upgrades through http-proxy, routed and balanced like plain requests. Our wrapper
 * adds what http-proxy leaves out: error handlers on the proxy and both sockets, a connect and
 * handshake timeout, an idle timeout on the tunnel, and closing each side when the other goes.
 */
export function createWebSocketProxy(options: WebSocketOptions, deps: WebSocketDeps): WebSocketProxy {
  const logger = deps.logger.child({ component: 'websocket' });
  const agent = new Agent({ keepAlive: true });
  const proxy = httpProxy.createProxyServer({ ws: true, agent, prependPath: false, xfwd: false, changeOrigin: false });
  // Without a listener http-proxy re-throws; every error is also handled per request below.
  proxy.on('error', (err) => logger.debug({ err }, 'websocket proxy error'));
  // One listener for every handshake: each request registers what to do with its upstream request.
  const pending = new WeakMap<IncomingMessage, (proxyReq: ClientRequest) => void>();
  proxy.on('proxyReqWs', (proxyReq: ClientRequest, req: IncomingMessage) => {
    const setup = pending.get(req);
    pending.delete(req);
    setup?.(proxyReq);
  });

  async function handle(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const route = parseRoute(req.url ?? '/', options.prefix);
    if (route.kind !== 'service') return rejectUpgrade(socket, routeError(route, req.url ?? '', options.prefix)!);
    const { service } = route;
    if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
      return rejectUpgrade(socket, new ProxyError('bad_request', 'only WebSocket upgrades (GET, Upgrade: websocket) are proxied', service));
    }
    const found = await deps.picker.instancesFor(service);
    if (found instanceof ProxyError) return rejectUpgrade(socket, found);
    const instance = deps.picker.pick(service, []);
    if (!instance) return rejectUpgrade(socket, new ProxyError('no_providers', `service ${service} has no instance to try`, service));
    if (socket.destroyed) return;

    req.headers = upstreamRequestHeaders(req.headers, {
      peer: req.socket.remoteAddress,
      proto: 'http',
      prefix: route.prefix,
      host: options.preserveHost ? req.headers.host ?? instance.address : instance.address,
      upgrade: true,
    });
    req.url = route.upstreamPath;

    let settled = false;
    let timedOut = false;
    const settle = (outcome: ForwardOutcome) => {
      if (settled) return;
      settled = true;
      deps.picker.end(instance, outcome.kind);
    };
    deps.picker.begin(instance);
    socket.once('close', () => settle({ kind: 'client-aborted', responseStarted: false }));

    pending.set(req, (proxyReq) => {
      proxyReq.setTimeout(options.connectTimeoutMs + options.tryTimeoutMs, () => {
        timedOut = true;
        proxyReq.destroy(Object.assign(new Error('websocket handshake timed out'), { code: 'HANDSHAKE_TIMEOUT' }));
      });
      socket.once('close', () => proxyReq.destroy());
      proxyReq.once('response', (upstream: IncomingMessage) => {
        // Not upgraded: http-proxy relays the answer; it counts like any response.
        const status = upstream.statusCode ?? 0;
        settle(status >= 500 ? { kind: 'upstream-5xx', status } : { kind: 'ok', status });
      });
      proxyReq.once('upgrade', (_res: IncomingMessage, upstreamSocket: Duplex) => {
        settle({ kind: 'ok', status: 101 });
        proxyReq.setTimeout(0);
        upstreamSocket.on('error', (err) => logger.debug({ err, service }, 'websocket upstream socket error'));
        upstreamSocket.once('close', () => socket.destroy());
        socket.once('close', () => upstreamSocket.destroy());
        // http-proxy clears socket timeouts right after this listener; set ours after it.
        setImmediate(() => {
          for (const side of [socket, upstreamSocket] as const) {
            (side as Duplex & { setTimeout(ms: number, cb: () => void): void }).setTimeout(options.idleTimeoutMs, () => side.destroy());
          }
        });
      });
    });
    proxy.ws(req, socket, head, { target: `http://${instance.address}` }, (err: Error) => {
      pending.delete(req);
      const outcome = outcomeOf(err, timedOut);
      const alreadySettled = settled;
      settle(outcome);
      if (alreadySettled) return;
      logger.debug({ err, service, instance: instance.address }, 'websocket handshake failed');
      rejectUpgrade(socket, outcome.kind === 'timeout'
        ? new ProxyError('upstream_timeout', `no handshake answer from ${service} within ${options.tryTimeoutMs} ms`, service)
        : new ProxyError('upstream_unavailable', `websocket to ${service} failed (${outcome.kind} ${'code' in outcome ? outcome.code : ''})`, service));
    });
  }

  const sockets = new Set<Duplex>();
  return {
    handleUpgrade(req, socket, head) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      // Node removes its own socket error handler before 'upgrade': an unhandled one would crash.
      socket.on('error', (err) => logger.debug({ err }, 'websocket client socket error'));
      handle(req, socket, head).catch((err: unknown) => {
        logger.error({ err }, 'websocket handler failed');
        socket.destroy();
      });
    },
    close() {
      for (const socket of sockets) socket.destroy();
      proxy.close();
      agent.destroy();
    },
  };
}
