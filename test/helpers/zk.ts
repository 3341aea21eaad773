import { connectZk, type ZkClient } from '../../src/zookeeper/client.js';

let counter = 0;
/** A unique znode path per test so tests sharing a server never see each other's nodes. */
export function uniquePath(prefix = 't'): string {
  counter += 1;
  return `/${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

/**
 * Forces expiry of `client`'s session the way the ZooKeeper FAQ describes: a second handle
 * attaches to the same session id and password and closes it, so the server ends the session.
 */
export async function expireSession(connectString: string, client: ZkClient): Promise<void> {
  const twin = await connectZk({
    connectString,
    session: { id: client.sessionId, password: client.sessionPassword },
    sessionTimeoutMs: client.sessionTimeoutMs,
  });
  await twin.close();
}
