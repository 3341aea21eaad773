import test from 'ava';
import { ProviderTable, type Instance } from '../../src/discovery/provider-table.js';

let zxid = 0;
function instance(address: string, id = address, version = 0): Instance {
  zxid += 1;
  const [host, port] = address.split(':');
  return { service: 's', id, path: `/p/s/${id}`, host: host!, port: Number(port), weight: 1, metadata: {}, format: 'json', address, uid: `/p/s/${id}#${zxid}`, createdZxid: zxid, version };
}

test('replaces a whole set, de-duplicates by host:port and ignores an unchanged set', (t) => {
  const table = new ProviderTable();
  const changes: string[] = [];
  table.on('change', (service: string) => changes.push(service));
  const a = instance('10.0.0.1:80', 'a');
  const b = instance('10.0.0.2:80', 'b');
  const dup = instance('10.0.0.1:80', 'c');
  t.is(table.replace('s', [b, a, dup]), 'changed');
  t.deepEqual(table.get('s')!.instances.map((i) => i.id), ['a', 'b']);
  t.is(table.stats().duplicatesDropped, 1);
  t.is(table.replace('s', [a, b]), 'unchanged');
  t.deepEqual(changes, ['s']);
});

test('keeps the last non-empty set when a read returns none, unless told not to', (t) => {
  const table = new ProviderTable();
  table.replace('s', [instance('10.0.0.1:80')]);
  t.is(table.replace('s', []), 'kept_on_empty');
  t.is(table.get('s')!.instances.length, 1);
  t.true(table.get('s')!.keptOnEmpty);
  t.is(table.stats().emptySetsIgnored, 1);
  const strict = new ProviderTable({ keepLastOnEmpty: false });
  strict.replace('s', [instance('10.0.0.1:80')]);
  t.is(strict.replace('s', []), 'changed');
  t.is(strict.get('s')!.instances.length, 0);
});

test('patch applies a delta: the change event names what joined and left, unchanged objects stay', (t) => {
  const table = new ProviderTable();
  const deltas: { added: string[]; removed: string[] }[] = [];
  table.on('change', (_s: string, _e: unknown, d: { added: Instance[]; removed: Instance[] }) => deltas.push({ added: d.added.map((i) => i.id), removed: d.removed.map((i) => i.id) }));
  const many = Array.from({ length: 50 }, (_, n) => instance(`10.0.1.${n}:80`, `i${n}`));
  table.replace('s', many);
  const before = table.get('s')!.instances;
  const extra = instance('10.0.0.9:80', 'extra');
  t.is(table.patch('s', [extra], []), 'changed');
  const after = table.get('s')!.instances;
  t.is(after.length, 51);
  // Sorted by address, and every carried-over instance is the same object.
  t.deepEqual(after.map((i) => i.address), [...after.map((i) => i.address)].sort());
  for (const i of before) t.true(after.includes(i));
  t.is(table.patch('s', [], [many[3]!]), 'changed');
  t.false(table.get('s')!.instances.includes(many[3]!));
  t.is(table.patch('s', [], []), 'unchanged');
  t.deepEqual(deltas.slice(1), [{ added: ['extra'], removed: [] }, { added: [], removed: ['i3'] }]);
});

test('patch: when the winner of a duplicated host:port goes, the next oldest znode takes its place', (t) => {
  const table = new ProviderTable();
  const older = instance('10.0.0.1:80', 'old');
  const newer = instance('10.0.0.1:80', 'new');
  table.replace('s', [newer, older]);
  t.deepEqual(table.get('s')!.instances.map((i) => i.id), ['old']);
  t.is(table.patch('s', [], [older]), 'changed');
  t.deepEqual(table.get('s')!.instances.map((i) => i.id), ['new']);
  // A new version of a znode: removed old plus added new, one change.
  const v1 = { ...newer, version: 1, port: 81, address: '10.0.0.1:81' };
  t.is(table.patch('s', [v1], [newer]), 'changed');
  t.deepEqual(table.get('s')!.instances.map((i) => `${i.id}@${i.version} ${i.address}`), ['new@1 10.0.0.1:81']);
});

test('patch after a kept-on-empty set serves only what ZooKeeper lists', (t) => {
  const table = new ProviderTable();
  const a = instance('10.0.0.1:80', 'a');
  table.replace('s', [a]);
  t.is(table.patch('s', [], [a]), 'kept_on_empty');
  t.deepEqual(table.get('s')!.instances.map((i) => i.id), ['a']);
  const b = instance('10.0.0.2:80', 'b');
  t.is(table.patch('s', [b], []), 'changed');
  t.deepEqual(table.get('s')!.instances.map((i) => i.id), ['b']);
  t.false(table.get('s')!.keptOnEmpty);
});

test('a run of random patches serves what replacing the whole set would', (t) => {
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const table = new ProviderTable({ keepLastOnEmpty: false });
  let current: Instance[] = [];
  for (let step = 0; step < 300; step++) {
    const removed = current.filter(() => rand(10) === 0);
    // Few distinct addresses, so duplicates come and go.
    const added = Array.from({ length: rand(4) }, () => instance(`10.0.0.${rand(12)}:80`, `n${step}-${rand(1e6)}`));
    current = [...current.filter((i) => !removed.includes(i)), ...added];
    table.patch('s', added, removed);
    const reference = new ProviderTable({ keepLastOnEmpty: false });
    reference.replace('s', current);
    t.deepEqual(table.get('s')!.instances.map((i) => i.uid), reference.get('s')!.instances.map((i) => i.uid), `step ${step}`);
  }
});
