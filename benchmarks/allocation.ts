// Where the proxy allocates: the proxy in this process with V8's sampling heap profiler keeping
// objects the young and old collections freed (so garbage counts too), under wrk (pinned as in
// profile.ts). Prints bytes allocated per request by function. Usage: npm run bench:allocation
// [-- --engine zkroute|node] [-- --connections 32] [-- --duration 5]
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { createApp } from '../src/app.js';
import { buildProxyConfig } from '../src/config/proxy.js';
import { freePorts, ZooKeeperServer } from '../src/dev/zookeeper-server.js';
import { silentLogger } from '../src/log.js';
import { killAll, startRegisteredUpstream, waitForOk, wrk } from './lib.js';

const { values: opts } = parseArgs({ options: {
  engine: { type: 'string', default: 'zkroute' },
  connections: { type: 'string', default: '32' },
  duration: { type: 'string', default: '5' },
  top: { type: 'string', default: '25' },
} });

interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }

async function main(): Promise<void> {
  const zk = await ZooKeeperServer.start();
  try {
    const { client } = await startRegisteredUpstream(zk.connectString, '0');
    const [port] = (await freePorts(1)) as [number];
    const app = createApp(buildProxyConfig({ zookeeper: zk.connectString, listen: `127.0.0.1:${port}`, admin: '127.0.0.1:0', 'http-engine': opts.engine }, {}), { logger: silentLogger() });
    await app.start();
    const url = `http://127.0.0.1:${port}/svc/bench/small`;
    await waitForOk(url);
    await wrk(url, Number(opts.connections), 1, '0');
    const session = new Session();
    session.connect();
    await session.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true } as object);
    const result = await wrk(url, Number(opts.connections), Number(opts.duration), '0');
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
    session.disconnect();
    const bytes = new Map<string, number>();
    const name = (node: HeapNode) => `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;
    // A builtin (Map, Set, Array...) is charged to its caller, named beside it.
    const walk = (node: HeapNode, parent: string) => {
      const key = node.callFrame.url ? name(node) : `${node.callFrame.functionName || '(native)'} <- ${parent}`;
      bytes.set(key, (bytes.get(key) ?? 0) + node.selfSize);
      for (const child of node.children) walk(child, node.callFrame.url ? name(node) : parent);
    };
    walk(profile.head, '');
    const total = [...bytes.values()].reduce((a, b) => a + b, 0);
    console.log(`engine ${opts.engine}, ${opts.connections} connections: ${Math.round(result.rps)} req/s (in-process, profiled); ${(total / result.requests / 1024).toFixed(1)} KiB allocated per request; by function (bytes per request):`);
    for (const [name, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, Number(opts.top))) console.log(`${(size / result.requests).toFixed(0).padStart(7)}  ${name}`);
    await app.close(100);
    await client.close();
  } finally {
    killAll();
    await zk.close();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  killAll();
  process.exit(1);
});
