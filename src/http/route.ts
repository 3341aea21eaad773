import { serviceNameProblem } from '../znode/layout.js';
import { ProxyError } from '../errors.js';

const MAX_ECHOED = 200;

/** A caller-supplied value cut to a length fit for an error message. */
export function echo(value: string): string {
  return value.length > MAX_ECHOED ? `${value.slice(0, MAX_ECHOED)}...` : value;
}

/** The error a request gets for a route that leads to no service, or undefined. */
export function routeError(route: Route, target: string, prefix: string): ProxyError | undefined {
  if (route.kind === 'not_routed') return new ProxyError('not_routed', `${echo(target)} is outside ${prefix}/<service>/`);
  if (route.kind === 'invalid_service') return new ProxyError('invalid_service', `service name ${JSON.stringify(echo(route.service))} ${route.problem}`, echo(route.service));
  return undefined;
}

/** Where a request goes: a service and the path to send upstream, or why it goes nowhere. */
export type Route =
  | { readonly kind: 'service'; readonly service: string; readonly upstreamPath: string; readonly prefix: string }
  | { readonly kind: 'not_routed' }
  | { readonly kind: 'invalid_service'; readonly service: string; readonly problem: string };

/** Why a `--prefix` value is unusable, or undefined. */
export function prefixProblem(prefix: string): string | undefined {
  if (!prefix.startsWith('/')) return 'must start with "/"';
  if (prefix.length > 1 && prefix.endsWith('/')) return 'must not end with "/"';
  if (!/^[A-Za-z0-9._~\/-]+$/.test(prefix)) return 'may hold only letters, digits, "/", ".", "_", "~" and "-"';
  return undefined;
}

function decodeSegment(raw: string): string | undefined {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/**
 * RFC 3986 remove_dot_segments on the path (the query is left alone), never above `/`:
 * `/../../admin` -> `/admin`. A percent-encoded dot counts as a dot (an instance may decode it).
 */
export function removeDotSegments(target: string): string {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (!DOT_SEGMENT.test(path)) return target;
  const segments = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    const dots = segment.length <= 6 ? segment.replace(/%2e/gi, '.') : segment;
    const last = i === segments.length - 1;
    if (dots === '.' || dots === '..') {
      if (dots === '..') out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(segment);
  }
  return `/${out.join('/')}${q < 0 ? '' : target.slice(q)}`;
}

/**
 * Parses a request target against the prefix: `<prefix>/<service>/<rest>?<query>` routes to
 * `/<rest>?<query>` and `<prefix>/<service>` to `/`. The service segment is percent-decoded and
 * validated; the rest is passed on as the client wrote it, with dot segments resolved inside
 * the service unless `normalize` is false. Absolute-form targets (`http://host/...`) are
 * routed by their path.
 */
export function parseRoute(target: string, prefix: string, normalize = true): Route {
  let url = target;
  if (!url.startsWith('/')) {
    const scheme = /^https?:\/\/[^/?#]*/i.exec(url);
    if (!scheme) return { kind: 'not_routed' };
    url = url.slice(scheme[0].length) || '/';
  }
  const base = prefix === '/' ? '' : prefix;
  if (base !== '' && !url.startsWith(base)) return { kind: 'not_routed' };
  const after = url.slice(base.length);
  // `/svc`, `/svc?x` and `/svc/` name no service; `/svcfoo` is simply outside the prefix.
  if (after === '' || after[0] === '?') return { kind: 'invalid_service', service: '', problem: 'is empty' };
  if (after[0] !== '/') return { kind: 'not_routed' };
  let end = 1;
  while (end < after.length && after[end] !== '/' && after[end] !== '?') end++;
  const raw = after.slice(1, end);
  const service = decodeSegment(raw);
  if (service === undefined) return { kind: 'invalid_service', service: raw, problem: 'is not valid percent-encoding' };
  const problem = serviceNameProblem(service);
  if (problem) return { kind: 'invalid_service', service, problem };
  const rest = after.slice(end);
  const path = rest === '' ? '/' : rest[0] === '?' ? `/${rest}` : rest;
  const upstreamPath = normalize ? removeDotSegments(path) : path;
  return { kind: 'service', service, upstreamPath, prefix: `${base}/${service}` };
}
