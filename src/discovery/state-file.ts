// The saved table (`--state-file`): what ZooKeeper last said, so a proxy that starts while
// ZooKeeper is unreachable can still serve (Synapse's state file, Dubbo's registry cache). Written
// atomically (temp file, fsync, rename) at most once a second after a change ZooKeeper made;
// read at start only, and only trusted when it is whole, ours, for this base path and young.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Instance, ProviderTable } from './provider-table.js';

export const STATE_FORMAT = 'zkroute-state';
export const STATE_VERSION = 1;

export interface StateFileOptions {
  readonly path: string;
  /** The base path and connect string the table comes from (a file for another base path is foreign). */
  readonly basePath: string;
  readonly zookeeper: string;
  /** Older files are ignored. */
  readonly maxAgeMs: number;
  /** Shortest time between two writes. */
  readonly minIntervalMs?: number;
}

export interface LoadedState {
  readonly services: readonly (readonly [string, readonly Instance[]])[];
  readonly writtenAt: number;
  readonly ageMs: number;
}

interface StateDocument {
  format: string;
  version: number;
  writtenAt: number;
  basePath: string;
  zookeeper: string;
  services: Record<string, Instance[]>;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** One saved instance, checked field by field (a file is input like any other). */
function instanceFrom(raw: unknown, service: string): Instance | string {
  if (typeof raw !== 'object' || raw === null) return 'an instance is not an object';
  const r = raw as Record<string, unknown>;
  if (r['service'] !== service) return `an instance of ${service} names another service`;
  for (const key of ['id', 'path', 'address', 'uid', 'host', 'format'] as const) if (!isString(r[key])) return `an instance of ${service} has no ${key}`;
  const port = r['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return `an instance of ${service} has a bad port`;
  for (const key of ['weight', 'createdZxid', 'version'] as const) if (typeof r[key] !== 'number') return `an instance of ${service} has no ${key}`;
  const metadata = r['metadata'];
  if (typeof metadata !== 'object' || metadata === null) return `an instance of ${service} has no metadata`;
  return Object.freeze({
    service, id: r['id'] as string, path: r['path'] as string, address: r['address'] as string, uid: r['uid'] as string,
    host: r['host'] as string, port, weight: r['weight'] as number, metadata: Object.freeze({ ...metadata }), format: r['format'] as Instance['format'],
    createdZxid: r['createdZxid'] as number, version: r['version'] as number,
  });
}

/** Reads the file; undefined (with one log line saying why) unless it is usable. Never throws. */
export function loadState(options: StateFileOptions, deps: { logger: Logger; now?: () => number }): LoadedState | undefined {
  const { logger } = deps;
  const now = (deps.now ?? Date.now)();
  const ignore = (why: string) => {
    logger.warn({ path: options.path, why }, 'state file ignored');
    return undefined;
  };
  let text: string;
  try {
    text = readFileSync(options.path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return ignore(code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? (err as Error).message})`);
  }
  let doc: StateDocument;
  try {
    doc = JSON.parse(text) as StateDocument;
  } catch {
    return ignore(text.length === 0 ? 'empty' : 'not whole JSON (truncated or corrupt)');
  }
  if (typeof doc !== 'object' || doc === null || doc.format !== STATE_FORMAT) return ignore('not a zkroute state file');
  if (doc.version !== STATE_VERSION) return ignore(`format version ${String(doc.version)}, expected ${STATE_VERSION}`);
  if (doc.basePath !== options.basePath) return ignore(`written for base path ${JSON.stringify(doc.basePath)}, not ${JSON.stringify(options.basePath)}`);
  if (typeof doc.writtenAt !== 'number') return ignore('no time of writing');
  const ageMs = now - doc.writtenAt;
  if (ageMs > options.maxAgeMs) return ignore(`${Math.round(ageMs / 1000)} s old, over --state-max-age (${Math.round(options.maxAgeMs / 1000)} s)`);
  if (typeof doc.services !== 'object' || doc.services === null) return ignore('no services');
  const services: [string, Instance[]][] = [];
  for (const [service, list] of Object.entries(doc.services)) {
    if (!Array.isArray(list)) return ignore(`service ${service} is not a list`);
    const instances: Instance[] = [];
    for (const raw of list) {
      const instance = instanceFrom(raw, service);
      if (typeof instance === 'string') return ignore(instance);
      instances.push(instance);
    }
    if (instances.length > 0) services.push([service, instances]);
  }
  return { services, writtenAt: doc.writtenAt, ageMs: Math.max(0, ageMs) };
}

export interface StateFileWriter {
  /** A change ZooKeeper made: the file is rewritten within a second. */
  changed(): void;
  /** Writes a pending change now and stops. */
  close(): Promise<void>;
}

/** Keeps the file in step with `table` (call `changed()` on each change that came from ZooKeeper). */
export function createStateFileWriter(options: StateFileOptions, deps: { table: ProviderTable; logger: Logger; now?: () => number }): StateFileWriter {
  const { table, logger } = deps;
  const now = deps.now ?? Date.now;
  const minIntervalMs = options.minIntervalMs ?? 1000;
  let lastWriteAt = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  let dirty = false;
  let writing: Promise<void> = Promise.resolve();
  let failedOnce = false;
  let closed = false;

  async function write(): Promise<void> {
    dirty = false;
    lastWriteAt = now();
    const services: Record<string, Instance[]> = {};
    for (const service of table.services()) {
      const instances = table.get(service)?.instances;
      if (instances && instances.length > 0) services[service] = [...instances];
    }
    const doc: StateDocument = { format: STATE_FORMAT, version: STATE_VERSION, writtenAt: lastWriteAt, basePath: options.basePath, zookeeper: options.zookeeper, services };
    const temp = `${options.path}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const handle = await open(temp, 'w', 0o644);
      try {
        await handle.writeFile(JSON.stringify(doc));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, options.path);
      failedOnce = false;
    } catch (err) {
      await rm(temp, { force: true }).catch(() => {});
      if (!failedOnce) logger.error({ err, path: options.path }, 'state file could not be written; the last one stays');
      failedOnce = true;
    }
  }

  const schedule = () => {
    if (timer || closed) return;
    const waitMs = Math.max(0, lastWriteAt + minIntervalMs - now());
    timer = setTimeout(() => {
      timer = undefined;
      writing = writing.then(write);
    }, waitMs).unref();
  };

  return {
    changed() {
      dirty = true;
      schedule();
    },
    async close() {
      closed = true;
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      if (dirty) writing = writing.then(write);
      await writing;
    },
  };
}
