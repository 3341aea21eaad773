// Runs the real proxy (createApp) against a real ZooKeeper and registers real upstreams.
import { request as httpRequest } from 'node:http';
import { pino, type LevelWithSilent } from 'pino';
import { request as undiciRequest, Agent, type Dispatcher } from 'undici';
import { createApp, type App } from '../../src/app.js';
import { readConfigFile } from '../../src/config/options.js';
import { buildProxyConfig, PROXY_OPTIONS, type ProxyConfig } from '../../src/config/proxy.js';
import { silentLogger, type Logger } from '../../src/log.js';
import type { ZkClient } from '../../src/zookeeper/client.js';

export interface RunningProxy {
  readonly app: App;
  readonly config: ProxyConfig;
  readonly origin: string;
  /** Sends a request through the proxy on its own keep-alive agent. */
  request(path: string, options?: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> | { method?: string; body?: string | Buffer; headers?: Record<string, string> }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;
  close(): Promise<void>;
}

/**
 * Starts the proxy on 127.0.0.1:0 with `flags` (as on the command line, without dashes) and,
 * if given, `file` as the --config file's content (per-service settings need one).
 */
export async function startProxy(zookeeper: string, basePath: string, flags: Record<string, string | boolean> = {}, logger: Logger = silentLogger(), file?: Record<string, unknown>): Promise<RunningProxy> {
  // ZKROUTE_HTTP_ENGINE picks the engine for a whole run of the suites (CI runs them on both).
  const engine = process.env['ZKROUTE_HTTP_ENGINE'];
  const configFile = file ? readConfigFile('test-config.json', PROXY_OPTIONS, () => JSON.stringify(file)) : undefined;
  const config = buildProxyConfig({ zookeeper, listen: '127.0.0.1:0', admin: '127.0.0.1:0', 'base-path': basePath, ...flags }, engine ? { ZKROUTE_HTTP_ENGINE: engine } : {}, configFile);
  const app = createApp(config, { logger });
  await app.start();
  const { port } = app.address();
  const origin = `http://127.0.0.1:${port}`;
  const agent = new Agent({ keepAliveTimeout: 1000, connections: 64 });
  return {
    app,
    config,
    origin,
    async request(path, options = {}) {
      const res = await undiciRequest(`${origin}${path}`, { dispatcher: agent, ...(options as object) } as Parameters<typeof undiciRequest>[1]);
      return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
    },
    async close() {
      await agent.close();
      await app.close(1000);
    },
  };
}

/** Registers `address` (host:port or [v6]:port) as an ephemeral instance `<base>/<service>/<id>`. */
export async function register(zk: ZkClient, basePath: string, service: string, id: string, address: string, extra: Record<string, unknown> = {}): Promise<string> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(colon + 1));
  await zk.mkdirp(`${basePath}/${service}`);
  const path = `${basePath}/${service}/${id}`;
  await zk.create(path, JSON.stringify({ host, port, ...extra }), { ephemeral: true });
  return path;
}

/** Runs `count` calls of `task` with at most `concurrency` at once; returns their results in order. */
export async function runConcurrently<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  }));
  return results;
}

/** A request with node:http, which sends any header (undici refuses hop-by-hop ones). */
export function nodeRequest(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A logger whose JSON lines are kept in `lines` (parsed), for asserting what was logged. */
export function captureLogger(level: LevelWithSilent = 'info'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

/** The value of the first series of `name` with these labels (others may be present) on the proxy's /metrics; undefined when absent. */
export async function metricValue(proxy: Pick<RunningProxy, 'app'>, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const text = await proxy.app.metrics.render();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}
