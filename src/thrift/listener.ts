// The Thrift protocol's listeners (`--thrift LISTEN=SERVICE`): each call from a caller's
// connection is balanced on its own over the shared provider and retry loop, sent on a pooled
// upstream connection in the caller's own transport and protocol, and its reply written back.
import { createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Instance } from '../discovery/provider-table.js';
import { resolutionError, triesError } from '../errors.js';
import { routeServers, type BoundRoute, type ServiceRoute } from '../listen.js';
import { DEADLINE_CODE, type TryOutcome } from '../outcome.js';
import { Cancellation, CLIENT_GONE } from '../upstream/cancellation.js';
import type { ServiceProvider } from '../upstream/provider.js';
import { mayRetry, runTries } from '../upstream/retry.js';
import {
  APPLICATION_EXCEPTION, detectFormat, encodeApplicationException, MESSAGE_TYPE, readMessage,
  type ThriftFormat, type ThriftLimits, type ThriftMessage, type ThriftRejectReason,
} from './codec.js';
import { UpstreamPool } from './pool.js';

export interface ThriftListenerOptions {
  readonly routes: readonly ServiceRoute[];
  readonly maxMessageBytes: number;
  /** Methods that may be retried after a reset or a timeout. */
  readonly idempotent: readonly string[];
  /** Calls in flight to one instance at most, each on its own upstream connection; more: `overloaded`. */
  readonly maxConnectionsPerInstance: number;
}

/** How a call ended, as counted in zkroute_thrift_calls_total. */
export type ThriftCallOutcome = 'ok' | 'exception' | 'oneway' | 'upstream_unavailable' | 'upstream_timeout' | 'no_providers' | 'unknown_service' | 'discovery_unavailable' | 'client_gone' | 'overloaded';

export interface ThriftServiceStats {
  /** Calls by method (at most METHOD_LABELS names, the rest `other`) and outcome. */
  readonly calls: Map<string, Map<ThriftCallOutcome, number>>;
  readonly rejected: Map<ThriftRejectReason, number>;
}

/** Distinct method names counted per service; the rest are `other`. */
export const METHOD_LABELS = 200;

export interface ThriftListenerDeps {
  readonly provider: ServiceProvider;
  readonly logger: Logger;
  /** Every call that reached a service (metrics hook: the latency histogram). */
  readonly onCall?: (service: string, method: string, outcome: ThriftCallOutcome, durationMs: number) => void;
}

export interface ThriftListeners {
  listen(): Promise<void>;
  addresses(): BoundRoute[];
  stats(): ReadonlyMap<string, ThriftServiceStats>;
  /** Upstream connections open now, over every instance. */
  upstreamConnections(): number;
  /** Connections open now to one instance (idle or carrying a call). */
  openConnections(instance: Instance): number;
  /** Closes the pooled connections of addresses no service lists any more. */
  release(addresses: readonly string[]): void;
  /** Stops accepting; each caller connection closes once its calls in flight are answered (bounded). */
  close(drainTimeoutMs: number): Promise<void>;
}

