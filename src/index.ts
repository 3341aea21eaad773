// zkroute's library API.
export { connectZk, ZkClient } from './zookeeper/client.js';
export type { CreateOptions, WatchEvent, Watcher, ZkAuth, ZkClientOptions, ZkClientState, ZkStat } from './zookeeper/client.js';
export { parseConnectString } from './zookeeper/connect-string.js';
export { ZkError, isZkError } from './zookeeper/errors.js';
export { createDiscovery, Discovery } from './discovery/discovery.js';
export type { DiscoveryOptions, DiscoveryDeps, DiscoveryStats, Resolution } from './discovery/discovery.js';
export type { Instance, ServiceEntry } from './discovery/provider-table.js';
export { decodeInstanceData } from './discovery/instance-data.js';
export type { Endpoint, InstanceFormat, RejectReason } from './discovery/instance-data.js';
export type { Layout } from './discovery/paths.js';
export { ZkSession } from './zookeeper/session.js';
export { createLogger, silentLogger } from './log.js';
