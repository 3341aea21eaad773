import { ZkError } from './errors.js';

/** One ensemble member as written in a connect string. */
export interface ZkServerAddress {
  readonly host: string;
  readonly port: number;
}

/** A validated connect string: every ensemble member and an optional chroot. */
export interface ParsedConnectString {
  readonly servers: readonly ZkServerAddress[];
  readonly chroot: string | undefined;
  /** The string as the native client should see it. */
  readonly normalized: string;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

function invalid(connectString: string, why: string): ZkError {
  return new ZkError('BAD_CONNECT_STRING', `invalid ZooKeeper connect string ${JSON.stringify(connectString)}: ${why}`);
}

/**
 * Validates a ZooKeeper znode path (absolute, no trailing slash, no empty, "." or ".." segments,
 * no NUL or control characters). The native client truncates at NUL and the server rejects the
 * rest with an unhelpful code, so every path is checked before it reaches them.
 */
export function validatePath(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must start with "/"';
  if (path === '/') return undefined;
  if (path.endsWith('/')) return 'must not end with "/"';
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') return 'must not contain an empty segment ("//")';
    if (segment === '.' || segment === '..') return `must not contain a "${segment}" segment`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'must not contain control characters';
  return undefined;
}

/** Parses `host:port[,host:port...][/chroot]`, throwing ZkError BAD_CONNECT_STRING naming the problem. */
export function parseConnectString(connectString: string): ParsedConnectString {
  if (typeof connectString !== 'string' || connectString.trim() === '') {
    throw invalid(String(connectString), 'it is empty');
  }
  if (/\s/.test(connectString)) throw invalid(connectString, 'it contains whitespace');
  const slash = connectString.indexOf('/');
  const hostsPart = slash === -1 ? connectString : connectString.slice(0, slash);
  const chroot = slash === -1 ? undefined : connectString.slice(slash);
  if (chroot !== undefined) {
    if (chroot === '/') throw invalid(connectString, 'the chroot "/" is the root: leave it out');
    const problem = validatePath(chroot);
    if (problem) throw invalid(connectString, `the chroot ${problem}`);
  }
  const servers: ZkServerAddress[] = [];
  for (const member of hostsPart.split(',')) {
    if (member === '') throw invalid(connectString, 'it has an empty server entry');
    let host: string;
    let portText: string;
    if (member.startsWith('[')) {
      const close = member.indexOf(']');
      if (close === -1 || member[close + 1] !== ':') throw invalid(connectString, `"${member}" is not [ipv6]:port`);
      host = member.slice(1, close);
      portText = member.slice(close + 2);
      if (!IPV6.test(host) || !host.includes(':')) throw invalid(connectString, `"${host}" is not an IPv6 address`);
    } else {
      const colon = member.lastIndexOf(':');
      if (colon === -1) throw invalid(connectString, `"${member}" has no port (expected host:port)`);
      host = member.slice(0, colon);
      portText = member.slice(colon + 1);
      if (!HOSTNAME.test(host)) throw invalid(connectString, `"${host}" is not a host name or IPv4 address`);
    }
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw invalid(connectString, `port "${portText}" of "${member}" is not in 1-65535`);
    }
    servers.push({ host, port: Number(portText) });
  }
  return Object.freeze({ servers: Object.freeze(servers), chroot, normalized: connectString });
}
