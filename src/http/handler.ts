import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Instance } from '../discovery/provider-table.js';
import { ProxyError, resolutionError, triesError, type ErrorCode } from '../errors.js';
import type { OutcomeKind } from '../outcome.js';
import { Cancellation, CLIENT_GONE } from '../upstream/cancellation.js';
import type { ServiceProvider } from '../upstream/provider.js';
import { runTries } from '../upstream/retry.js';
import { parseSubset, type SubsetMatch } from '../upstream/subset.js';
import type { CallerRequest, CallerResponse } from './exchange.js';
import type { ForwardRequest, Forwarder } from './forwarder.js';
import { hasPassedThrough, upstreamRequestHeaders } from './headers.js';
import { prepareBody, type PreparedBody } from './request-body.js';
import { isRetryable } from './retry-policy.js';
import { parseRoute, routeError } from './route.js';

export interface HandlerOptions {
  /** Route prefix, e.g. `/svc`. */
  readonly prefix: string;
  readonly preserveHost: boolean;
  /** Largest request body held in memory so it can be re-sent. */
  readonly retryBufferBytes: number;
  /** `--no-normalize-path`: forward dot segments as sent. */
  readonly noNormalizePath: boolean;
  /** Connections one instance's pool may open (requests beyond wait for one). */
  readonly maxConnectionsPerInstance: number;
  /** Requests that may wait for a connection to one instance; beyond: 503 overloaded. */
  readonly maxPending: number;
  /** The request header naming a subset of instances by metadata (`key=value[,...]`); '' : none. */
  readonly subsetHeader?: string;
  /** No instance matches the subset: any instance, or 503 no_matching_instances. */
  readonly subsetFallback?: 'any' | 'fail';
  /** Forward the subset header upstream (default: removed). */
  readonly subsetHeaderForward?: boolean;
  /** Count request and response bytes for `RequestDone` now (the access log is on); else they are 0. Asked per request. */
  readonly countBytes?: () => boolean;
}

export interface HandlerDeps<Res extends CallerResponse> {
  readonly provider: ServiceProvider;
  readonly forwarder: Forwarder<Res>;
  readonly logger: Logger;
  /** This process's Via entry (see viaEntry): appended upstream; a request carrying it is a loop. */
  readonly via: string;
  /** Called once per request that reached a service (metrics hook). */
  readonly onRequestDone?: (done: RequestDone) => void;
}

/** What one routed request came to. */
export interface RequestDone {
  readonly service: string;
  readonly method: string;
  readonly status: number;
  readonly tries: number;
  readonly durationMs: number;
  readonly outcome: OutcomeKind | 'no_instance' | 'body_aborted' | ErrorCode;
  /** The request target as the caller sent it (the access log strips the query). */
  readonly url?: string;
  /** The instance of the last try. */
  readonly instance?: string;
  /** Request body bytes received, and bytes written to the caller (head included). */
  readonly bytesIn?: number;
  readonly bytesOut?: number;
  /** The error code answered, if the proxy answered one. */
  readonly error?: ErrorCode;
}

/** Writes a JSON error, unless a response has already started (then the connection is cut). */
export function sendError(res: CallerResponse, error: ProxyError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed) return;
  const body = error.body();
  res.writeHead(error.status, error.headers(body));
  res.end(body);
}

