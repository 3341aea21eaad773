// zkroute's library API.
export { connectZk, ZkClient } from './zookeeper/client.js';
export type { CreateOptions, WatchEvent, Watcher, ZkAuth, ZkClientOptions, ZkClientState, ZkStat } from './zookeeper/client.js';
export { parseConnectString } from './zookeeper/connect-string.js';
export { ZkError, isZkError } from './zookeeper/errors.js';
