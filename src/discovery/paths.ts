import { validatePath } from '../zookeeper/connect-string.js';

export type Layout = 'nested' | 'sequential';
export const LAYOUTS: readonly Layout[] = ['nested', 'sequential'];

export const MAX_SERVICE_NAME_LENGTH = 128;
const SERVICE_NAME = /^[A-Za-z0-9._-]+$/;
const SEQUENCE_SUFFIX = /^(.+?)(\d{10})$/;

/** Why `name` is not a valid service name, or undefined when it is. */
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
