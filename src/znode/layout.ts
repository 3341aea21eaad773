// The znode layout zkroute reads and writes, in one place for registration and discovery:
// service names, the parent of a service's instances, instance ids, sequential names, and the
// data an instance's znode holds.
//   nested:     <base>/<service>/<id>            {"host": "...", "port": 8080, ...metadata}
//   sequential: <base>/<service>0000000007       host:port   (ZooKeeper appends the number)
import { validatePath } from '../zookeeper/connect-string.js';

export type Layout = 'nested' | 'sequential';
export const LAYOUTS: readonly Layout[] = ['nested', 'sequential'];

export const MAX_SERVICE_NAME_LENGTH = 128;
const SERVICE_NAME = /^[A-Za-z0-9._-]+$/;
const SEQUENCE_SUFFIX = /^(.+?)(\d{10})$/;
const SEQUENCE = /^\d{10}$/;

/** Why `name` is not a valid service name (or instance id), or undefined when it is. */
export function serviceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_SERVICE_NAME_LENGTH) return `is longer than ${MAX_SERVICE_NAME_LENGTH} characters`;
  if (name === '.' || name === '..') return `may not be "${name}"`;
  if (!SERVICE_NAME.test(name)) return 'may hold only letters, digits, ".", "_" and "-"';
  return undefined;
}

export function isValidServiceName(name: string): boolean {
  return serviceNameProblem(name) === undefined;
}

/** Why `path` is not a usable base path, or undefined. */
export function basePathProblem(path: string): string | undefined {
  return validatePath(path);
}

/** The znode whose children are a service's instances (nested) or every instance (sequential). */
export function watchedParent(basePath: string, layout: Layout, service: string): string {
  return layout === 'nested' ? joinPath(basePath, service) : basePath;
}

export function joinPath(parent: string, child: string): string {
  return parent === '/' ? `/${child}` : `${parent}/${child}`;
}

/** For the sequential layout: `example-service0000000003` -> `example-service`. */
export function sequentialServiceName(child: string): string | undefined {
  const match = SEQUENCE_SUFFIX.exec(child);
  return match ? match[1] : undefined;
}

/** Is `child` a sequential node of exactly `service` (`<service>` then ten digits)? */
export function isSequentialNodeOf(child: string, service: string): boolean {
  return child.startsWith(service) && SEQUENCE.test(child.slice(service.length));
}

/** `host:port`, with brackets around an IPv6 host: how instances are addressed and de-duplicated. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Where a registration creates its node: the path (nested) or the prefix ZooKeeper numbers (sequential). */
export function instancePath(basePath: string, layout: Layout, service: string, id: string): string {
  return layout === 'nested' ? joinPath(joinPath(basePath, service), id) : joinPath(basePath, service);
}

/**
 * The data an instance's znode holds: the kazoo pattern's JSON (metadata first, so host and
 * port always win) in the nested layout, `host:port` in the sequential one (ThriftPy's).
 */
export function instanceData(layout: Layout, host: string, port: number, metadata: Readonly<Record<string, unknown>> = {}): string {
  return layout === 'nested' ? JSON.stringify({ ...metadata, host, port }) : hostPort(host, port);
}
