import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ZkClient, type ZkClientOptions, type ZkClientState } from './client.js';

export interface ZkSessionOptions extends ZkClientOptions {
  /** First delay between attempts to open a new session after expiry; doubles up to maxRetryDelayMs. */
  readonly retryDelayMs?: number;
  readonly maxRetryDelayMs?: number;
}

export interface ZkSessionDeps {
  readonly logger: Logger;
  /** Opens a client; tests may wrap it. */
  readonly connect?: (options: ZkClientOptions) => Promise<ZkClient>;
}

export interface ZkSessionStats {
  readonly state: ZkClientState | 'starting';
  readonly sessionId: string | undefined;
  readonly reconnects: number;
  readonly expiries: number;
  /** When the connection was last seen up (ms since epoch), or undefined before the first. */
  readonly lastConnectedAt: number | undefined;
  /** Since when the session has been unreachable, or undefined while connected. */
  readonly disconnectedSince: number | undefined;
}

/**
 * A ZooKeeper session that outlives expiry: on `expired` it opens a new handle (retrying with
 * backoff until it succeeds or close() is called) and emits `session` with the new client, so
 * owners re-watch and resync. Events: `session` (client; also for the first), `connected`,
 * `disconnected`, `expired`.
 *
 * While disconnected the old handle is kept: the session, its ephemerals and its watches
 * survive until the server says the session expired (RELIABILITY.md rule 5).
 */
export class ZkSession extends EventEmitter {
  readonly #options: ZkSessionOptions;
  readonly #logger: Logger;
  readonly #connect: (options: ZkClientOptions) => Promise<ZkClient>;
  #client: ZkClient | undefined;
  #closed = false;
  #reconnects = 0;
  #expiries = 0;
  #lastConnectedAt: number | undefined;
  #disconnectedSince: number | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;

  constructor(options: ZkSessionOptions, deps: ZkSessionDeps) {
    super();
    // Every watched path listens for new sessions: hundreds of listeners are normal here.
    this.setMaxListeners(0);
    this.#options = options;
    this.#logger = deps.logger.child({ component: 'zookeeper' });
    this.#connect = deps.connect ?? ((o) => ZkClient.connect(o));
  }

  /** The current client, or undefined before start() resolves or after close(). */
  get client(): ZkClient | undefined {
    return this.#client;
  }

  get connected(): boolean {
    return this.#client?.state === 'connected';
  }

  stats(): ZkSessionStats {
    return {
      state: this.#client?.state ?? 'starting',
      sessionId: this.#client?.sessionId,
      reconnects: this.#reconnects,
      expiries: this.#expiries,
      lastConnectedAt: this.#client?.state === 'connected' ? Date.now() : this.#lastConnectedAt,
      disconnectedSince: this.#client?.state === 'connected' ? undefined : this.#disconnectedSince,
    };
  }

  /** Opens the first session; rejects (CONNECT_TIMEOUT, BAD_CONNECT_STRING, ...) if it cannot. */
  async start(): Promise<ZkClient> {
    if (this.#client) return this.#client;
    this.#disconnectedSince = Date.now();
    const client = await this.#connect(this.#options);
    if (this.#closed) {
      await client.close();
      throw new Error('ZkSession closed while starting');
    }
    this.#adopt(client);
    return client;
  }

  #adopt(client: ZkClient): void {
    this.#client = client;
    this.#lastConnectedAt = Date.now();
    this.#disconnectedSince = undefined;
    this.#logger.info({ sessionId: client.sessionId, timeoutMs: client.sessionTimeoutMs }, 'zookeeper session established');
    client.on('state', (state: ZkClientState) => this.#onState(client, state));
    this.emit('session', client);
  }

  #onState(client: ZkClient, state: ZkClientState): void {
    if (client !== this.#client || this.#closed) return;
    switch (state) {
      case 'connected':
        this.#reconnects += 1;
        this.#lastConnectedAt = Date.now();
        this.#disconnectedSince = undefined;
        this.#logger.info({ sessionId: client.sessionId }, 'zookeeper reconnected');
        this.emit('connected', client);
        break;
      case 'disconnected':
        this.#lastConnectedAt = Date.now();
        this.#disconnectedSince = Date.now();
        this.#logger.warn({ sessionId: client.sessionId }, 'zookeeper disconnected; serving the last-known state');
        this.emit('disconnected');
        break;
      case 'expired':
      case 'auth_failed':
        this.#expiries += 1;
        this.#disconnectedSince ??= Date.now();
        this.#logger.warn({ sessionId: client.sessionId, state }, 'zookeeper session ended; opening a new one');
        this.emit('expired');
        void this.#renew();
        break;
      default:
        break;
    }
  }

  /** Opens a new session after expiry, retrying with backoff until it works or we close. */
  #renew(): Promise<void> {
    this.#renewing ??= (async () => {
      let delay = this.#options.retryDelayMs ?? 100;
      const maxDelay = this.#options.maxRetryDelayMs ?? 5000;
      while (!this.#closed) {
        try {
          // Short attempts: a new session that cannot connect now (a member down) is closed
          // and tried again with backoff, so a member back meanwhile is found soon.
          const attemptMs = Math.min(this.#options.connectTimeoutMs ?? 10_000, 3000);
          const client = await this.#connect({ ...this.#options, connectTimeoutMs: attemptMs });
          if (this.#closed) {
            await client.close();
            return;
          }
          this.#renewing = undefined;
          this.#adopt(client);
          return;
        } catch (err) {
          this.#logger.warn({ err, retryInMs: delay }, 'could not open a new zookeeper session');
          await new Promise<void>((resolve) => {
            this.#retryTimer = setTimeout(resolve, delay);
          });
          delay = Math.min(delay * 2, maxDelay);
        }
      }
    })();
    return this.#renewing;
  }

  /** Closes the current session (its ephemerals go) and stops renewing. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    await client?.close();
  }
}
