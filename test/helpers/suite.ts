import type { TestFn } from 'ava';
import { connectZk, type ZkClient } from '../../src/zookeeper/client.js';
import { ZooKeeperServer } from '../../src/dev/zookeeper-server.js';

export interface ZooKeeperSuite {
  /** The file's ZooKeeper server (set in test.before). */
  readonly server: ZooKeeperServer;
  /** A client for writing test data. */
  readonly zk: ZkClient;
  /** Runs `cleanup` after the file's tests, newest first. */
  defer(cleanup: () => Promise<void> | void): void;
}

/** One real ZooKeeper server and a writer client for a test file, closed (with `defer`red cleanups) after it. */
export function zookeeperSuite(test: TestFn): ZooKeeperSuite {
  const cleanups: (() => Promise<void> | void)[] = [];
  let server: ZooKeeperServer | undefined;
  let zk: ZkClient | undefined;
  test.before(async () => {
    server = await ZooKeeperServer.start();
    zk = await connectZk({ connectString: server.connectString, sessionTimeoutMs: 20_000 });
  });
  test.after.always(async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
    await zk?.close();
    await server?.close();
  });
  return {
    get server() {
      return server!;
    },
    get zk() {
      return zk!;
    },
    defer: (cleanup) => void cleanups.push(cleanup),
  };
}