/** The request handler: route -> resolve -> body -> try instances -> answer. */
export function createRequestHandler<Res extends CallerResponse>(options: HandlerOptions, deps: HandlerDeps<Res>): (req: CallerRequest, res: Res) => void {
  const { provider, forwarder } = deps;
  const logger = deps.logger.child({ component: 'proxy' });
  const debug = () => logger.isLevelEnabled('debug');
  const countBytes = options.countBytes ?? (() => false);
  // Read only when someone counts: the getter walks the socket's write queue.
  const bytesWritten = (res: CallerResponse) => (countBytes() ? res.socket?.bytesWritten ?? 0 : 0);

  function done(record: RequestDone, instance?: Instance): void {
    deps.onRequestDone?.(record);
    if (debug()) logger.debug({ ...record, instance: instance?.address }, 'request');
  }

  /** Answers with an error before any try. Names a caller made up never become a metric label. */
  function reject(req: CallerRequest, res: Res, error: ProxyError, labelService: string, method: string, startedAt: number): void {
    const before = bytesWritten(res);
    sendError(res, error);
    deps.onRequestDone?.({ service: labelService, method, status: error.status, tries: 0, durationMs: performance.now() - startedAt, outcome: error.code, url: req.url ?? '', bytesIn: 0, bytesOut: bytesWritten(res) - before, error: error.code });
  }

  async function handle(req: CallerRequest, res: Res): Promise<void> {
    const startedAt = performance.now();
    const writtenBefore = bytesWritten(res);
    const method = req.method ?? 'GET';

    const route = parseRoute(req.url ?? '/', options.prefix, !options.noNormalizePath);
    if (route.kind !== 'service') return reject(req, res, routeError(route, req.url ?? '', options.prefix)!, '', method, startedAt);
    const { service } = route;
    if (req.headers.via !== undefined && hasPassedThrough(req.headers.via, deps.via)) {
      return reject(req, res, new ProxyError('loop_detected', `this request already passed through this proxy (Via: ${deps.via}): an instance of ${service} points back at it`, service), '', method, startedAt);
    }

    // The common case (a watched service with instances) stays synchronous.
    if (!provider.known(service)) {
      const error = resolutionError(service, await provider.resolve(service));
      if (error) return reject(req, res, error, error.code === 'no_providers' ? service : '', method, startedAt);
    }

    // A subset by header: only instances whose metadata match (checked against the set now).
    let subset: SubsetMatch | undefined;
    const subsetText = options.subsetHeader ? req.headers[options.subsetHeader] : undefined;
    if (typeof subsetText === 'string') {
      const parsed = parseSubset(subsetText);
      if (typeof parsed !== 'function') return reject(req, res, new ProxyError('bad_request', `${options.subsetHeader}: ${parsed.problem}`, service), service, method, startedAt);
      if ((provider.known(service) ?? []).some(parsed)) subset = parsed;
      else if (options.subsetFallback === 'fail') return reject(req, res, new ProxyError('no_matching_instances', `no instance of ${service} has metadata matching ${options.subsetHeader}: ${subsetText.slice(0, 200)}`, service), service, method, startedAt);
    }

    const cancel = new Cancellation();
    const onClose = () => {
      if (!res.writableFinished) cancel.cancel(CLIENT_GONE);
    };
    res.on('close', onClose);
    let body: PreparedBody;
    try {
      const prepared = prepareBody(req, options.retryBufferBytes, countBytes());
      body = prepared instanceof Promise ? await prepared : prepared;
    } catch {
      res.off('close', onClose);
      return done({ service, method, status: 0, tries: 0, durationMs: performance.now() - startedAt, outcome: 'body_aborted', url: req.url ?? '' });
    }

    const headers = upstreamRequestHeaders(req.headers, { peer: req.socket.remoteAddress, proto: 'http', prefix: route.prefix, host: req.headers.host ?? '', via: deps.via });
    if (subsetText !== undefined && !options.subsetHeaderForward) delete headers[options.subsetHeader!];
    // The settings in force when the request arrived (a reload applies from the next one).
    const settings = provider.settings(service);
    const request: ForwardRequest = { method, path: route.upstreamPath, headers, body: body.body, tryTimeoutMs: settings.tryTimeoutMs, connectTimeoutMs: settings.connectTimeoutMs, cancel };
    const result = await runTries(provider, {
      service,
      retries: settings.retries,
      deadlineMs: settings.deadlineMs,
      startedAt,
      cancel,
      selfBounded: forwarder.selfBounded,
      ...(subset ? { subset } : {}),
      attempt(instance, remainingMs) {
        // This try is counted in flight already: more than the connections plus the queue is too many.
        const inFlight = provider.inFlight(instance);
        if (inFlight > options.maxConnectionsPerInstance + options.maxPending) {
          return Promise.resolve({ kind: 'overloaded', code: `${inFlight - 1} requests in flight (${options.maxConnectionsPerInstance} connections, ${options.maxPending} pending)` });
        }
        if (!options.preserveHost) headers['host'] = instance.address;
        return forwarder.forward(remainingMs < settings.tryTimeoutMs ? { ...request, tryTimeoutMs: Math.ceil(remainingMs), deadlineBound: true } : request, instance, res);
      },
      retryable: (outcome) => isRetryable(outcome, method, body.replayable),
      onRetry(instance, outcome) {
        if (debug()) logger.debug({ service, instance: instance.address, outcome }, 'retrying on another instance');
      },
    });
    res.off('close', onClose);

    const error = triesError(service, result.last, result.tries, settings);
    if (error) sendError(res, error);
    if (deps.onRequestDone || debug()) {
      const bytesIn = body.body === null ? 0 : Buffer.isBuffer(body.body) ? body.body.length : body.streamedBytes();
      done({
        service, method, status: res.headersSent ? res.statusCode : 0, tries: result.tries, durationMs: performance.now() - startedAt, outcome: result.last?.kind ?? 'no_instance',
        url: req.url ?? '', ...(result.lastInstance ? { instance: result.lastInstance.address } : {}), bytesIn, bytesOut: bytesWritten(res) - writtenBefore, ...(error ? { error: error.code } : {}),
      }, result.lastInstance);
    }
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'request handler failed');
      sendError(res, new ProxyError('internal_error', 'internal error in zkroute'));
    });
  };
}
