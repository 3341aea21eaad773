// A ZooKeeper tree in memory with one-shot watches, behind the parts of ZkSession and ZkClient
// the children watcher uses: unit tests of discovery's caches without a JVM.
import { EventEmitter } from 'node:events';
import type { WatchEvent, Watcher, ZkClient, ZkStat } from '../../src/zookeeper/client.js';
import { ZkError } from '../../src/zookeeper/errors.js';
import type { ZkSession } from '../../src/zookeeper/session.js';

interface Node {
  data: Buffer;
  czxid: number;
  version: number;
}

export class FakeZooKeeper {
  readonly #nodes = new Map<string, Node>();
  #zxid = 1;
  readonly #childWatches = new Map<string, Watcher[]>();
  readonly #dataWatches = new Map<string, Watcher[]>();
  reads = 0;
  lists = 0;
  /** Lists that fail with CONNECTION_LOSS before one succeeds again (a link that drops). */
  failLists = 0;

  create(path: string, data: string): void {
    this.#nodes.set(path, { data: Buffer.from(data), czxid: this.#zxid++, version: 0 });
    this.#fire(this.#childWatches, parentOf(path), { type: 'child', path: parentOf(path) });
    this.#fire(this.#childWatches, path, { type: 'created', path });
  }

  setData(path: string, data: string): void {
    const node = this.#nodes.get(path)!;
    node.data = Buffer.from(data);
    node.version += 1;
    this.#fire(this.#dataWatches, path, { type: 'changed', path });
  }

  delete(path: string): void {
    this.#nodes.delete(path);
    this.#fire(this.#dataWatches, path, { type: 'deleted', path });
    this.#fire(this.#childWatches, path, { type: 'deleted', path });
    this.#fire(this.#childWatches, parentOf(path), { type: 'child', path: parentOf(path) });
  }

  /** A client of this tree (a new one per session: watches belong to the session that set them). */
  client(): ZkClient {
    const stat = (n: Node): ZkStat => ({ version: n.version, cversion: 0, czxid: n.czxid, mzxid: n.czxid, ephemeralOwner: '1', dataLength: n.data.length, numChildren: 0, ctimeMs: 0, mtimeMs: 0 });
    const client = {
      state: 'connected',
      getChildren: async (path: string, watcher?: Watcher) => {
        await Promise.resolve();
        this.lists += 1;
        if (this.failLists > 0) {
          this.failLists -= 1;
          throw new ZkError('CONNECTION_LOSS', `lost the connection listing ${path}`);
        }
        if (!this.#nodes.has(path)) throw new ZkError('NO_NODE', `no node ${path}`);
        if (watcher) this.#watch(this.#childWatches, path, watcher);
        return [...this.#nodes.keys()].filter((p) => parentOf(p) === path && p !== path).map((p) => p.slice(path.length + 1));
      },
      exists: async (path: string, watcher?: Watcher) => {
        await Promise.resolve();
        if (watcher) this.#watch(this.#childWatches, path, watcher);
        const node = this.#nodes.get(path);
        return node ? stat(node) : null;
      },
      getData: async (path: string, watcher?: Watcher) => {
        await Promise.resolve();
        this.reads += 1;
        const node = this.#nodes.get(path);
        if (!node) throw new ZkError('NO_NODE', `no node ${path}`);
        if (watcher) this.#watch(this.#dataWatches, path, watcher);
        return { data: node.data, stat: stat(node) };
      },
    };
    return client as unknown as ZkClient;
  }

  /**
   * A session whose `renew()` stands for an expiry (a new client, the old one's watches dead)
   * and `reconnect()` for a reconnect of the same session (its watches kept).
   */
  session(): ZkSession & { renew(): void; reconnect(): void } {
    const session = new EventEmitter() as EventEmitter & { client: ZkClient; renew(): void; reconnect(): void };
    session.client = this.client();
    session.reconnect = () => session.emit('connected', session.client);
    session.renew = () => {
      this.#childWatches.clear();
      this.#dataWatches.clear();
      session.client = this.client();
      session.emit('session', session.client);
    };
    return session as unknown as ZkSession & { renew(): void; reconnect(): void };
  }

  /** Armed watches on `path` (children + data), as `wchp` would count them. */
  watchesOn(path: string): number {
    return (this.#childWatches.get(path)?.length ?? 0) + (this.#dataWatches.get(path)?.length ?? 0);
  }

  #watch(map: Map<string, Watcher[]>, path: string, watcher: Watcher): void {
    map.set(path, [...(map.get(path) ?? []), watcher]);
  }

  #fire(map: Map<string, Watcher[]>, path: string, event: WatchEvent): void {
    const watchers = map.get(path);
    map.delete(path);
    for (const w of watchers ?? []) queueMicrotask(() => w(event));
  }
}

function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}
