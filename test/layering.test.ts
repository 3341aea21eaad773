// The layering of docs/ARCHITECTURE.md, checked: every import in src/ must be allowed by the
// table there ("unit | may import"). The table is read from the document, so the rule is
// written once.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'src');

/** `zookeeper/` for src/zookeeper/client.ts, `app.ts` for src/app.ts. */
function unitOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 ? `${rel[0]}/` : rel[0]!;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(full) : e.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g)) found.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) found.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  for (const m of text.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  return found;
}

/** The layering table of docs/ARCHITECTURE.md: unit -> the units it may import. */
function readRules(): Map<string, { all: boolean; allowed: Set<string>; except: Set<string> }> {
  const doc = readFileSync(path.join(ROOT, 'docs/ARCHITECTURE.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Layering'), doc.indexOf('\n## ', doc.indexOf('## Layering') + 1));
  const rules = new Map<string, { all: boolean; allowed: Set<string>; except: Set<string> }>();
  for (const line of section.split('\n')) {
    const cells = /^\|\s*`([^`]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!cells) continue;
    const allowedText = cells[2]!;
    const units = [...allowedText.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const all = /everything/.test(allowedText);
    rules.set(cells[1]!, { all, allowed: new Set(all ? [] : units), except: new Set(all ? units : []) });
  }
  return rules;
}

const rules = readRules();
const files = sourceFiles(SRC);

test('the layering table covers every unit of src/', (t) => {
  t.true(rules.size >= 15, `read ${rules.size} rows from docs/ARCHITECTURE.md`);
  const units = new Set(files.map(unitOf));
  for (const unit of units) t.true(rules.has(unit), `${unit} has a row in the layering table of docs/ARCHITECTURE.md`);
});

test('every import in src/ runs downward as the layering table says', (t) => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of files) {
    const from = unitOf(file);
    const rule = rules.get(from);
    if (!rule) continue;
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      checked += 1;
      const to = unitOf(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      if (to === from) continue;
      const ok = rule.all ? !rule.except.has(to) : rule.allowed.has(to);
      if (!ok) broken.push(`${path.relative(ROOT, file)} imports '${spec}' (${from} -> ${to})`);
    }
  }
  t.true(checked > 100, `${checked} imports checked`);
  t.deepEqual(broken, [], 'imports that break the layering');
});

test('only src/zookeeper/ loads the native zookeeper package', (t) => {
  const offenders = files.filter((f) => unitOf(f) !== 'zookeeper/' && importsOf(readFileSync(f, 'utf8')).includes('zookeeper')).map((f) => path.relative(ROOT, f));
  t.deepEqual(offenders, []);
  t.true(files.some((f) => importsOf(readFileSync(f, 'utf8')).includes('zookeeper')), 'and src/zookeeper/ does');
});

test('the checker sees a forbidden import (it can fail)', (t) => {
  const text = "import type { ServiceProvider } from '../upstream/provider.js';\nexport { x } from './y.js';\nconst b = require('zookeeper');";
  t.deepEqual(importsOf(text), ['../upstream/provider.js', './y.js', 'zookeeper']);
  const health = rules.get('health/')!;
  t.false(health.allowed.has('upstream/'), 'health/ may not import upstream/');
  t.false(health.allowed.has('http/'), 'health/ may not import http/');
  t.is(rules.get('zookeeper/')!.allowed.size, 0, 'zookeeper/ imports nothing of ours');
});
