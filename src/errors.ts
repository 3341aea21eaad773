import { STATUS_CODES } from 'node:http';
import type { Resolution } from './discovery/source.js';
import { DEADLINE_CODE, type TryOutcome } from './outcome.js';

// The one list of error codes a caller of the proxy can see, each with its HTTP status, and the
// one mapping from a lookup or from a request's tries to them, so every protocol answers the
// same codes: HTTP renders JSON ({"error": "<code>", "message": "...", "service": ...}).

export const ERROR_STATUS = {
  bad_request: 400,
  invalid_service: 400,
  not_routed: 404,
  unknown_service: 404,
  request_timeout: 408,
  expectation_failed: 417,
  headers_too_large: 431,
  loop_detected: 508,
  upstream_unavailable: 502,
  no_providers: 503,
  no_matching_instances: 503,
  overloaded: 503,
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

/** The error a request for `service` gets from a lookup, or undefined when it found instances. */
export function resolutionError(service: string, resolution: Resolution): ProxyError | undefined {
  switch (resolution.kind) {
    case 'instances':
      return undefined;
    case 'empty':
      return new ProxyError('no_providers', `service ${service} has no instances registered right now`, service);
    case 'unknown':
      return new ProxyError('unknown_service', `service ${service} is not registered in ZooKeeper`, service);
    case 'timeout':
      return new ProxyError('discovery_unavailable', `could not read service ${service} from ZooKeeper in time`, service);
  }
}

/** The limits a timeout message names. */
export interface TryLimits {
  readonly tryTimeoutMs: number;
  readonly deadlineMs: number;
}

/**
 * The error a request gets after its tries (see runTries), or undefined when the caller was
 * answered by an instance, its answer had started, or the caller went away.
 */
export function triesError(service: string, last: TryOutcome | undefined, tries: number, limits: TryLimits): ProxyError | undefined {
  const count = `${tries} ${tries === 1 ? 'try' : 'tries'}`;
  if (!last) return new ProxyError('no_providers', `service ${service} has no instance to try`, service);
  switch (last.kind) {
    case 'timeout':
      return new ProxyError('upstream_timeout', `no response from ${service} within ${last.code === DEADLINE_CODE ? `the ${limits.deadlineMs} ms deadline` : `${limits.tryTimeoutMs} ms`} (${count})`, service);
    case 'overloaded':
      return new ProxyError('overloaded', `${service}: the instance tried has ${last.code} (--max-connections-per-instance and --max-pending)`, service);
    case 'connect-failed':
    case 'reset-before-response':
      return new ProxyError('upstream_unavailable', `every try for ${service} failed (${count}, last: ${last.kind} ${last.code})`, service);
    default:
      return undefined;
  }
}
