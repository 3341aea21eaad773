import type { Logger } from 'pino';
import type { Discovery } from './discovery.js';

export interface ConnectState {
  /** The last failed attempt's error, while ZooKeeper has not been reached. */
  readonly failed: Error | undefined;
  /** Ends once connected, or once `isClosed` says stop. */
  readonly done: Promise<void>;
}

/**
 * Starts Discovery, retrying with backoff (0.5 s doubling to 5 s) while ZooKeeper is
 * unreachable, until it connects or `isClosed()`. `onFirstAttempt` runs once, after the first
 * attempt ended either way: a proxy serves (503s) and reports readiness while it retries.
 */
export function keepConnecting(discovery: Discovery, deps: { readonly logger: Logger; readonly zookeeper: string; readonly isClosed: () => boolean }, onFirstAttempt: () => void): ConnectState {
  const { logger, zookeeper, isClosed } = deps;
  const state: { failed: Error | undefined; done: Promise<void> } = { failed: undefined, done: Promise.resolve() };
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
        await new Promise((r) => setTimeout(r, delayMs));
        if (isClosed()) return;
        delayMs = Math.min(delayMs * 2, 5000);
      }
    }
  })();
  return state;
}
