import type { IncomingHttpHeaders } from 'node:http';

// Hop-by-hop headers (RFC 9110 7.6.1) and the legacy ones proxies still see. `host` is set by
// the forwarder, `transfer-encoding` is re-framed by whichever side writes the message, and
// `expect` is answered by Node's server before the body is read (undici refuses to send it).
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'proxy-connection',
]);
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'host', 'expect', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-prefix']);

/** This process's Via entry: `1.1 zkroute-<token>`, the token random per process so a loop through the same proxy is recognised. */
export function viaEntry(token: string): string {
  return `1.1 zkroute-${token}`;
}

/** Does the request already carry `entry` (it has passed through this very process)? */
export function hasPassedThrough(via: string | string[] | undefined, entry: string): boolean {
  if (via === undefined) return false;
  return (Array.isArray(via) ? via.join(',') : via).split(',').some((part) => part.trim() === entry);
}

/** The header names a Connection header lists (themselves hop-by-hop), lower-cased. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const joined = Array.isArray(value) ? value.join(',') : value;
  // The common values name no header: no Set, no split.
  const plain = joined.trim().toLowerCase();
  if (plain === 'keep-alive' || plain === 'close') return undefined;
  let tokens: Set<string> | undefined;
  for (const token of joined.split(',')) {
    const name = token.trim().toLowerCase();
    if (name && name !== 'close' && name !== 'keep-alive') (tokens ??= new Set()).add(name);
  }
  return tokens;
}

export interface ForwardedContext {
  /** The client's address (appended to X-Forwarded-For). */
  readonly peer: string | undefined;
  readonly proto: 'http' | 'https';
  /** The route's prefix, e.g. `/svc/orders` (X-Forwarded-Prefix). */
  readonly prefix: string;
  /** Host header to send: the instance's host:port, or the client's with --preserve-host. */
  readonly host: string;
  /** Keep `Connection: upgrade` and `Upgrade` (a WebSocket handshake). */
  readonly upgrade?: boolean;
  /** This proxy's Via entry (`1.1 zkroute-<token>`), appended to the caller's. */
  readonly via?: string;
}

/** Request headers for the upstream: hop-by-hop removed, Host set, X-Forwarded-* added. */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, ctx: ForwardedContext): Record<string, string | string[]> {
  const named = connectionTokens(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in incoming) {
    if (NOT_FORWARDED.has(name) || named?.has(name)) continue;
    const value = incoming[name];
    if (value !== undefined) out[name] = value;
  }
  out['host'] = ctx.host;
  const prior = incoming['x-forwarded-for'];
  const peer = ctx.peer ?? 'unknown';
  out['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${peer}` : peer;
  out['x-forwarded-proto'] = ctx.proto;
  if (incoming.host !== undefined) out['x-forwarded-host'] = incoming.host;
  out['x-forwarded-prefix'] = ctx.prefix;
  if (ctx.via) {
    const via = incoming.via;
    out['via'] = via ? `${Array.isArray(via) ? via.join(', ') : via}, ${ctx.via}` : ctx.via;
  }
  if (ctx.upgrade && incoming.upgrade !== undefined) {
    out['connection'] = 'upgrade';
    out['upgrade'] = incoming.upgrade;
  }
  return out;
}

/**
 * Response fields for the client from an instance's (name, value, name, value...): hop-by-hop
 * ones removed (framing is the caller side's to choose), as a flat list for `writeHead`.
 */
export function clientResponseFields(fields: readonly string[]): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i]!.length === 10 && fields[i]!.toLowerCase() === 'connection') {
      named = connectionTokens(fields[i + 1]!);
      break;
    }
  }
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue;
    out.push(name, fields[i + 1]!);
  }
  return out;
}

/** The same from undici's raw headers (Buffers). */
export function clientResponseRawHeaders(raw: readonly Buffer[]): string[] {
  return clientResponseFields(raw.map((b) => b.toString('latin1')));
}
