import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { hostProblem } from '../znode/instance-data.js';
import { instanceData, instancePath, isSequentialNodeOf, joinPath, serviceNameProblem, watchedParent, type Layout } from '../znode/layout.js';
import { silentLogger } from '../log.js';
import type { ZkAuth, ZkClient } from '../zookeeper/client.js';
import { isLostReply, isTransientZkError, isZkError } from '../zookeeper/errors.js';
import { ZkSession } from '../zookeeper/session.js';
import { defaultHost } from './host.js';

export interface RegistrationOptions {
  /** ZooKeeper connect string: every ensemble member, optional chroot. */
  readonly zookeeper: string;
  readonly service: string;
  readonly port: number;
  /** Defaults to this machine's address as another host would reach it. */
  readonly host?: string;
  readonly basePath?: string;
  readonly layout?: Layout;
  /** Nested layout: the znode name (a random UUID by default). */
  readonly id?: string;
  /** Extra fields written next to host and port (nested layout). */
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly auth?: readonly ZkAuth[];
  readonly sessionTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** The native C client's own log level on stderr (0 off ... 4 debug). */
  readonly nativeLogLevel?: number;
}

export interface RegistrationDeps {
  readonly logger?: Logger;
}

/** Why the options cannot be registered, or undefined. */
export function registrationProblem(options: RegistrationOptions): string | undefined {
  const serviceProblem = serviceNameProblem(options.service);
  if (serviceProblem) return `service ${JSON.stringify(options.service)} ${serviceProblem}`;
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) return `port ${options.port} is not 1-65535`;
  if (options.host !== undefined && hostProblem(options.host)) return `host ${JSON.stringify(options.host)}: ${hostProblem(options.host)}`;
  if (options.id !== undefined && serviceNameProblem(options.id)) return `id ${JSON.stringify(options.id)} ${serviceNameProblem(options.id)}`;
  return undefined;
}

/**
 * One instance's ephemeral znode, kept in place: it owns its ZooKeeper session, re-creates the
 * node after session expiry or if someone deletes it, and removes it on withdraw()/close().
 *
 * Events: `registered` (path) the first time, `lost` (reason) when the node went away without
 * being withdrawn, `reregistered` (path) when it is back.
 */
export class Registration extends EventEmitter {
  readonly service: string;
  readonly host: string;
  readonly port: number;
  readonly basePath: string;
  readonly layout: Layout;
  readonly #id: string;
  readonly #data: string;
  readonly #logger: Logger;
  readonly #session: ZkSession;
  #path: string | undefined;
  #wanted = false;
  #everRegistered = false;
  #lost = false;
  #closed = false;
  #reconcile: Promise<void> | undefined;
  #again = false;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Background reconciliations failed in a row (the backoff's exponent). */
  #failures = 0;
  /** `sessionId path` of the delete watch now armed on our node (one per session and path). */
  #watchArmed: string | undefined;

