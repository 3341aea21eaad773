// Decodes a provider znode's data. Four formats are detected per znode: plain JSON
// {"host","port",...metadata} (kazoo pattern), Apache Curator ServiceInstance, Finagle/Aurora
// serverset member, and text host:port ([v6]:port). Anything else is rejected with a reason.

export const MAX_INSTANCE_DATA_BYTES = 4096;

export type InstanceFormat = 'json' | 'curator' | 'serverset' | 'host-port';

/** What a znode says about one instance. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** Relative share for weighted balancing; 1 unless the data carries a positive `weight`. */
  readonly weight: number;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly format: InstanceFormat;
}

/** Stable reasons a znode is skipped; `not_alive` is a serverset member that is not ALIVE. */
export type RejectReason =
  | 'too_large' | 'not_utf8' | 'empty' | 'bad_json' | 'unrecognized' | 'forbidden_address'
  | 'bad_host' | 'bad_port' | 'not_alive';

export type DecodeResult =
  | { readonly ok: true; readonly endpoint: Endpoint }
  | { readonly ok: false; readonly reason: RejectReason; readonly detail: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

function reject(reason: RejectReason, detail: string): DecodeResult {
  return { ok: false, reason, detail };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Why `host` is unusable, or undefined. Accepts names, IPv4 and IPv6 (without brackets). */
export function hostProblem(host: unknown): string | undefined {
  if (typeof host !== 'string') return `host must be a string, got ${typeof host}`;
  if (host === '') return 'host is empty';
  if (host.includes(':')) return IPV6.test(host) ? undefined : `host "${host}" is not an IPv6 address`;
  return HOST_NAME.test(host) ? undefined : `host "${host.slice(0, 64)}" is not a host name or address`;
}

function portProblem(port: unknown): string | undefined {
  if (port === undefined || port === null) return 'port is missing';
  if (typeof port !== 'number' || !Number.isInteger(port)) return `port ${JSON.stringify(port)} is not an integer`;
  if (port < 1 || port > 65535) return `port ${port} is outside 1-65535`;
  return undefined;
}

function endpoint(host: unknown, port: unknown, metadata: Record<string, unknown>, format: InstanceFormat): DecodeResult {
  const badHost = hostProblem(host);
  if (badHost) return reject('bad_host', badHost);
  const badPort = portProblem(port);
  if (badPort) return reject('bad_port', badPort);
  const weight = typeof metadata['weight'] === 'number' && Number.isFinite(metadata['weight']) && metadata['weight'] > 0 ? metadata['weight'] : 1;
  return { ok: true, endpoint: { host: host as string, port: port as number, weight, metadata: Object.freeze(metadata), format } };
}

function without(record: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) if (!keys.includes(key)) rest[key] = value;
  return rest;
}

function decodeJson(value: Record<string, unknown>): DecodeResult {
  const serviceEndpoint = value['serviceEndpoint'];
  if (isRecord(serviceEndpoint)) {
    const status = value['status'];
    if (status !== undefined && status !== 'ALIVE') return reject('not_alive', `serverset status is ${JSON.stringify(status)}`);
    return endpoint(serviceEndpoint['host'], serviceEndpoint['port'], without(value, 'serviceEndpoint'), 'serverset');
  }
  if ('address' in value && !('host' in value)) {
    // Curator ServiceInstance: plain port, or sslPort when only that is set.
    const port = value['port'] ?? value['sslPort'];
    const payload = value['payload'];
    const metadata = without(value, 'address', 'port');
    if (isRecord(payload) && typeof payload['weight'] === 'number') metadata['weight'] = payload['weight'];
    return endpoint(value['address'], port, metadata, 'curator');
  }
  if ('host' in value || 'port' in value) return endpoint(value['host'], value['port'], without(value, 'host', 'port'), 'json');
  return reject('unrecognized', 'JSON without host/port, address/port or serviceEndpoint');
}

function decodeHostPort(text: string): DecodeResult {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1 || text[close + 1] !== ':') return reject('unrecognized', 'not [ipv6]:port');
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!host.includes(':')) return reject('bad_host', `"${host}" in brackets is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1 || text.indexOf(':') !== colon) return reject('unrecognized', 'neither JSON nor host:port');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }
  if (!/^\d{1,5}$/.test(portText)) return reject('bad_port', `port "${portText.slice(0, 16)}" is not an integer`);
  return endpoint(host, Number(portText), {}, 'host-port');
}

/** Decodes one znode's data into an endpoint, or says why it is skipped. */
export function decodeInstanceData(data: Buffer): DecodeResult {
  if (data.length > MAX_INSTANCE_DATA_BYTES) return reject('too_large', `${data.length} bytes (limit ${MAX_INSTANCE_DATA_BYTES})`);
  let text: string;
  try {
    text = utf8.decode(data).trim();
  } catch {
    return reject('not_utf8', 'data is not valid UTF-8');
  }
  if (text === '') return reject('empty', 'data is empty');
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return reject('bad_json', (err as Error).message);
    }
    return isRecord(parsed) ? decodeJson(parsed) : reject('bad_json', 'not a JSON object');
  }
  return decodeHostPort(text);
}
