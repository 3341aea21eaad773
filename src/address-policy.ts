// Who may be an upstream. Anyone who can write a znode can point callers (and their
// Authorization and Cookie headers) anywhere, so instance addresses are checked: against
// `--allow-upstream` CIDRs when given, else link-local ranges (where cloud metadata services
// live) are refused; zkroute's own listen and admin addresses are always refused (a loop).
// IP literals are checked when a znode is decoded; host names after resolution, at connect.
import { lookup as dnsLookup, type LookupAddress, type LookupOneOptions, type LookupAllOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = [Address, number];

/** Refused by default (without --allow-upstream): IPv4 and IPv6 link-local. */
const DEFAULT_DENY: readonly Cidr[] = [ipaddr.parseCIDR('169.254.0.0/16'), ipaddr.parseCIDR('fe80::/10')];

/** Why `text` is not a CIDR (`10.0.0.0/8`, `::1/128`, or a bare address), or undefined. */
export function cidrProblem(text: string): string | undefined {
  try {
    parseCidr(text);
    return undefined;
  } catch {
    return 'expected a CIDR such as 10.0.0.0/8 or fd00::/8 (or a single address)';
  }
}

function parseCidr(text: string): Cidr {
  const trimmed = text.trim();
  if (trimmed.includes('/')) return ipaddr.parseCIDR(trimmed);
  const address = ipaddr.parse(trimmed);
  return [address, address.kind() === 'ipv4' ? 32 : 128];
}

/** The address as one family: an IPv4-mapped IPv6 address is its IPv4 address. */
function normalize(host: string): Address | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (!ipaddr.isValid(bare)) return undefined;
  return ipaddr.process(bare.replace(/%.*$/, ''));
}

function inRange(address: Address, [range, bits]: Cidr): boolean {
  return address.kind() === range.kind() && address.match(range, bits);
}

export class AddressPolicy {
  readonly #allow: readonly Cidr[] | undefined;
  readonly #own: { address: Address | 'any'; port: number }[] = [];
  readonly #interfaces: () => Address[];

  /** `allow`: the CIDRs an instance must be in (none given: anything but link-local). */
  constructor(allow: readonly string[] = [], deps: { readonly interfaces?: () => string[] } = {}) {
    this.#allow = allow.length > 0 ? allow.map(parseCidr) : undefined;
    const list = deps.interfaces ?? (() => Object.values(networkInterfaces()).flatMap((infos) => (infos ?? []).map((i) => i.address)));
    this.#interfaces = () => list().map(normalize).filter((a): a is Address => a !== undefined);
  }

  /** One of zkroute's own listening addresses (an instance there would be a loop). */
  addOwn(host: string, port: number): void {
    const address = normalize(host);
    if (!address) return;
    this.#own.push({ address: address.range() === 'unspecified' ? 'any' : address, port });
  }

  /**
   * Why an instance at host:port is refused, or undefined. A host name passes here (it is
   * checked after resolution, by `lookup`).
   */
  refusal(host: string, port: number): string | undefined {
    const address = normalize(host);
    if (!address) return undefined;
    if (this.#isOwn(address, port)) return `${host}:${port} is one of zkroute's own listen or admin addresses`;
    if (this.#allow) {
      return this.#allow.some((cidr) => inRange(address, cidr)) ? undefined : `${address.toString()} is outside --allow-upstream`;
    }
    return DEFAULT_DENY.some((cidr) => inRange(address, cidr)) ? `${address.toString()} is link-local (cloud metadata services live there); allow it with --allow-upstream` : undefined;
  }

  #isOwn(address: Address, port: number): boolean {
    for (const own of this.#own) {
      if (own.port !== port) continue;
      if (own.address === 'any') {
        // Bound to every interface: any local address reaches it.
        const range = address.range();
        if (range === 'loopback' || range === 'unspecified') return true;
        if (this.#interfaces().some((local) => local.kind() === address.kind() && local.toString() === address.toString())) return true;
      } else if (own.address.kind() === address.kind() && own.address.toString() === address.toString()) {
        return true;
      }
    }
    return false;
  }

  /**
   * A `net.connect` lookup that resolves a host name and refuses a forbidden result with a
   * FORBIDDEN_ADDRESS error (a connect failure: nothing was sent). `port` is the instance's.
   */
  lookupFor(port: number): LookupFunction {
    return ((hostname: string, options: LookupOneOptions | LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
        if (err) return callback(err, '', 0);
        for (const a of addresses) {
          const problem = this.refusal(a.address, port);
          if (problem) {
            const refused: NodeJS.ErrnoException = new Error(`${hostname} resolves to a refused address: ${problem}`);
            refused.code = 'FORBIDDEN_ADDRESS';
            return callback(refused, '', 0);
          }
        }
        if ((options as LookupAllOptions).all) return callback(null, addresses);
        const first = addresses[0]!;
        return callback(null, first.address, first.family);
      });
    }) as LookupFunction;
  }
}
