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
}
