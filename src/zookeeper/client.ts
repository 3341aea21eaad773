// The only module that loads the native `zookeeper` binding. Everything else sees ZkClient.
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { parseConnectString, validatePath } from './connect-string.js';
import { ZkError } from './errors.js';

const require = createRequire(import.meta.url);

/** The parts of the binding's native handle we use (its callbacks take the C client's codes). */
interface NativeHandle {
  a_create(path: string, data: Buffer | string, flags: number, cb: (rc: number, err: string, path: string) => void): number;
  a_exists(path: string, watch: boolean, cb: (rc: number, err: string, stat: NativeStat | null) => void): number;
  aw_exists(path: string, watcher: NativeWatcher, cb: (rc: number, err: string, stat: NativeStat | null) => void): number;
  a_get(path: string, watch: boolean, cb: (rc: number, err: string, stat: NativeStat | null, data: Buffer | null) => void): number;
  aw_get(path: string, watcher: NativeWatcher, cb: (rc: number, err: string, stat: NativeStat | null, data: Buffer | null) => void): number;
  a_get_children(path: string, watch: boolean, cb: (rc: number, err: string, children: string[] | null) => void): number;
  aw_get_children(path: string, watcher: NativeWatcher, cb: (rc: number, err: string, children: string[] | null) => void): number;
  a_set(path: string, data: Buffer | string, version: number, cb: (rc: number, err: string, stat: NativeStat | null) => void): number;
  a_delete_(path: string, version: number, cb: (rc: number, err: string) => void): number;
  add_auth(scheme: string, auth: string, cb: (rc: number, err: string) => void): number;
  a_set_acl(path: string, version: number, acl: { perm: number; scheme: string; auth: string }[], cb: (rc: number, err: string) => void): number;
  readonly client_id: string;
  readonly client_password: string;
  readonly timeout: number;
}
type NativeWatcher = (type: number, state: number, path: string) => void;
interface NativeStat {
  czxid: number; mzxid: number; pzxid: number; ctime: Date; mtime: Date;
  version: number; cversion: number; aversion: number;
  ephemeralOwner: string; dataLength: number; numChildren: number;
}
interface BindingInstance extends EventEmitter {
  native: NativeHandle;
  init(config: Record<string, unknown>): unknown;
  close(): unknown;
}
type BindingClass = new (config: Record<string, unknown>) => BindingInstance;

/** The native binding: loaded when the first client is created, so importing this file loads nothing (require caches it). */
function binding(): BindingClass {
  return require('zookeeper') as BindingClass;
}

// Native constants (C client values), kept here so no other file needs the binding.
const ZOO_EPHEMERAL = 1;
const ZOO_SEQUENCE = 2;
const ZOO_SESSION_EVENT = -1;
const EXPIRED_STATE = -112;
const AUTH_FAILED_STATE = -113;
const ZNODEEXISTS = -110;
const EVENT_TYPES: Readonly<Record<number, WatchEventType>> = { 1: 'created', 2: 'deleted', 3: 'changed', 4: 'child', [-2]: 'not_watching' };

/** A znode's metadata. `ephemeralOwner` is the owning session id in hex ("0" when persistent). */
export interface ZkStat {
  readonly version: number;
  readonly cversion: number;
  readonly czxid: number;
  readonly mzxid: number;
  readonly ephemeralOwner: string;
  readonly dataLength: number;
  readonly numChildren: number;
  readonly ctimeMs: number;
  readonly mtimeMs: number;
}

export type WatchEventType = 'created' | 'deleted' | 'changed' | 'child' | 'not_watching';
/** A one-shot watch firing. Session events never reach a watcher (see RELIABILITY.md rule 2). */
export interface WatchEvent {
  readonly type: WatchEventType;
  readonly path: string;
}
export type Watcher = (event: WatchEvent) => void;

export interface ZkAuth {
  readonly scheme: string;
  /** For digest: `user:password`. */
  readonly credentials: string;
}

export interface ZkClientOptions {
  /** `host:port[,host:port...][/chroot]`. */
  readonly connectString: string;
  /** Requested session timeout; the server bounds it by its min/max. Default 10 000. */
  readonly sessionTimeoutMs?: number;
  /** How long to wait for the first connection before failing. Default 10 000. */
  readonly connectTimeoutMs?: number;
  readonly auth?: readonly ZkAuth[];
  /** The native C client's own log level on stderr (0 off ... 4 debug). Default 0. */
  readonly nativeLogLevel?: number;
  /** Resume an existing session (used by tests to force expiry of another handle). */
  readonly session?: { readonly id: string; readonly password: string };
}

export type ZkClientState = 'connecting' | 'connected' | 'disconnected' | 'expired' | 'auth_failed' | 'closed';

export interface CreateOptions {
  readonly ephemeral?: boolean;
  readonly sequential?: boolean;
}

function toStat(s: NativeStat): ZkStat {
  return {
    version: s.version,
    cversion: s.cversion,
    czxid: s.czxid,
    mzxid: s.mzxid,
    ephemeralOwner: s.ephemeralOwner,
    dataLength: s.dataLength,
    numChildren: s.numChildren,
    ctimeMs: s.ctime.getTime(),
    mtimeMs: s.mtime.getTime(),
  };
}

