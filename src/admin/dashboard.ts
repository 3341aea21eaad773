// The dashboard's files (dashboard/ at the package root: plain HTML, CSS and a script, no build
// step), read once when the admin port is built and served from memory.
import { readFileSync } from 'node:fs';

export interface DashboardFile {
  readonly contentType: string;
  readonly body: Buffer;
}

const FILES: readonly (readonly [path: string, file: string, contentType: string])[] = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/dashboard.js', 'dashboard.js', 'text/javascript; charset=utf-8'],
  ['/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
];

/**
 * The dashboard by URL path; `directory` defaults to the package's dashboard/ (from src/ and
 * from dist/ alike). With `tokenRequired` the page knows to ask for the token before its first
 * request (no refused request, no console error, on every load).
 */
export function loadDashboard(options: { readonly tokenRequired: boolean }, directory: URL = new URL('../../dashboard/', import.meta.url)): ReadonlyMap<string, DashboardFile> {
  return new Map(FILES.map(([path, file, contentType]) => {
    let body = readFileSync(new URL(file, directory));
    if (path === '/' && options.tokenRequired) body = Buffer.from(body.toString('utf8').replace('data-token="none"', 'data-token="required"'));
    return [path, { contentType, body }];
  }));
}
