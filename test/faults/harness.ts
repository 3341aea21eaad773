// The fault suite's parts: a bounded mixed load loop through the proxy that counts what the
// user cares about (requests lost, and why), providers registered by zkroute's own library,
// and the ensemble's own view of watches (`wchp` on every member), so nothing of ours is trusted.
import type { ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { register as registerInstance, type Registration } from '../../src/registration/registration.js';
import { fourLetterWord, type ZooKeeperEnsemble } from '../../src/dev/zookeeper-server.js';
import { Upstream, type UpstreamHandler } from '../helpers/upstream.js';

export interface TrafficOptions {
  /** Concurrent callers (default 16). */
  readonly concurrency?: number;
  /** Every n-th request is a small POST (default 4). */
  readonly postEvery?: number;
  /** Pause of each caller between its requests (default 5 ms): moderate load beside three JVMs on two cores. */
  readonly pauseMs?: number;
  /** Upper bounds on the loop (defaults: 60 s, 100,000 requests). */
  readonly maxMs?: number;
  readonly maxRequests?: number;
  /** Path under the service (default /work). */
  readonly path?: string;
}

export interface TrafficReport {
  readonly sent: number;
  readonly ok: number;
  readonly gets: number;
  readonly posts: number;
  /** Failed GETs (idempotent): status or error, one entry each. */
  readonly failedIdempotent: readonly string[];
  /** Failed POSTs: `status code` or the client error. */
  readonly failedPosts: readonly string[];
  /** Requests answered per upstream name. */
  readonly byUpstream: Readonly<Record<string, number>>;
  /** Every failure with when it was answered (ms since epoch), to lay beside the faults. */
  readonly failures: readonly { readonly at: number; readonly method: 'GET' | 'POST'; readonly what: string }[];
}

/** A running load loop; `stop()` ends it and returns the figures. */
export class Traffic {
  readonly #agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  readonly #options: Required<TrafficOptions>;
  readonly #figures = { sent: 0, ok: 0, gets: 0, posts: 0, byUpstream: {} as Record<string, number>, failures: [] as { at: number; method: 'GET' | 'POST'; what: string }[] };
  #stopped = false;
  #stopping: Promise<TrafficReport> | undefined;
  readonly #loops: Promise<void>[];

  constructor(readonly origin: string, readonly service: string, options: TrafficOptions = {}) {
    this.#options = { concurrency: 16, postEvery: 4, pauseMs: 5, maxMs: 60_000, maxRequests: 100_000, path: '/work', ...options };
    const until = Date.now() + this.#options.maxMs;
    this.#loops = Array.from({ length: this.#options.concurrency }, async () => {
      while (!this.#stopped && Date.now() < until && this.#figures.sent < this.#options.maxRequests) {
        await this.#one(this.#figures.sent++);
        if (this.#options.pauseMs > 0) await sleep(this.#options.pauseMs);
      }
    });
  }

  get sent(): number {
    return this.#figures.sent;
  }

  /** Resolves once `count` more requests were sent (a fault needs traffic around it). */
  async more(count: number, timeoutMs = 20_000): Promise<void> {
    const target = this.#figures.sent + count;
    const deadline = Date.now() + timeoutMs;
    while (this.#figures.sent < target) {
      if (Date.now() > deadline || this.#stopped) throw new Error(`traffic: ${count} more requests not sent within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  async #one(i: number): Promise<void> {
    const post = i % this.#options.postEvery === this.#options.postEvery - 1;
    const figures = this.#figures;
    if (post) figures.posts += 1;
    else figures.gets += 1;
    try {
      const res = await request(`${this.origin}/svc/${this.service}${this.#options.path}?i=${i}`, {
        dispatcher: this.#agent,
        method: post ? 'POST' : 'GET',
        ...(post ? { body: JSON.stringify({ i, pad: 'x'.repeat(200) }), headers: { 'content-type': 'application/json' } } : {}),
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      const text = await res.body.text();
      if (res.statusCode === 200) {
        figures.ok += 1;
        const upstream = String(res.headers['x-upstream'] ?? '?');
        figures.byUpstream[upstream] = (figures.byUpstream[upstream] ?? 0) + 1;
        return;
      }
      let code = '';
      try {
        code = String((JSON.parse(text) as { error?: string }).error ?? '');
      } catch {
        // Not one of our JSON errors: the status says it.
      }
      this.#failed(post, `${res.statusCode} ${code}`.trim());
    } catch (err) {
      this.#failed(post, `client ${(err as { code?: string }).code ?? (err as Error).message}`);
    }
  }

  #failed(post: boolean, what: string): void {
    this.#figures.failures.push({ at: Date.now(), method: post ? 'POST' : 'GET', what });
  }

  /** Ends the loop (idempotent) once the requests in flight are answered. */
  stop(): Promise<TrafficReport> {
    this.#stopping ??= (async () => {
      this.#stopped = true;
      await Promise.all(this.#loops);
      await this.#agent.close();
      const f = this.#figures;
      const whats = (method: 'GET' | 'POST') => f.failures.filter((x) => x.method === method).map((x) => x.what);
      return { ...f, failedIdempotent: whats('GET'), failedPosts: whats('POST'), byUpstream: { ...f.byUpstream }, failures: [...f.failures] };
    })();
    return this.#stopping;
  }
}

/** `4,812` */
const n = (value: number) => value.toLocaleString('en-US');

/** The row's figures as one log line: `row 9: 4,812 requests (1,203 POST), 0 failed, reconnect 2.9 s`. */
export function logRow(t: ExecutionContext, row: number | string, report: TrafficReport, extra: Record<string, string | number> = {}): void {
  const failed = report.failedIdempotent.length + report.failedPosts.length;
  const parts = [`${n(report.sent)} requests (${n(report.posts)} POST)`, `${failed} failed`];
  if (report.failedPosts.length > 0) parts.push(`POST failures: ${summarize(report.failedPosts)}`);
  for (const [key, value] of Object.entries(extra)) parts.push(`${key} ${value}`);
  t.log(`row ${row}: ${parts.join(', ')}`);
}

/** `502 upstream_reset x3, 504 upstream_timeout x1` */
export function summarize(failures: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const f of failures) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [...counts].map(([what, count]) => `${what} x${count}`).join(', ') || 'none';
}

/** `wchp` of every running member: path -> the sessions (lower-case hex) watching its data. */
async function dataWatches(members: Pick<ZooKeeperEnsemble, 'members'>): Promise<{ path: string; session: string }[]> {
  const out: { path: string; session: string }[] = [];
  for (const member of members.members) {
    if (!member.running) continue;
    let path: string | undefined;
    for (const line of (await fourLetterWord(member.clientPort, 'wchp', 2000)).split('\n')) {
      if (line.startsWith('/')) path = line.trim();
      else if (path && line.trim() !== '') out.push({ path, session: line.trim().toLowerCase() });
    }
  }
  return out;
}

/** Data watches per znode path under `under` for one session (hex id), over every running member. */
export async function watchesOf(members: Pick<ZooKeeperEnsemble, 'members'>, sessionIdHex: string, under: string): Promise<Map<string, number>> {
  const needle = `0x${sessionIdHex.replace(/^0x/, '')}`.toLowerCase();
  const counts = new Map<string, number>();
  for (const { path, session } of await dataWatches(members)) {
    if (session === needle && (path === under || path.startsWith(`${under}/`))) counts.set(path, (counts.get(path) ?? 0) + 1);
  }
  return counts;
}

/**
 * Every watch one session holds, data and children: `mntr`'s zk_watch_count (all watches of
 * all sessions) less the data watches `wchp` shows for other sessions. Only the proxy sets
 * children watches in these tests; `wchp` alone shows data watches only.
 */
export async function sessionWatchCount(members: Pick<ZooKeeperEnsemble, 'members'>, sessionIdHex: string): Promise<number> {
  const needle = `0x${sessionIdHex.replace(/^0x/, '')}`.toLowerCase();
  let total = 0;
  for (const member of members.members) {
    if (!member.running) continue;
    const match = /zk_watch_count\s+(\d+)/.exec(await fourLetterWord(member.clientPort, 'mntr', 2000));
    total += match ? Number(match[1]) : 0;
  }
  return total - (await dataWatches(members)).filter((w) => w.session !== needle).length;
}

/** `{"/p/api": 1, ...}` as one comparable text. */
export function watchText(watches: Map<string, number>): string {
  return JSON.stringify([...watches].sort(([a], [b]) => a.localeCompare(b)));
}

export interface Provider {
  readonly upstream: Upstream;
  registration: Registration;
  readonly name: string;
}

/** Starts `count` upstreams and registers each with zkroute's registration library (its own session). */
export async function startProviders(
  count: number,
  options: { zookeeper: string; basePath: string; service: string; sessionTimeoutMs: number; handler?: (name: string) => UpstreamHandler },
): Promise<Provider[]> {
  const providers: Provider[] = [];
  for (let i = 0; i < count; i++) {
    const name = `p${i + 1}`;
    const upstream = await Upstream.start(name, options.handler?.(name));
    const registration = await registerInstance({
      zookeeper: options.zookeeper, service: options.service, host: '127.0.0.1', port: upstream.port, basePath: options.basePath, id: name, sessionTimeoutMs: options.sessionTimeoutMs,
    });
    providers.push({ upstream, registration, name });
  }
  return providers;
}

export async function closeProviders(providers: readonly Provider[]): Promise<void> {
  for (const p of providers) {
    await p.registration.close().catch(() => {});
    await p.upstream.close();
  }
}
