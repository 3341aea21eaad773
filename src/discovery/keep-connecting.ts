import type { Logger } from 'pino';
import type { Discovery } from './discovery.js';

export interface ConnectState {
  /** The last failed attempt's error, while ZooKeeper has not been reached. */
  readonly failed: Error | undefined;
  /** Ends once connected, or once `isClosed` says stop. */
  readonly done: Promise<void>;
  /** Ends the wait between attempts now (call after `isClosed` turned true): `done` follows at once. */
  cancel(): void;
}

/**
 * Starts Discovery, retrying with backoff (0.5 s doubling to 5 s) while ZooKeeper is
 * unreachable, until it connects or `isClosed()`. `onFirstAttempt` runs once, after the first
 * attempt ended either way: a proxy serves (503s) and reports readiness while it retries.
 */
export function keepConnecting(discovery: Discovery, deps: { readonly logger: Logger; readonly zookeeper: string; readonly isClosed: () => boolean }, onFirstAttempt: () => void): ConnectState {
  const { logger, zookeeper, isClosed } = deps;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const state: { failed: Error | undefined; done: Promise<void>; cancel(): void } = {
    failed: undefined,
    done: Promise.resolve(),
    cancel() {
      clearTimeout(timer);
      wake?.();
    },
  };
  let first = true;
  const attempted = () => {
    if (first) onFirstAttempt();
    first = false;
  };
  state.done = (async () => {
    let delayMs = 500;
    for (;;) {
      try {
        await discovery.start();
        if (state.failed) logger.info({ zookeeper }, 'connected to ZooKeeper');
        state.failed = undefined;
        if (!(await discovery.ready())) logger.warn({ basePath: discovery.basePath }, 'ZooKeeper connected but the service list is not read yet; serving as it arrives');
        attempted();
        return;
      } catch (err) {
        if (isClosed()) return;
        if (!state.failed) logger.error({ err, zookeeper }, 'ZooKeeper unreachable at start; retrying (readiness: zookeeper_unreachable)');
        state.failed = err as Error;
        attempted();
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, delayMs);
        });
        wake = undefined;
        if (isClosed()) return;
        delayMs = Math.min(delayMs * 2, 5000);
      }
    }
  })();
  return state;
}
