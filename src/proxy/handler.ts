import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Instance } from '../discovery/provider-table.js';
import { ProxyError, type ErrorCode } from '../errors.js';
import { Cancellation, CLIENT_GONE, DEADLINE_PASSED, type ForwardOutcome, type Forwarder } from './forwarder.js';
import { upstreamRequestHeaders } from './headers.js';
import type { Picker } from './picker.js';
import { prepareBody } from './request-body.js';
import { isRetryable } from './retry-policy.js';
import { parseRoute, routeError } from './route.js';

export interface HandlerOptions {
  /** Route prefix, e.g. `/svc`. */
  readonly prefix: string;
  readonly preserveHost: boolean;
  /** Retries after the first try, each on an instance not yet tried. */
  readonly retries: number;
  /** Largest request body held in memory so it can be re-sent. */
  readonly retryBufferBytes: number;
  /** Per-try limit on waiting for response headers. */
  readonly tryTimeoutMs: number;
  /** Overall limit, all tries included, until response headers. */
  readonly deadlineMs: number;
}

export interface HandlerDeps {
  readonly picker: Picker;
  readonly forwarder: Forwarder;
  readonly logger: Logger;
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
  readonly outcome: ForwardOutcome['kind'] | 'no_instance' | 'body_aborted' | ErrorCode;
}

/** Writes a JSON error, unless a response has already started (then the connection is cut). */
export function sendError(res: ServerResponse, error: ProxyError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed) return;
  const body = error.body();
  res.writeHead(error.status, error.headers(body));
  res.end(body);
}

/** The request handler: route, pick, forward, record, maybe retry. */
export function createRequestHandler(options: HandlerOptions, deps: HandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { picker, forwarder } = deps;
  const logger = deps.logger.child({ component: 'proxy' });

  /** Answers with an error before any try. Names a caller made up never become a metric label. */
  function reject(res: ServerResponse, error: ProxyError, labelService: string, method: string, startedAt: number): void {
    sendError(res, error);
    deps.onRequestDone?.({ service: labelService, method, status: error.status, tries: 0, durationMs: performance.now() - startedAt, outcome: error.code });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = performance.now();
    const method = req.method ?? 'GET';
    const route = parseRoute(req.url ?? '/', options.prefix);
    if (route.kind !== 'service') {
      reject(res, routeError(route, req.url ?? '', options.prefix)!, '', method, startedAt);
      return;
    }
    const { service } = route;
    // The common case (a watched service with instances) stays synchronous.
    const known = picker.knownInstances(service);
    const found = known ?? (await picker.instancesFor(service));
    if (found instanceof ProxyError) {
      reject(res, found, found.code === 'no_providers' ? service : '', method, startedAt);
      return;
    }

    const cancel = new Cancellation();
    const onClose = () => {
      if (!res.writableFinished) cancel.cancel(CLIENT_GONE);
    };
    res.on('close', onClose);
    let body;
    try {
      const prepared = prepareBody(req, options.retryBufferBytes);
      body = prepared instanceof Promise ? await prepared : prepared;
    } catch {
      deps.onRequestDone?.({ service, method, status: 0, tries: 0, durationMs: performance.now() - startedAt, outcome: 'body_aborted' });
      return;
    }
    const deadlineAt = startedAt + options.deadlineMs;
    const deadline = setTimeout(() => cancel.cancel(DEADLINE_PASSED), options.deadlineMs);
    const headers = upstreamRequestHeaders(req.headers, {
      peer: req.socket.remoteAddress,
      proto: 'http',
      prefix: route.prefix,
      host: req.headers.host ?? '',
    });
    const request = { method, path: route.upstreamPath, headers, body: body.body, tryTimeoutMs: options.tryTimeoutMs, cancel };

    const tried: Instance[] = [];
    let last: ForwardOutcome | undefined;
    let lastInstance: Instance | undefined;
    try {
      while (tried.length <= options.retries) {
        const remaining = deadlineAt - performance.now();
        if (remaining <= 0) {
          last = { kind: 'timeout', code: 'DEADLINE' };
          break;
        }
        const instance = picker.pick(service, tried);
        if (!instance) break;
        tried.push(instance);
        lastInstance = instance;
        if (!options.preserveHost) headers['host'] = instance.address;
        picker.begin(instance);
        const outcome = await forwarder.forward(remaining < options.tryTimeoutMs ? { ...request, tryTimeoutMs: Math.ceil(remaining) } : request, instance, res);
        picker.end(instance, outcome.kind);
        last = outcome;
        if (!isRetryable(outcome, method, body.replayable)) break;
        if (logger.isLevelEnabled('debug')) logger.debug({ service, instance: instance.address, outcome }, 'retrying on another instance');
      }
    } finally {
      clearTimeout(deadline);
      res.off('close', onClose);
    }

    if (!last) {
      // Every instance vanished between resolve and pick, or the deadline passed first.
      sendError(res, new ProxyError('no_providers', `service ${service} has no instance to try`, service));
    } else if (last.kind === 'timeout') {
      sendError(res, new ProxyError('upstream_timeout', `no response from ${service} within ${last.code === 'DEADLINE' ? `the ${options.deadlineMs} ms deadline` : `${options.tryTimeoutMs} ms`} (${tried.length} ${tried.length === 1 ? 'try' : 'tries'})`, service));
    } else if (last.kind === 'connect-failed' || last.kind === 'reset-before-response') {
      sendError(res, new ProxyError('upstream_unavailable', `every try for ${service} failed (${tried.length} ${tried.length === 1 ? 'try' : 'tries'}, last: ${last.kind} ${last.code})`, service));
    }
    if (deps.onRequestDone || logger.isLevelEnabled('debug')) {
      const done: RequestDone = {
        service,
        method,
        status: res.headersSent ? res.statusCode : 0,
        tries: tried.length,
        durationMs: performance.now() - startedAt,
        outcome: last?.kind ?? 'no_instance',
      };
      deps.onRequestDone?.(done);
      if (logger.isLevelEnabled('debug')) logger.debug({ ...done, instance: lastInstance?.address }, 'request');
    }
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'request handler failed');
      sendError(res, new ProxyError('internal_error', 'internal error in zkroute'));
    });
  };
}
