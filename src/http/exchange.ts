// What the request handler reads and writes of one exchange with a caller: Node's
// IncomingMessage / ServerResponse are one (engine `node`), the wire engine's request and
// response are another (engine `zkroute`). Everything above the wire is written against these.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

/** A caller's request: its head, and its body as a stream. */
export interface CallerRequest extends Readable {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  /** Lower-cased names, duplicates combined as Node combines them. */
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string | undefined };
  /** The whole body has been received. */
  readonly complete: boolean;
}

/** The answer to a caller, as the handler and sendError use it. */
export interface CallerResponse {
  readonly headersSent: boolean;
  readonly statusCode: number;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  /** The caller's connection (bytes written to it are counted for the access log). */
  readonly socket?: { readonly bytesWritten: number } | null;
  writeHead(status: number, headers: Record<string, string | number> | string[]): unknown;
  end(body?: string): unknown;
  destroy(): unknown;
  setHeader(name: string, value: string): unknown;
  on(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}
