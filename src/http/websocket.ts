import { Agent, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Logger } from 'pino';
import type { Instance } from '../discovery/provider-table.js';
import { ProxyError, resolutionError, triesError } from '../errors.js';
import { DEADLINE_CODE, outcomeOfSocketError, type TryOutcome } from '../outcome.js';
import { Cancellation, CLIENT_GONE, DEADLINE_PASSED } from '../upstream/cancellation.js';
import type { ServiceProvider } from '../upstream/provider.js';
import { runTries } from '../upstream/retry.js';
import { hasPassedThrough, upstreamRequestHeaders } from './headers.js';
import { parseRoute, routeError } from './route.js';

export interface WebSocketOptions {
  readonly prefix: string;
  readonly preserveHost: boolean;
  /** An established tunnel with no traffic either way for this long is closed. */
  readonly idleTimeoutMs: number;
  readonly noNormalizePath: boolean;
}

export interface WebSocketDeps {
  readonly provider: ServiceProvider;
  readonly logger: Logger;
  /** This process's Via entry (see viaEntry). */
  readonly via: string;
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

/**
 * WebSocket upgrades through http-proxy, routed and balanced like plain requests. Our wrapper
 * adds what http-proxy leaves out: error handlers on the proxy and both sockets, a connect and
 * handshake timeout, an idle timeout on the tunnel, and closing each side when the other goes.
 */
export function createWebSocketProxy(options: WebSocketOptions, deps: WebSocketDeps): WebSocketProxy {
  const { provider } = deps;
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
    const startedAt = performance.now();
    const route = parseRoute(req.url ?? '/', options.prefix, !options.noNormalizePath);
    if (route.kind !== 'service') return rejectUpgrade(socket, routeError(route, req.url ?? '', options.prefix)!);
    const { service } = route;
    if (hasPassedThrough(req.headers.via, deps.via)) return rejectUpgrade(socket, new ProxyError('loop_detected', `this handshake already passed through this proxy (Via: ${deps.via})`, service));
    if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
      return rejectUpgrade(socket, new ProxyError('bad_request', 'only WebSocket upgrades (GET, Upgrade: websocket) are proxied', service));
    }
    const resolved = resolutionError(service, await provider.resolve(service));
    if (resolved) return rejectUpgrade(socket, resolved);
    if (socket.destroyed) return;

    const incoming = req.headers;
    req.url = route.upstreamPath;
    const settings = provider.settings(service);
    const cancel = new Cancellation();
    socket.once('close', () => cancel.cancel(CLIENT_GONE));
    let answered = false;
    const answer = (last: TryOutcome | undefined, tries: number, instance: Instance | undefined) => {
      if (answered) return;
      answered = true;
      const error = triesError(service, last, tries, settings);
      if (!error) return;
      logger.debug({ service, instance: instance?.address, outcome: last }, 'websocket handshake failed');
      rejectUpgrade(socket, error);
    };
    // One try: http-proxy ends the client's socket when its upstream request fails. The
    // handshake is bounded by the service's --deadline; the upstream's answer by connect + try timeouts.
    const result = await runTries(provider, {
      service,
      retries: 0,
      deadlineMs: settings.deadlineMs,
      startedAt,
      cancel,
      attempt: (instance) => tunnel(req, incoming, socket, head, instance, route.prefix, cancel, settings.connectTimeoutMs + settings.tryTimeoutMs, (failed) => answer(failed, 1, instance)),
      retryable: () => false,
    });
    answer(result.last, result.tries, result.lastInstance);
  }

  /**
   * Proxies one handshake to `instance`; resolves with its outcome once answered or failed.
   * `onFailed` runs inside http-proxy's error callback: the caller can still be answered there,
   * before http-proxy ends the socket.
   */
  function tunnel(req: IncomingMessage, incoming: IncomingHttpHeaders, socket: Duplex, head: Buffer, instance: Instance, prefix: string, cancel: Cancellation, answerTimeoutMs: number, onFailed: (outcome: TryOutcome) => void): Promise<TryOutcome> {
    req.headers = upstreamRequestHeaders(incoming, {
      peer: req.socket.remoteAddress,
      proto: 'http',
      prefix,
      host: options.preserveHost ? incoming.host ?? instance.address : instance.address,
      upgrade: true,
      via: deps.via,
    });
    return new Promise<TryOutcome>((resolve) => {
      let settled = false;
      const settle = (outcome: TryOutcome): boolean => {
        if (settled) return false;
        settled = true;
        resolve(outcome);
        return true;
      };
      let timedOut = false;
      let upstreamReq: ClientRequest | undefined;
      cancel.onCancel((reason) => {
        settle(reason === DEADLINE_PASSED ? { kind: 'timeout', code: DEADLINE_CODE } : { kind: 'client-aborted', responseStarted: false });
        upstreamReq?.destroy();
      });
      pending.set(req, (proxyReq) => {
        upstreamReq = proxyReq;
        proxyReq.setTimeout(answerTimeoutMs, () => {
          timedOut = true;
          proxyReq.destroy(Object.assign(new Error('websocket handshake timed out'), { code: 'HANDSHAKE_TIMEOUT' }));
        });
        proxyReq.once('response', (upstream: IncomingMessage) => {
          // Not upgraded: http-proxy relays the answer; it counts like any response.
          const status = upstream.statusCode ?? 0;
          settle(status >= 500 ? { kind: 'upstream-5xx', status } : { kind: 'ok', status });
        });
        proxyReq.once('upgrade', (_res: IncomingMessage, upstreamSocket: Duplex) => {
          settle({ kind: 'ok', status: 101 });
          cancel.onCancel(undefined);
          proxyReq.setTimeout(0);
          upstreamSocket.on('error', (err) => logger.debug({ err, service: instance.service }, 'websocket upstream socket error'));
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
        const outcome: TryOutcome = timedOut ? { kind: 'timeout', code: 'HANDSHAKE_TIMEOUT' } : outcomeOfSocketError(err);
        if (settle(outcome)) onFailed(outcome);
      });
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
