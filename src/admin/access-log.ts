// The access log (`--access-log off|stdout|stderr|PATH`): one JSON line per finished request.
// The request path only keeps its record object; lines are built and written in batches (every
// 100 ms, or at 512 records), one write per batch, in order. A file is opened for appending and
// reopened on demand (SIGUSR1: logrotate moved it); O_APPEND keeps each worker's batches whole.
import { closeSync, openSync, write } from 'node:fs';
import type { Logger } from 'pino';
import type { RequestDone } from '../http/handler.js';

export interface AccessLogOptions {
  /** `stdout`, `stderr` or a file path (`off` is no access log at all). */
  readonly target: string;
  /** Keep the query string in `path` (it may carry tokens: off by default). */
  readonly includeQuery: boolean;
  readonly flushIntervalMs?: number;
  readonly batchRecords?: number;
}

export interface AccessLog {
  record(done: RequestDone): void;
  /** Closes and reopens the file (after logrotate renamed it); stdout/stderr: nothing to do. */
  reopen(): void;
  /** Writes what is pending and closes the file. */
  close(): Promise<void>;
}

const str = (value: string | undefined | null): string => (value ? JSON.stringify(value) : 'null');

/**
 * The line for one request (snake_case fields, as log shippers expect), put together by hand:
 * only the strings go through JSON.stringify (escaping), and `time` is formatted once per ms.
 */
export function accessLine(done: RequestDone, finishedAt: number, includeQuery: boolean, time = new Date(finishedAt).toISOString()): string {
  const url = done.url ?? '';
  const query = includeQuery ? -1 : url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  return `{"time":"${time}","method":${str(done.method)},"service":${str(done.service)},"path":${JSON.stringify(path)},"status":${done.status},"tries":${done.tries},"instance":${str(done.instance)},"duration_ms":${Math.round(done.durationMs * 1000) / 1000},"bytes_in":${done.bytesIn ?? 0},"bytes_out":${done.bytesOut ?? 0},"outcome":${str(done.outcome)},"error":${str(done.error)}}`;
}

/** Opens the log (a file is opened now, so a bad path fails at start with its error). */
export function createAccessLog(options: AccessLogOptions, deps: { logger: Logger; now?: () => number }): AccessLog {
  const logger = deps.logger.child({ component: 'access-log' });
  const now = deps.now ?? Date.now;
  const flushIntervalMs = options.flushIntervalMs ?? 100;
  const batchRecords = options.batchRecords ?? 512;
  const stream = options.target === 'stdout' ? process.stdout : options.target === 'stderr' ? process.stderr : undefined;
  let fd = stream ? -1 : openSync(options.target, 'a');
  let pending: { done: RequestDone; at: number }[] = [];
  let timer: NodeJS.Timeout | undefined;
  /** Batches written to the file one at a time, in order. */
  let writing: Promise<void> = Promise.resolve();
  let failedOnce = false;
  let closed = false;

  const writeFile = (text: string) => new Promise<void>((resolve) => {
    const buf = Buffer.from(text);
    const target = fd;
    write(target, buf, 0, buf.length, null, (err) => {
      if (err && !failedOnce) {
        failedOnce = true;
        logger.error({ err, path: options.target }, 'access log write failed; lines are dropped until it works again');
      } else if (!err) failedOnce = false;
      resolve();
    });
  });

  const flush = () => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    let text = '';
    let lastAt = -1;
    let time = '';
    for (const { done, at } of batch) {
      if (at !== lastAt) {
        lastAt = at;
        time = new Date(at).toISOString();
      }
      text += `${accessLine(done, at, options.includeQuery, time)}\n`;
    }
    if (stream) stream.write(text);
    else writing = writing.then(() => writeFile(text));
  };

  return {
    record(done) {
      if (closed) return;
      pending.push({ done, at: now() });
      if (pending.length >= batchRecords) flush();
      else timer ??= setTimeout(flush, flushIntervalMs).unref();
    },
    reopen() {
      if (stream || closed) return;
      flush();
      // After the batches already queued: they belong to the old file.
      writing = writing.then(() => {
        try {
          const next = openSync(options.target, 'a');
          closeSync(fd);
          fd = next;
          logger.info({ path: options.target }, 'access log reopened');
        } catch (err) {
          logger.error({ err, path: options.target }, 'access log could not be reopened; still writing to the old file');
        }
      });
    },
    async close() {
      if (closed) return;
      flush();
      closed = true;
      await writing;
      if (!stream) closeSync(fd);
    },
  };
}
