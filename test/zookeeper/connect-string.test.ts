import test from 'ava';
import { parseConnectString, validatePath } from '../../src/zookeeper/connect-string.js';

test('parses every ensemble member and the chroot', (t) => {
  const parsed = parseConnectString('zk1.example.com:2181,10.0.0.2:2182,[::1]:2183/apps/zkroute');
  t.deepEqual(parsed.servers, [
    { host: 'zk1.example.com', port: 2181 },
    { host: '10.0.0.2', port: 2182 },
    { host: '::1', port: 2183 },
  ]);
  t.is(parsed.chroot, '/apps/zkroute');
});

test('a single server without chroot', (t) => {
  const parsed = parseConnectString('localhost:2181');
  t.is(parsed.servers.length, 1);
  t.is(parsed.chroot, undefined);
});

test('rejects the root as chroot and an IPv6 address without brackets', (t) => {
  t.throws(() => parseConnectString('127.0.0.1:2181/'), { message: /chroot "\/"/ });
  t.throws(() => parseConnectString('::1:2181'), { message: /not a host name/ });
  t.throws(() => parseConnectString('[zz]:2181'), { message: /not an IPv6 address/ });
});

test('validatePath accepts znode paths and names what is wrong with bad ones', (t) => {
  t.is(validatePath('/'), undefined);
  t.is(validatePath('/providers/svc/abc-1'), undefined);
  t.regex(validatePath('providers') ?? '', /start with/);
  t.regex(validatePath('/a/') ?? '', /end with/);
  t.regex(validatePath('/a/./b') ?? '', /"\." segment/);
  t.regex(validatePath('/a\u0000b') ?? '', /control characters/);
});
