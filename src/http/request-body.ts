import { PassThrough, type Readable } from 'node:stream';
import type { CallerRequest } from './exchange.js';

export interface PreparedBody {
  readonly body: null | Buffer | Readable;
  /** True when the body can be sent again (none, or held in memory). */
  readonly replayable: boolean;
  /** Bytes of a streamed body that went through so far, when counted (see prepareBody); else 0. */
  streamedBytes(): number;
}

const none = () => 0;
const NO_BODY: PreparedBody = { body: null, replayable: true, streamedBytes: none };

/**
 * Holds a body of known length up to `limitBytes` in memory so a retry can re-send it; streams
 * anything larger or of unknown length (chunked) through once. Rejects if the client goes away
 * while a held body is being read.
 */
export function prepareBody(req: CallerRequest, limitBytes: number, countStreamed = false): Promise<PreparedBody> | PreparedBody {
  const lengthHeader = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (lengthHeader === undefined || lengthHeader === '0')) return NO_BODY;
  const length = chunked ? Infinity : Number(lengthHeader);
  if (length > limitBytes) {
    // Through a PassThrough: undici destroys the body stream it was given when a try fails,
    // and destroying the request itself would drop the client before it gets its 502.
    const pass = new PassThrough({ highWaterMark: 64 * 1024 });
    let streamed = 0;
    if (countStreamed) req.on('data', (chunk: Buffer) => (streamed += chunk.length));
    req.pipe(pass);
    // pipe() does not pass on an abort: end the upload upstream when the client goes.
    req.once('close', () => {
      if (!req.complete) pass.destroy(new Error('client went away while sending the body'));
    });
    return { body: pass, replayable: false, streamedBytes: () => streamed };
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer) => chunks.push(chunk);
    const onEnd = () => {
      cleanup();
      resolve({ body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), replayable: true, streamedBytes: none });
    };
    const onGone = () => {
      cleanup();
      reject(new Error('client went away while sending the body'));
    };
    const cleanup = () => {
      req.off('data', onData).off('end', onEnd).off('error', onGone).off('aborted', onGone);
    };
    req.on('data', onData).on('end', onEnd).on('error', onGone).on('aborted', onGone);
  });
}
