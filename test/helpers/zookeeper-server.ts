// The real-ZooKeeper harness lives in src/dev (dev mode uses it too); tests import it from here.
export * from '../../src/dev/zookeeper-server.js';