function checkedPath(path: string): string {
  const problem = validatePath(path);
  if (problem) throw new ZkError('BAD_PATH', `invalid znode path ${JSON.stringify(path)}: ${problem}`, { path });
  return path;
}

/**
 * One ZooKeeper session over the native C client, with a typed promise API.
 *
 * Events: `connected` (also after a reconnect within the same session), `disconnected`
 * (the session and its watches survive), `expired` (this handle is dead: make a new one),
 * `auth_failed`, `closed`. Use `connectZk()` to get one.
 */
export class ZkClient extends EventEmitter {
  readonly connectString: string;
  #binding: BindingInstance;
  #native: NativeHandle;
  #state: ZkClientState = 'connecting';

  private constructor(connectString: string, binding: BindingInstance) {
    super();
    this.connectString = connectString;
    this.#binding = binding;
    this.#native = binding.native;
    binding.on('connect', () => this.#setState('connected'));
    binding.on('connecting', () => {
      if (this.#state === 'connected') this.#setState('disconnected');
    });
    binding.on('close', (_self: unknown, code: number) => {
      this.#setState(code === EXPIRED_STATE ? 'expired' : code === AUTH_FAILED_STATE ? 'auth_failed' : 'closed');
    });
    // The binding re-emits native errors as 'error'; never let one go unhandled.
    binding.on('error', (err: unknown) => this.emit('warning', err));
  }

  /** Opens a session and waits (bounded by connectTimeoutMs) until it is connected. */
  static async connect(options: ZkClientOptions): Promise<ZkClient> {
    const parsed = parseConnectString(options.connectString);
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    if (!(connectTimeoutMs > 0)) throw new ZkError('BAD_ARGUMENTS', `connectTimeoutMs must be > 0, got ${connectTimeoutMs}`);
    const config: Record<string, unknown> = {
      connect: parsed.normalized,
      timeout: options.sessionTimeoutMs ?? 10_000,
      debug_level: options.nativeLogLevel ?? 0, // the C client's own stderr log: off unless debugging
      host_order_deterministic: false,
      data_as_buffer: true,
      // The binding closes a handle as "expired" after 10 consecutive empty reads, which happens
      // on healthy connections under load (node-zookeeper #233): a fake expiry that would drop
      // every watch. Real expiry still comes from the server.
      response_counter_limit: 1_000_000,
    };
    if (options.session) {
      config['client_id'] = options.session.id;
      config['client_password'] = options.session.password;
    }
    const Binding = binding();
    const handle = new Binding(config);
    const client = new ZkClient(parsed.normalized, handle);
    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new ZkError('CONNECT_TIMEOUT', `could not connect to ZooKeeper at ${parsed.normalized} within ${connectTimeoutMs} ms (is it running and reachable?)`));
      }, connectTimeoutMs);
      const onState = (state: ZkClientState) => {
        if (state === 'connected') {
          cleanup();
          resolve();
        } else if (state !== 'connecting' && state !== 'disconnected') {
          cleanup();
          reject(new ZkError(state === 'auth_failed' ? 'AUTH_FAILED' : 'SESSION_EXPIRED', `ZooKeeper at ${parsed.normalized} ended the session while connecting: ${state}`));
        }
      };
      const cleanup = () => {
        clearTimeout(timer);
        client.off('state', onState);
      };
      client.on('state', onState);
    });
    handle.init({});
    try {
      for (const auth of options.auth ?? []) client.#addAuth(auth);
      await connected;
      if (parsed.chroot !== undefined && (await client.exists('/')) === null) {
        throw new ZkError('CHROOT_MISSING', `the chroot ${parsed.chroot} of ${parsed.normalized} does not exist (create it first)`, { path: parsed.chroot });
      }
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  get state(): ZkClientState {
    return this.#state;
  }

  /** The session id in hex, as `ZkStat.ephemeralOwner` shows it. */
  get sessionId(): string {
    return this.#native.client_id;
  }

  get sessionPassword(): string {
    return this.#native.client_password;
  }

  /** The session timeout the server granted. */
  get sessionTimeoutMs(): number {
    return this.#native.timeout;
  }

  #setState(state: ZkClientState): void {
    if (this.#state === state) return;
    const terminal = this.#state === 'expired' || this.#state === 'closed' || this.#state === 'auth_failed';
    if (terminal) return;
    this.#state = state;
    this.emit('state', state);
    this.emit(state);
  }

  #addAuth(auth: ZkAuth): void {
    const rc = this.#native.add_auth(auth.scheme, auth.credentials, () => {});
    if (rc !== 0) throw ZkError.fromRc(rc, 'add_auth', auth.scheme);
  }

  /** Runs one native call: rejects at once when the handle refuses it, else on the callback's rc. */
  #call<T>(op: string, path: string, start: (done: (rc: number, value: T) => void) => number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#state === 'closed' || this.#state === 'expired' || this.#state === 'auth_failed') {
        reject(new ZkError(this.#state === 'expired' ? 'SESSION_EXPIRED' : 'CLOSED', `ZooKeeper ${op} ${path}: the session is ${this.#state}`, { path }));
        return;
      }
      const rc = start((code, value) => (code === 0 ? resolve(value) : reject(ZkError.fromRc(code, op, path))));
      if (rc !== 0) reject(ZkError.fromRc(rc, op, path));
    });
  }

  #nativeWatcher(watcher: Watcher): NativeWatcher {
    let fired = false;
    return (type, _state, path) => {
      // Session events reach every registered watcher on each disconnect/reconnect: the watch is
      // still armed, so they are not the change the caller waits for.
      if (type === ZOO_SESSION_EVENT || fired) return;
      const eventType = EVENT_TYPES[type];
      if (!eventType) return;
      fired = true;
      watcher({ type: eventType, path });
    };
  }

  /** Creates a znode; returns its path (with the sequence suffix when sequential). */
  create(path: string, data: Buffer | string, options: CreateOptions = {}): Promise<string> {
    const flags = (options.ephemeral ? ZOO_EPHEMERAL : 0) | (options.sequential ? ZOO_SEQUENCE : 0);
    return this.#call('create', checkedPath(path), (done) => this.#native.a_create(path, data, flags, (rc, _e, created) => done(rc, created)));
  }

  /** The node's stat, or null when it does not exist. A watcher fires on create/delete/data change. */
  async exists(path: string, watcher?: Watcher): Promise<ZkStat | null> {
    checkedPath(path);
    const stat = await this.#call<NativeStat | null>('exists', path, (done) => {
      const cb = (rc: number, _e: string, s: NativeStat | null) => done(rc === -101 ? 0 : rc, rc === 0 ? s : null);
      return watcher ? this.#native.aw_exists(path, this.#nativeWatcher(watcher), cb) : this.#native.a_exists(path, false, cb);
    });
    return stat ? toStat(stat) : null;
  }

  /** The node's data and stat. A watcher fires once on data change or delete. */
  async getData(path: string, watcher?: Watcher): Promise<{ data: Buffer; stat: ZkStat }> {
    checkedPath(path);
    const [data, stat] = await this.#call<[Buffer, NativeStat]>('get', path, (done) => {
      const cb = (rc: number, _e: string, stat: NativeStat | null, data: Buffer | null) =>
        done(rc, [data ?? Buffer.alloc(0), stat as NativeStat]);
      return watcher ? this.#native.aw_get(path, this.#nativeWatcher(watcher), cb) : this.#native.a_get(path, false, cb);
    });
    return { data: Buffer.isBuffer(data) ? data : Buffer.from(data), stat: toStat(stat) };
  }

  /** The node's children names. A watcher fires once when the set of children changes or the node goes. */
  getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    checkedPath(path);
    return this.#call<string[]>('get_children', path, (done) => {
      const cb = (rc: number, _e: string, children: string[] | null) => done(rc, children ?? []);
      return watcher ? this.#native.aw_get_children(path, this.#nativeWatcher(watcher), cb) : this.#native.a_get_children(path, false, cb);
    });
  }

  /** Sets data, optionally only at `version` (-1: any). */
  async setData(path: string, data: Buffer | string, version = -1): Promise<ZkStat> {
    checkedPath(path);
    const stat = await this.#call<NativeStat>('set', path, (done) => this.#native.a_set(path, data, version, (rc, _e, s) => done(rc, s as NativeStat)));
    return toStat(stat);
  }

  /** Replaces a node's ACL (`perms` is a ZooKeeper permission bit mask, 31 = all). */
  setAcl(path: string, acl: readonly { perms: number; scheme: string; id: string }[], version = -1): Promise<void> {
    checkedPath(path);
    const native = acl.map((a) => ({ perm: a.perms, scheme: a.scheme, auth: a.id }));
    return this.#call<void>('set_acl', path, (done) => this.#native.a_set_acl(path, version, native, (rc) => done(rc, undefined)));
  }

  /** Deletes a node, optionally only at `version` (-1: any). */
  delete(path: string, version = -1): Promise<void> {
    checkedPath(path);
    return this.#call<void>('delete', path, (done) => this.#native.a_delete_(path, version, (rc) => done(rc, undefined)));
  }

  /** Creates `path` and any missing parents as persistent nodes; existing nodes are fine. */
  async mkdirp(path: string): Promise<void> {
    checkedPath(path);
    let current = '';
    for (const segment of path.split('/').slice(1)) {
      if (segment === '') continue;
      current += `/${segment}`;
      const node = current;
      await this.#call<void>('create', node, (done) =>
        this.#native.a_create(node, '', 0, (rc) => done(rc === ZNODEEXISTS ? 0 : rc, undefined)),
      );
    }
  }

  /** Ends the session: its ephemeral nodes go at once. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'expired' || this.#state === 'auth_failed') return;
    this.#binding.close();
    this.#setState('closed');
  }
}

/** Opens a ZooKeeper session (see ZkClient.connect). */
export function connectZk(options: ZkClientOptions): Promise<ZkClient> {
  return ZkClient.connect(options);
}
