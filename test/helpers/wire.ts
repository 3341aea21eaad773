// Both parsers over the same bytes, reduced to what must agree: every complete message (start
// line, fields, body, trailers, keep-alive, upgrade) and whether the stream ended cleanly.
import { createRequire } from 'node:module';
import { Http1Parser, type MessageHead } from '../../src/http/wire/parser.js';

const require = createRequire(import.meta.url);
interface NodeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(buf: Buffer): number | Error;
  finish(): undefined | Error;
  close(): void;
  [key: number]: unknown;
}
const { HTTPParser } = require('_http_common') as { HTTPParser: { new (): NodeParser; REQUEST: number; RESPONSE: number; kOnHeaders: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number } };
// The method number llhttp reports indexes its whole enum (`allMethods`), which only the binding
// exports; Node's server reads it from there too. Read once, without the deprecation warning.
const methods = (() => {
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  try {
    return (process as unknown as { binding(name: string): { allMethods: string[] } }).binding('http_parser').allMethods;
  } finally {
    process.noDeprecation = quiet;
  }
})();

export interface Message {
  method: string;
  target: string;
  version: string;
  status: number;
  fields: string[];
  body: string;
  trailers: string[];
  keepAlive: boolean;
  upgrade: boolean;
}

export interface Parsed {
  messages: Message[];
  clean: boolean;
  /** The refusal, when there was one (ours: our code; Node's: HPE_*). */
  error?: string;
}

export type Kind = 'request' | 'response';

/** Node's llhttp (the parser its http server uses, strict: no lenient flags). */
export function parseWithNode(kind: Kind, pieces: readonly Buffer[], noBody = false): Parsed {
  const parser = new HTTPParser();
  parser.initialize(kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, 16 * 1024, 0);
  const messages: Message[] = [];
  let current: Message | undefined;
  let pendingFields: string[] = [];
  let upgraded = false;
  // Node's binding flushes fields (and the target read so far) here when there are many, and
  // delivers trailers here too.
  let pendingTarget = '';
  parser[HTTPParser.kOnHeaders] = (fields: string[], url: string | undefined) => {
    if (current) current.trailers.push(...fields);
    else {
      pendingFields.push(...fields);
      pendingTarget += url ?? '';
    }
  };
  parser[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, fields: string[] | undefined, method: number | undefined, url: string | undefined, status: number | undefined, _reason: unknown, upgrade: boolean, keepAlive: boolean) => {
    // A 101 ends HTTP on the connection (Node's client tells it by the status, as ours does).
    if (kind === 'response' && status === 101) upgrade = true;
    current = { method: method === undefined ? '' : methods[method]!, target: pendingTarget + (url ?? ''), version: `${major}.${minor}`, status: status ?? 0, fields: [...pendingFields, ...(fields ?? [])], body: '', trailers: [], keepAlive, upgrade };
    pendingFields = [];
    pendingTarget = '';
    // An upgrade ends the comparison at its head: Node's server hands everything after it to the
    // 'upgrade' listener (errors in a body included), and so does the engine.
    if (upgrade) {
      upgraded = true;
      messages.push(current);
      current = undefined;
    }
    // A response to HEAD has no body (Node's client returns 1 for that).
    return noBody ? 1 : 0;
  };
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
    if (!current) return;
    current.body += chunk.toString('latin1');
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    if (current) messages.push(current);
    current = undefined;
  };
  for (const piece of pieces) {
    const r = parser.execute(piece);
    if (upgraded) {
      parser.close();
      return { messages, clean: true };
    }
    if (r instanceof Error) {
      parser.close();
      return { messages, clean: false, error: (r as Error & { code: string }).code };
    }
    if (upgraded) {
      parser.close();
      return { messages, clean: true };
    }
  }
  const f = parser.finish();
  parser.close();
  if (f instanceof Error) return { messages, clean: false, error: (f as Error & { code: string }).code };
  return { messages, clean: current === undefined };
}

/** Ours, driven as the engine drives it: after each message the rest is handed in again. */
export function parseWithOurs(kind: Kind, pieces: readonly Buffer[], noBody = false): Parsed {
  const messages: Message[] = [];
  let current: Message | undefined;
  let upgraded = false;
  const parser = new Http1Parser({ kind, maxHeadBytes: 16 * 1024 }, {
    onHead(head: MessageHead) {
      current = { method: head.method, target: head.target, version: `${head.versionMajor}.${head.versionMinor}`, status: head.status, fields: [...head.fields], body: '', trailers: [], keepAlive: head.keepAlive, upgrade: head.upgrade };
      if (head.upgrade) {
        upgraded = true;
        messages.push(current);
      }
    },
    onBody(chunk) {
      if (upgraded) return;
      current!.body += chunk.toString('latin1');
    },
    onComplete(trailers) {
      if (upgraded) return;
      if (trailers) current!.trailers.push(...trailers);
      messages.push(current!);
      current = undefined;
    },
  });
  parser.noBody = noBody;
  for (const piece of pieces) {
    let offset = 0;
    while (offset < piece.length) {
      const n = parser.execute(piece, offset);
      if (upgraded) return { messages, clean: true };
      if (n < 0) return { messages, clean: false, error: parser.error!.code };
      offset += n;
      if (upgraded) return { messages, clean: true };
    }
  }
  const err = parser.finish();
  if (err) return { messages, clean: false, error: err.code };
  return { messages, clean: current === undefined };
}
