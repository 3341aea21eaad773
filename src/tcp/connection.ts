// One caller's TCP connection: resolve the service, connect to an instance through the shared
// provider and retry loop (a connect failure tries another instance), then splice the two
// sockets until both sides are done.
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Instance } from '../discovery/provider-table.js';
import { resolutionError } from '../errors.js';
import { errorCode, type TryOutcome } from '../outcome.js';
import { Cancellation, CLIENT_GONE } from '../upstream/cancellation.js';
import { connectInstance } from '../upstream/connect.js';
import type { ServiceProvider } from '../upstream/provider.js';
import { mayRetry, runTries } from '../upstream/retry.js';
import type { TcpConnectionOutcome, TcpServiceStats } from './stats.js';

/** Bytes a caller may send before its instance is connected; then reading pauses. */
export const HOLD_BYTES = 64 * 1024;

export interface TcpConnectionOptions {
  /** Connections open to one instance at most (--max-connections-per-instance). */
  readonly maxConnectionsPerInstance: number;
}

export interface TcpConnectionContext {
  readonly options: TcpConnectionOptions;
  readonly provider: ServiceProvider;
  readonly logger: Logger;
  readonly stats: TcpServiceStats;
  /** Open connections per instance uid (for /providers). */
  readonly open: Map<string, number>;
  /** A caller refused: logged at debug here; the listener rate-limits a warning per service. */
  readonly onRefused: (service: string, outcome: TcpConnectionOutcome, detail: string) => void;
  readonly onConnected?: (service: string, connectMs: number) => void;
  /** Registers a connected pair with the idle sweep; bump `bytes` on traffic, call `done` at the end. */
  readonly track: (down: Socket, up: Socket) => { bytes: number; done(): void };
}

// A connect failure sent nothing: any connection may go on to another instance.
const CONNECT_ONLY = { idempotent: false, replayable: true } as const;

/** Proxies `caller` to an instance of `service`; resolves when the connection is over. */
export async function proxyConnection(caller: Socket, service: string, ctx: TcpConnectionContext): Promise<void> {
  const startedAt = performance.now();
  const { provider, stats } = ctx;
  caller.setNoDelay(true);
  caller.on('error', () => {}); // its close (below) is what counts

  // Bytes that arrive before the instance is connected are held and sent first.
  const held: Buffer[] = [];
  let heldBytes = 0;
  let callerEnded = false;
  const hold = (chunk: Buffer) => {
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes >= HOLD_BYTES) caller.pause();
  };
  const ended = () => (callerEnded = true);
  caller.on('data', hold);
  caller.once('end', ended);
  const cancel = new Cancellation();
  const onGone = () => cancel.cancel(CLIENT_GONE);
  caller.once('close', onGone);

  const refuse = (outcome: TcpConnectionOutcome, detail: string) => {
    stats.connections[outcome] += 1;
    ctx.onRefused(service, outcome, detail);
    caller.destroy();
  };

  if (!provider.known(service)) {
    const error = resolutionError(service, await provider.resolve(service));
    if (error) return refuse(error.code === 'unknown_service' ? 'unknown_service' : error.code === 'discovery_unavailable' ? 'discovery_unavailable' : 'no_providers', error.message);
  }
  if (caller.destroyed) return refuse('client_closed_early', 'the caller closed before an instance was tried');

  let spliced = false;
  // The settings in force when the connection arrived (a reload applies from the next one).
  const settings = provider.settings(service);
  const result = await runTries(provider, {
    service,
    retries: settings.retries,
    deadlineMs: settings.deadlineMs,
    startedAt,
    cancel,
    attempt: async (instance, remainingMs): Promise<TryOutcome> => {
      // A connection is in flight for its whole life: this one is counted already.
      const open = provider.inFlight(instance);
      if (open > ctx.options.maxConnectionsPerInstance) return { kind: 'overloaded', code: `${open - 1} connections open (--max-connections-per-instance ${ctx.options.maxConnectionsPerInstance})` };
      const tryStartedAt = performance.now();
      const upstream = await connectInstance(instance, { timeoutMs: Math.min(settings.connectTimeoutMs, remainingMs), cancel, allowHalfOpen: true, lookup: provider.lookupFor(instance.port) });
      if (!(upstream instanceof Socket)) return upstream;
      // Once connected, the connection lives as long as both sides want: no deadline.
      ctx.onConnected?.(service, performance.now() - tryStartedAt);
      spliced = true;
      caller.off('close', onGone);
      return splice(caller, upstream, instance);
    },
    retryable: (outcome) => mayRetry(outcome, CONNECT_ONLY),
  });
  if (spliced) return;
  const last = result.last;
  if (!last) refuse('no_providers', `service ${service} has no instance to try`);
  else if (last.kind === 'client-aborted') refuse('client_closed_early', 'the caller closed before an instance was connected');
  else if (last.kind === 'overloaded') refuse('overloaded', `${service}: the instance tried has ${last.code}`);
  else refuse('connect_failed', `no instance of ${service} could be connected (${result.tries} ${result.tries === 1 ? 'try' : 'tries'}, last: ${last.kind} ${'code' in last ? last.code : ''})`);

  /** Bytes both ways with backpressure, half-close passed on, until both sockets are closed. */
  function splice(down: Socket, up: Socket, instance: Instance): Promise<TryOutcome> {
    stats.connections.ok += 1;
    stats.active += 1;
    ctx.open.set(instance.uid, (ctx.open.get(instance.uid) ?? 0) + 1);
    down.off('data', hold);
    down.off('end', ended);
    for (const chunk of held) up.write(chunk);
    held.length = 0;
    const activity = ctx.track(down, up);
    let upstreamError: Error | undefined;
    up.on('error', (err) => (upstreamError = err));
    return new Promise((resolve) => {
      let open = 2;
      const closed = () => {
        if (--open > 0) return;
        activity.done();
        stats.active -= 1;
        const n = (ctx.open.get(instance.uid) ?? 1) - 1;
        if (n > 0) ctx.open.set(instance.uid, n);
        else ctx.open.delete(instance.uid);
        resolve(upstreamError ? { kind: 'response-interrupted', status: 0, code: errorCode(upstreamError) } : { kind: 'ok', status: 0 });
      };
      // One listener per direction: count, write, pause on a full socket until it drains (what
      // pipe() does, without its extra machinery); activity is a counter the idle sweep reads.
      const relay = (from: Socket, to: Socket, counter: 'bytesIn' | 'bytesOut') => {
        const resume = () => from.resume();
        from.on('data', (chunk: Buffer) => {
          stats[counter] += chunk.length;
          activity.bytes += chunk.length;
          if (!to.write(chunk)) {
            from.pause();
            to.once('drain', resume);
          }
        });
        // Half-close passed on: a caller that shuts its write side still gets the reply.
        from.once('end', () => to.end());
        // An error or a close on one side closes the other.
        from.once('close', () => {
          to.destroy();
          closed();
        });
      };
      relay(down, up, 'bytesIn');
      relay(up, down, 'bytesOut');
      if (callerEnded) up.end();
      else down.resume();
    });
  }
}
