// Importing the library starts nothing: no native code, no process hooks, no environment read.
import test from 'ava';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const PROBE = `
import { createRequire } from 'node:module';
const read = new Set();
const env = process.env;
process.env = new Proxy(env, { get(target, key) { if (typeof key === 'string' && key.startsWith('ZKROUTE_')) read.add(key); return Reflect.get(target, key); } });
const before = { exit: process.listenerCount('exit'), signals: ['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s)) };
const lib = await import('./src/index.ts');
const require = createRequire(import.meta.url);
const native = Object.keys(require.cache).filter((p) => p.includes('node_modules/zookeeper'));
const after = { exit: process.listenerCount('exit'), signals: ['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s)) };
const decoded = lib.decodeInstanceData(Buffer.from('127.0.0.1:8080'));
console.log(JSON.stringify({ native, before, after, envRead: [...read], decoded: decoded.ok, exports: Object.keys(lib).length }));
`;

function probe(): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', PROBE], { cwd: ROOT, env: { ...process.env, ZKROUTE_ZOOKEEPER: '127.0.0.1:1' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>) : reject(new Error(`probe exited ${code}: ${err}`))));
  });
}

test('importing src/index.ts loads no native code, installs no process hook and reads no ZKROUTE_ variable', async (t) => {
  const result = await probe();
  t.true((result['exports'] as number) > 20, 'the library loaded');
  t.true(result['decoded'] as boolean, 'and works without a ZooKeeper client');
  t.deepEqual(result['native'], [], 'the native zookeeper binding is not loaded');
  t.deepEqual(result['after'], result['before'], 'no exit or signal listener added');
  t.deepEqual(result['envRead'], [], 'no ZKROUTE_ variable read');
});
