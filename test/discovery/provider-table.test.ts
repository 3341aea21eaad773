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
