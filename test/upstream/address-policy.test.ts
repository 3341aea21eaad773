import test from 'ava';
import { AddressPolicy, cidrProblem } from '../../src/address-policy.js';

test('by default link-local addresses are refused (IPv4, IPv6, IPv4-mapped), others pass', (t) => {
  const policy = new AddressPolicy();
  t.regex(policy.refusal('169.254.169.254', 80) ?? '', /link-local/);
  t.regex(policy.refusal('fe80::1', 80) ?? '', /link-local/);
  t.regex(policy.refusal('::ffff:169.254.169.254', 80) ?? '', /169\.254\.169\.254 is link-local/);
  t.regex(policy.refusal('[fe80::abcd]', 80) ?? '', /link-local/);
  for (const ok of ['127.0.0.1', '10.1.2.3', '::1', '2001:db8::1', 'orders.internal']) t.is(policy.refusal(ok, 80), undefined, ok);
});

test('--allow-upstream: only the listed ranges; a host name is left to the connect-time lookup', (t) => {
  const policy = new AddressPolicy(['127.0.0.2/32', 'fd00::/8', '169.254.0.0/16']);
  t.is(policy.refusal('127.0.0.2', 80), undefined);
  t.regex(policy.refusal('127.0.0.1', 80) ?? '', /127\.0\.0\.1 is outside --allow-upstream/);
  t.is(policy.refusal('fd12::5', 80), undefined);
  t.regex(policy.refusal('::1', 80) ?? '', /outside/);
  t.is(policy.refusal('169.254.169.254', 80), undefined, 'listed explicitly: allowed');
  t.is(policy.refusal('example-host', 80), undefined);
});

test("zkroute's own addresses are refused, an unspecified bind covering loopback and every local interface", (t) => {
  const policy = new AddressPolicy([], { interfaces: () => ['127.0.0.1', '192.0.2.10', '::1'] });
  policy.addOwn('127.0.0.1', 4701);
  policy.addOwn('0.0.0.0', 4700);
  t.regex(policy.refusal('127.0.0.1', 4701) ?? '', /own listen or admin/);
  t.is(policy.refusal('127.0.0.1', 4702), undefined, 'another port');
  t.is(policy.refusal('127.0.0.2', 4701), undefined, 'another address, same port');
  t.regex(policy.refusal('127.0.0.5', 4700) ?? '', /own/, 'loopback reaches a 0.0.0.0 bind');
  t.regex(policy.refusal('192.0.2.10', 4700) ?? '', /own/, 'a local interface reaches it');
  t.is(policy.refusal('192.0.2.11', 4700), undefined, 'another host');
  // Own addresses are refused even inside --allow-upstream.
  const allowed = new AddressPolicy(['127.0.0.0/8']);
  allowed.addOwn('127.0.0.1', 9000);
  t.regex(allowed.refusal('127.0.0.1', 9000) ?? '', /own/);
});

test('host names are checked after resolution: a forbidden result is a FORBIDDEN_ADDRESS connect error', async (t) => {
  const policy = new AddressPolicy(['10.0.0.0/8']);
  const lookup = policy.lookupFor(80);
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => lookup('localhost', { family: 0 }, (e) => resolve(e)));
  t.is(err?.code, 'FORBIDDEN_ADDRESS');
  t.regex(err?.message ?? '', /localhost resolves to a refused address: .* outside --allow-upstream/);
  const open = new AddressPolicy().lookupFor(80);
  const address = await new Promise<string>((resolve, reject) => open('localhost', { family: 4 }, (e, a) => (e ? reject(e) : resolve(a as string))));
  t.is(address, '127.0.0.1');
});

test('cidrProblem names what a CIDR looks like', (t) => {
  t.is(cidrProblem('10.0.0.0/8'), undefined);
  t.is(cidrProblem('::1'), undefined);
  t.regex(cidrProblem('10.0.0.0/33') ?? '', /expected a CIDR/);
  t.regex(cidrProblem('nonsense') ?? '', /expected a CIDR/);
});
