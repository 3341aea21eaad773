// Binding and closing a server (HTTP callers, admin, TCP listeners), with errors that name the
// flag.
import type { AddressInfo, Server } from 'node:net';
import { hostPort } from './znode/layout.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** A `--tcp` or `--thrift` route, LISTEN=SERVICE: connections to `listen` go to `service`. */
export interface ServiceRoute {
  readonly listen: ListenAddress;
  readonly service: string;
}

/** `LISTEN=SERVICE`, as a route is written on the command line and in logs. */
export function routeText(host: string, port: number, service: string): string {
  return `${hostPort(host, port)}=${service}`;
}

/** A route's listener as bound (port 0 resolved). */
export interface BoundRoute {
  readonly service: string;
  readonly host: string;
  readonly port: number;
}

export function listen(server: Server, address: ListenAddress, flag: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${flag} ${address.host}:${address.port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`, { cause: err });
  });
}

export function bound(server: Server, fallback: ListenAddress): { host: string; port: number } {
  const a = server.address() as AddressInfo | null;
  return { host: a?.address ?? fallback.host, port: a?.port ?? fallback.port };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface RouteServers {
  /** Binds every route's address, in order; a failure names the route's flag. */
  listen(): Promise<void>;
  addresses(): BoundRoute[];
  /** Stops accepting; resolves once every connection accepted has ended. */
  close(): Promise<void>;
}

/**
 * One server per `--tcp` / `--thrift` route (`flag` is the option's name): bound, addressed and
 * closed together, errors logged with the route's flag.
 */
export function routeServers(flag: string, routes: readonly ServiceRoute[], create: (route: ServiceRoute) => Server, onError: (err: Error, listener: string) => void): RouteServers {
  const name = (route: ServiceRoute) => `--${flag} ${routeText(route.listen.host, route.listen.port, route.service)}`;
  const servers = routes.map((route) => ({ route, server: create(route), listening: false }));
  return {
    async listen() {
      for (const s of servers) {
        await listen(s.server, s.route.listen, name(s.route));
        s.listening = true;
        s.server.on('error', (err) => onError(err, name(s.route)));
      }
    },
    addresses: () => servers.map((s) => ({ service: s.route.service, ...bound(s.server, s.route.listen) })),
    close: () => Promise.all(servers.filter((s) => s.listening).map((s) => closeServer(s.server))).then(() => undefined),
  };
}
