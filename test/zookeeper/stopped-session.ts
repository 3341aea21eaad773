// A ZooKeeper session in a process of its own, for stopped.test.ts: it creates an ephemeral
// znode and prints its session's events as JSON lines ({event, at}), so the test can stop and
// resume the whole process (SIGSTOP) as a partitioned or paused host would be.
import { silentLogger } from '../../src/log.js';
import { ZkSession } from '../../src/zookeeper/session.js';

const [connectString, timeout, node] = process.argv.slice(2) as [string, string, string];
const say = (event: string) => process.stdout.write(`${JSON.stringify({ event, at: Date.now() })}\n`);
const session = new ZkSession({ connectString, sessionTimeoutMs: Number(timeout) }, { logger: silentLogger() });
for (const event of ['disconnected', 'expired', 'session']) session.on(event, () => say(event));
const client = await session.start();
await client.create(node, '', { ephemeral: true });
say('ready');