export function createThriftListeners(options: ThriftListenerOptions, deps: ThriftListenerDeps): ThriftListeners {
  const logger = deps.logger.child({ component: 'thrift' });
  const limits: ThriftLimits = { maxMessageBytes: options.maxMessageBytes, maxDepth: 64 };
  const pool = new UpstreamPool({ limits });
  const idempotent = new Set(options.idempotent);
  const stats = new Map<string, ThriftServiceStats>();
  const callers = new Set<CallerConnection>();
  let draining = false;

  function statsOf(service: string): ThriftServiceStats {
    let s = stats.get(service);
    if (!s) stats.set(service, (s = { calls: new Map(), rejected: new Map() }));
    return s;
  }

  /** One caller's connection: its format, the bytes of a call not yet whole, its calls in flight. */
  class CallerConnection {
    readonly #socket: Socket;
    readonly #service: string;
    readonly #stats: ThriftServiceStats;
    #buffer: Buffer = Buffer.alloc(0);
    #format: ThriftFormat | undefined;
    #inFlight = 0;
    #gone = false;
    readonly #cancels = new Set<Cancellation>();

    constructor(socket: Socket, service: string) {
      this.#socket = socket;
      this.#service = service;
      this.#stats = statsOf(service);
      socket.setNoDelay(true);
      socket.on('data', (chunk: Buffer) => this.#onData(chunk));
      socket.on('error', () => {});
      socket.once('close', () => {
        this.#gone = true;
        for (const cancel of this.#cancels) cancel.cancel(CLIENT_GONE);
        callers.delete(this);
      });
    }

    get idle(): boolean {
      return this.#inFlight === 0;
    }

    end(): void {
      this.#socket.end();
    }

    destroy(): void {
      this.#socket.destroy();
    }

    #onData(chunk: Buffer): void {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      for (;;) {
        if (!this.#format) {
          const detected = detectFormat(this.#buffer);
          if (detected.kind === 'need-more') return;
          if (detected.kind === 'rejected') return this.#reject(detected.reason, detected.detail);
          this.#format = detected.format;
        }
        const read = readMessage(this.#buffer, this.#format, limits);
        if (read.kind === 'need-more') return;
        if (read.kind === 'rejected') return this.#reject(read.reason, read.detail);
        const { message } = read;
        if (message.type !== MESSAGE_TYPE.call && message.type !== MESSAGE_TYPE.oneway) return this.#reject('malformed', `a message of type ${message.type} from a caller`);
        // A view, not a copy: received chunks are never written to.
        const bytes = this.#buffer.subarray(0, message.length);
        this.#buffer = this.#buffer.subarray(message.length);
        void this.#call(bytes, message, this.#format);
        if (this.#buffer.length === 0) return;
      }
    }

    /** Unusable bytes: the connection is closed, the reason counted and logged once. */
    #reject(reason: ThriftRejectReason, detail: string): void {
      this.#stats.rejected.set(reason, (this.#stats.rejected.get(reason) ?? 0) + 1);
      logger.info({ service: this.#service, reason, detail }, 'thrift caller refused: connection closed');
      this.#buffer = Buffer.alloc(0);
      this.#socket.destroy();
    }

    async #call(request: Buffer, message: ThriftMessage, fmt: ThriftFormat): Promise<void> {
      const startedAt = performance.now();
      const oneway = message.type === MESSAGE_TYPE.oneway;
      const service = this.#service;
      this.#inFlight += 1;
      const cancel = new Cancellation();
      this.#cancels.add(cancel);
      let outcome: ThriftCallOutcome;
      try {
        const { provider } = deps;
        const resolved = provider.known(service) ? undefined : resolutionError(service, await provider.resolve(service));
        if (resolved) {
          outcome = resolved.code as ThriftCallOutcome;
          this.#answer(oneway ? undefined : encodeApplicationException(fmt, message.name, message.seqid, APPLICATION_EXCEPTION.internalError, `zkroute: ${resolved.code}: ${resolved.message}`));
          return;
        }
        let reply: Buffer | undefined;
        const retryableAfterSend = idempotent.has(message.name);
        // The settings in force when the call arrived (a reload applies from the next call).
        const settings = provider.settings(service);
        const result = await runTries(provider, {
          service,
          retries: settings.retries,
          deadlineMs: settings.deadlineMs,
          startedAt,
          cancel,
          attempt: async (instance, remainingMs): Promise<TryOutcome> => {
            // One call per upstream connection: calls in flight to it are its connections (this one counted).
            const calls = provider.inFlight(instance);
            if (calls > options.maxConnectionsPerInstance) {
              return { kind: 'overloaded', code: `${calls - 1} calls in flight (--max-connections-per-instance ${options.maxConnectionsPerInstance})` };
            }
            const tryStartedAt =performance.now();
            const conn = await pool.acquire(instance, fmt, Math.min(settings.connectTimeoutMs, remainingMs), cancel, provider.lookupFor(instance.port));
            if (!('exchange' in conn)) return conn;
            // The reply wait: the per-try limit, or what is left of the deadline (then a deadline timeout).
            const left = remainingMs - (performance.now() - tryStartedAt);
            const exchanged = await conn.exchange(request, oneway, Math.min(settings.tryTimeoutMs, left), cancel, left < settings.tryTimeoutMs ? DEADLINE_CODE : 'THRIFT_REPLY_TIMEOUT');
            if (exchanged.kind === 'failed') return exchanged.outcome;
            pool.release(conn);
            if (exchanged.kind === 'sent') return { kind: 'ok', status: 0 };
            reply = exchanged.bytes;
            // A TApplicationException is the instance's failure status (it counts toward ejection).
            return exchanged.message.type === MESSAGE_TYPE.exception ? { kind: 'upstream-5xx', status: 0 } : { kind: 'ok', status: 0 };
          },
          retryable: (o) => mayRetry(o, { idempotent: retryableAfterSend, replayable: true }),
          // The connect and the reply wait are each bounded by the time left.
          selfBounded: true,
        });
        if (reply) {
          outcome = result.last?.kind === 'upstream-5xx' ? 'exception' : 'ok';
          this.#answer(reply);
          return;
        }
        if (oneway && result.last?.kind === 'ok') {
          outcome = 'oneway';
          return;
        }
        if (result.last?.kind === 'client-aborted') {
          outcome = 'client_gone';
          return;
        }
        const error = triesError(service, result.last, result.tries, settings);
        outcome = (error?.code ?? 'upstream_unavailable') as ThriftCallOutcome;
        logger.debug({ service, method: message.name, outcome: result.last, tries: result.tries }, 'thrift call failed');
        this.#answer(oneway ? undefined : encodeApplicationException(fmt, message.name, message.seqid, APPLICATION_EXCEPTION.internalError, `zkroute: ${outcome}: ${error?.message ?? 'the call failed'}`));
      } finally {
        this.#cancels.delete(cancel);
        this.#inFlight -= 1;
        const method = this.#count(message.name, outcome!);
        deps.onCall?.(service, method, outcome!, performance.now() - startedAt);
        if (draining && this.#inFlight === 0) this.end();
      }
    }

    #answer(bytes: Buffer | undefined): void {
      if (bytes && !this.#gone) this.#socket.write(bytes);
    }

    /** Counts the call under its method, or `other` past METHOD_LABELS names; returns the label. */
    #count(method: string, outcome: ThriftCallOutcome): string {
      const calls = this.#stats.calls;
      const label = calls.has(method) || calls.size < METHOD_LABELS ? method : 'other';
      let byOutcome = calls.get(label);
      if (!byOutcome) calls.set(label, (byOutcome = new Map()));
      byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
      return label;
    }
  }

  const servers = routeServers('thrift', options.routes, (route) => {
    statsOf(route.service);
    return createServer((socket) => {
      if (draining) {
        socket.destroy();
        return;
      }
      callers.add(new CallerConnection(socket, route.service));
    });
  }, (err, listener) => logger.error({ err, listener }, 'thrift server error'));

  return {
    listen: () => servers.listen(),
    addresses: () => servers.addresses(),
    stats: () => stats,
    upstreamConnections: () => pool.size,
    openConnections: (instance) => pool.openTo(instance.address),
    release: (addresses) => pool.forget(addresses),
    async close(drainTimeoutMs) {
      draining = true;
      const closing = servers.close();
      for (const caller of callers) if (caller.idle) caller.end();
      const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), drainTimeoutMs).unref());
      if (!(await Promise.race([closing.then(() => true), timeout])) && callers.size > 0) {
        logger.warn({ drainTimeoutMs, open: callers.size }, 'drain timeout: closing thrift connections still busy');
      }
      for (const caller of callers) caller.destroy();
      await closing;
      pool.close();
    },
  };
}
