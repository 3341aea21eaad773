import { STATUS_CODES } from 'node:http';

// The one list of error codes a client of the proxy can see, each with its HTTP status.
// Bodies are always JSON: {"error": "<code>", "message": "...", "service": "..." or null}.

export const ERROR_STATUS = {
  bad_request: 400,
  invalid_service: 400,
  not_routed: 404,
  unknown_service: 404,
  request_timeout: 408,
  headers_too_large: 431,
  upstream_unavailable: 502,
  no_providers: 503,
  discovery_unavailable: 503,
  upstream_timeout: 504,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Codes answered with a Retry-After header (the condition is expected to clear). */
export const RETRY_AFTER_SEC: Partial<Record<ErrorCode, number>> = {
  no_providers: 1,
  discovery_unavailable: 1,
};

/** An error a request can end with: a stable code, a message for humans, the service if known. */
export class ProxyError extends Error {
  override name = 'ProxyError';
  readonly code: ErrorCode;
  readonly service: string | undefined;

  constructor(code: ErrorCode, message: string, service?: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.service = service;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  /** The JSON body sent to the client. */
  body(): string {
    return JSON.stringify({ error: this.code, message: this.message, service: this.service ?? null });
  }

  /** Response headers for `body` (with Retry-After where the condition is expected to clear). */
  headers(body: string): Record<string, string | number> {
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' };
    const retryAfter = RETRY_AFTER_SEC[this.code];
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    return headers;
  }

  /** A whole HTTP/1.1 response that closes the connection, for a raw socket (parser errors, upgrades). */
  rawResponse(): string {
    const body = this.body();
    const head = Object.entries({ ...this.headers(body), connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    return `HTTP/1.1 ${this.status} ${STATUS_CODES[this.status] ?? ''}\r\n${head}\r\n${body}`;
  }
}