  constructor(options: RegistrationOptions, deps: RegistrationDeps = {}) {
    super();
    const problem = registrationProblem(options);
    if (problem) throw new TypeError(`cannot register: ${problem}`);
    this.service = options.service;
    this.port = options.port;
    this.host = options.host ?? defaultHost();
    this.basePath = options.basePath ?? '/providers';
    this.layout = options.layout ?? 'nested';
    this.#id = options.id ?? randomUUID();
    this.#data = instanceData(this.layout, this.host, this.port, options.metadata);
    this.#logger = (deps.logger ?? silentLogger()).child({ component: 'registration', service: this.service });
    this.#session = new ZkSession(
      {
        connectString: options.zookeeper,
        sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        // Quick retries: the node must be back within about 1 s of ZooKeeper being reachable.
        retryDelayMs: 100,
        maxRetryDelayMs: 500,
        ...(options.auth ? { auth: options.auth } : {}),
        ...(options.nativeLogLevel !== undefined ? { nativeLogLevel: options.nativeLogLevel } : {}),
      },
      { logger: deps.logger ?? silentLogger() },
    );
    this.#session.on('expired', () => {
      if (this.#wanted && this.#path) this.#markLost('session expired');
    });
    this.#session.on('session', () => this.#kickInBackground());
    this.#session.on('connected', () => this.#kickInBackground());
  }

  /** The znode path while registered. */
  get path(): string | undefined {
    return this.#path;
  }

  /** True while the node is wanted and exists (as far as this session knows). */
  get registered(): boolean {
    return this.#wanted && this.#path !== undefined && !this.#lost;
  }

  /** The ZooKeeper session (for its stats and events). */
  get session(): ZkSession {
    return this.#session;
  }

  /** Opens the session (bounded by connectTimeoutMs; rejects with a clear ZkError). */
  async start(): Promise<void> {
    await this.#session.start();
  }

  /**
   * Creates the node (if missing) and keeps it. Resolves with its path, or undefined while
   * ZooKeeper is unreachable (it is created as soon as the session is back).
   */
  async announce(): Promise<string | undefined> {
    this.#wanted = true;
    await this.#kick();
    return this.registered ? this.#path : undefined;
  }

  /** Deletes the node and stops keeping it (the session stays open for a later announce()). */
  async withdraw(): Promise<void> {
    this.#wanted = false;
    await this.#kick();
  }

  /** Withdraws, then closes the session. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#wanted = false;
    await this.#kick().catch((err: unknown) => this.#logger.warn({ err }, 'could not delete the node; closing the session removes it'));
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    await this.#session.close();
  }

  #markLost(reason: string): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#logger.warn({ path: this.#path, reason }, 'registration lost; re-creating');
    this.emit('lost', reason);
  }

  /**
   * Reconciles without a caller waiting. A failure that is not connection trouble (NO_AUTH after
   * an ACL change, say) is retried with backoff, 1 s doubling to 30 s: a reconnect may never come.
   */
  #kickInBackground(): void {
    this.#kick().then(
      () => {
        this.#failures = 0;
      },
      (err: unknown) => {
        if (this.#closed) return;
        this.#failures += 1;
        const retryInMs = Math.min(1000 * 2 ** (this.#failures - 1), 30_000);
        this.#logger.error({ err, retryInMs }, 'could not register; retrying');
        clearTimeout(this.#retryTimer);
        this.#retryTimer = setTimeout(() => this.#kickInBackground(), retryInMs);
      },
    );
  }

  /** Runs reconciliation, one at a time; a call while one runs makes it run again after. */
  #kick(): Promise<void> {
    if (this.#reconcile) {
      this.#again = true;
      return this.#reconcile;
    }
    this.#reconcile = (async () => {
      try {
        do {
          this.#again = false;
          await this.#reconcileOnce();
        } while (this.#again && !this.#closed);
      } finally {
        this.#reconcile = undefined;
      }
    })();
    return this.#reconcile;
  }

  async #reconcileOnce(): Promise<void> {
    const client = this.#session.client;
    if (this.#closed || !client || client.state !== 'connected') return;
    try {
      if (this.#wanted) await this.#ensureNode(client);
      else await this.#removeNode(client);
    } catch (err) {
      if (!isTransientZkError(err)) throw err;
      // Connection trouble: `connected`/`session` kicks again; a timer covers a quiet recovery.
      this.#logger.warn({ err }, 'ZooKeeper unavailable while registering; will retry');
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.#kickInBackground(), 500);
    }
  }

  async #ensureNode(client: ZkClient): Promise<void> {
    const owner = client.sessionId;
    if (this.#path) {
      const stat = await client.exists(this.#path);
      if (stat?.ephemeralOwner === owner) return this.#watchOwnNode(client, this.#path);
      if (!this.#lost) this.#markLost(stat ? 'node owned by another session' : 'node deleted');
    }
    const parent = watchedParent(this.basePath, this.layout, this.service);
    await client.mkdirp(parent);
    const target = instancePath(this.basePath, this.layout, this.service, this.#id);
    const path = this.layout === 'nested' ? await this.#createNested(client, target, owner) : await this.#createSequential(client, parent, target, owner);
    const first = !this.#everRegistered;
    this.#path = path;
    this.#lost = false;
    this.#everRegistered = true;
    this.#logger.info({ path, host: this.host, port: this.port, sessionId: owner }, first ? 'registered' : 're-registered');
    this.emit(first ? 'registered' : 'reregistered', path);
    await this.#watchOwnNode(client, path);
  }

  /** Creates `path`; a node left by an earlier session of ours is deleted first so watchers fire. */
  async #createNested(client: ZkClient, path: string, owner: string): Promise<string> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await client.create(path, this.#data, { ephemeral: true });
      } catch (err) {
        if (isLostReply(err)) {
          // The create may have been applied before the reply was lost: is the node ours?
          const stat = await client.exists(path);
          if (stat?.ephemeralOwner === owner) return path;
          throw err;
        }
        if (!isZkError(err, 'NODE_EXISTS')) throw err;
        const stat = await client.exists(path);
        if (!stat) continue;
        if (stat.ephemeralOwner === owner) return path;
        this.#logger.info({ path, staleOwner: stat.ephemeralOwner }, 'deleting a node left by an earlier session');
        await client.delete(path, stat.version).catch((e: unknown) => {
          if (!isZkError(e, 'NO_NODE', 'BAD_VERSION')) throw e;
        });
      }
    }
    throw new Error(`could not create ${path}: it keeps being re-created by another session`);
  }

  /** Sequential layout: adopts a node of this session whose create reply was lost, else creates. */
  async #createSequential(client: ZkClient, parent: string, prefix: string, owner: string): Promise<string> {
    const mine = await this.#findOwnSequential(client, parent, owner);
    if (mine) return mine;
    try {
      return await client.create(prefix, this.#data, { ephemeral: true, sequential: true });
    } catch (err) {
      if (!isLostReply(err)) throw err;
      const adopted = await this.#findOwnSequential(client, parent, owner);
      if (adopted) return adopted;
      throw err;
    }
  }

  async #findOwnSequential(client: ZkClient, parent: string, owner: string): Promise<string | undefined> {
    const children = await client.getChildren(parent);
    for (const child of children) {
      if (!isSequentialNodeOf(child, this.service)) continue;
      const path = joinPath(parent, child);
      const stat = await client.exists(path);
      if (stat?.ephemeralOwner === owner) return path;
    }
    return undefined;
  }

  /** Re-creates the node if someone deletes it while our session lives. */
  async #watchOwnNode(client: ZkClient, path: string): Promise<void> {
    const key = `${client.sessionId} ${path}`;
    if (this.#watchArmed === key) return;
    this.#watchArmed = key;
    const stat = await client.exists(path, (event) => {
      if (this.#watchArmed === key) this.#watchArmed = undefined;
      if (this.#closed || !this.#wanted || this.#path !== path) return;
      // Deleted: re-create. Any other event used the watch up: reconcile re-arms it.
      if (event.type === 'deleted') this.#markLost('node deleted');
      this.#kickInBackground();
    });
    if (!stat) this.#again = true;
  }

  async #removeNode(client: ZkClient): Promise<void> {
    const path = this.#path;
    if (!path) return;
    const stat = await client.exists(path);
    if (stat?.ephemeralOwner === client.sessionId) {
      await client.delete(path, stat.version).catch((err: unknown) => {
        if (!isZkError(err, 'NO_NODE')) throw err;
      });
    }
    // Only now: after a transient failure above, the retry must still know what to delete.
    this.#path = undefined;
    this.#logger.info({ path }, 'deregistered');
    this.emit('deregistered', path);
  }
}

/** Registers an instance and keeps it registered; `close()` removes it. */
export async function register(options: RegistrationOptions, deps: RegistrationDeps = {}): Promise<Registration> {
  const registration = new Registration(options, deps);
  try {
    await registration.start();
    if (!(await registration.announce())) throw new Error(`could not register ${options.service}: ZooKeeper connection lost while creating the node`);
  } catch (err) {
    await registration.close().catch(() => {});
    throw err;
  }
  return registration;
}
