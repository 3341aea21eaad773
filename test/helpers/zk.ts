import { setTimeout as sleep } from 'node:timers/promises';
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
  const session = { id: client.sessionId, password: client.sessionPassword };
  // The original handle may reconnect and take the session back before the twin's close is
  // processed (the close then fails with SESSION_MOVED): repeat until the handle sees expiry.
  // The handle reconnects at once, so one attempt in eight or so is lost that way; an expiry
  // that worked is seen within a few hundred ms, and one seen late only makes the next twin
  // fail with SESSION_EXPIRED (handled below).
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const twin = await connectZk({ connectString, session, sessionTimeoutMs: client.sessionTimeoutMs });
      await twin.close();
    } catch (err) {
      // An earlier attempt's close did end the session; the handle just has not seen it yet.
      if ((err as { code?: string }).code !== 'SESSION_EXPIRED') throw err;
    }
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      if (client.state === 'expired') return;
      await sleep(10);
    }
  }
  throw new Error(`session ${session.id} did not expire`);
}
