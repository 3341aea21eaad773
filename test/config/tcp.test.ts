import test from 'ava';
import { readConfigFile } from '../../src/config/options.js';
import { buildProxyConfig, PROXY_OPTIONS } from '../../src/config/proxy.js';

const zk = { zookeeper: 'zk:2181' };

test('--tcp LISTEN=SERVICE: repeatable flag, a comma list in ZKROUTE_TCP, an object in the file', (t) => {
  const flags = buildProxyConfig({ ...zk, tcp: ['127.0.0.1:9090=example-service', '[::1]:6380=cache'] }, {});
  t.deepEqual(flags.tcp, [{ listen: { host: '127.0.0.1', port: 9090 }, service: 'example-service' }, { listen: { host: '::1', port: 6380 }, service: 'cache' }]);
  const env = buildProxyConfig(zk, { ZKROUTE_TCP: '127.0.0.1:9090=example-service,127.0.0.1:6380=cache' });
  t.deepEqual(env.tcp.map((r) => `${r.listen.port}=${r.service}`), ['9090=example-service', '6380=cache']);
  const file = readConfigFile('zkroute.json', PROXY_OPTIONS, () => JSON.stringify({ tcp: { '127.0.0.1:9090': 'example-service' } }));
  t.deepEqual(buildProxyConfig(zk, {}, file).tcp, [{ listen: { host: '127.0.0.1', port: 9090 }, service: 'example-service' }]);
  t.deepEqual(buildProxyConfig(zk, {}).tcp, [], 'none by default');
  t.is(buildProxyConfig(zk, {}).tcpIdleTimeoutMs, 3_600_000);
});

test('--listen none serves TCP only; with no --tcp it is an error', (t) => {
  t.is(buildProxyConfig({ ...zk, listen: 'none', tcp: ['127.0.0.1:9090=a'] }, {}).listen, null);
  t.throws(() => buildProxyConfig({ ...zk, listen: 'none' }, {}), { message: /--listen none: nothing left to listen on/ });
});

test('bad --tcp values name the flag and the value', (t) => {
  const cases: [string[], RegExp][] = [
    [['127.0.0.1:9090'], /^--tcp "127\.0\.0\.1:9090": expected LISTEN=SERVICE/],
    [['127.0.0.1:99999=a'], /^--tcp "127\.0\.0\.1:99999=a": the address: port must be 0-65535/],
    [['nowhere=a'], /^--tcp "nowhere=a": the address: expected HOST:PORT/],
    [['127.0.0.1:9090=bad/name'], /^--tcp "127\.0\.0\.1:9090=bad\/name": service name "bad\/name" may hold only/],
    [['127.0.0.1:9090='], /service name "" is empty/],
    [['127.0.0.1:9090=a', '127.0.0.1:9090=b'], /^--tcp 127\.0\.0\.1:9090=b: 127\.0\.0\.1:9090 is already used by --tcp 127\.0\.0\.1:9090=a/],
    [['127.0.0.1:4700=a'], /^--tcp 127\.0\.0\.1:4700=a: 127\.0\.0\.1:4700 is already used by --listen/],
    [['127.0.0.1:4701=a'], /^--tcp 127\.0\.0\.1:4701=a: 127\.0\.0\.1:4701 is already used by --admin/],
  ];
  for (const [tcp, message] of cases) t.throws(() => buildProxyConfig({ ...zk, tcp }, {}), { message }, tcp.join(' '));
  t.throws(() => buildProxyConfig(zk, { ZKROUTE_TCP: '127.0.0.1:1=a,oops' }), { message: /^ZKROUTE_TCP "oops": expected LISTEN=SERVICE/ });
  t.notThrows(() => buildProxyConfig({ ...zk, tcp: ['127.0.0.1:0=a', '127.0.0.1:0=b'] }, {}), 'port 0 twice is two ports');
});

test('--thrift takes the same LISTEN=SERVICE routes and checks; --thrift-max-message and --thrift-idempotent', (t) => {
  const c = buildProxyConfig({ ...zk, listen: 'none', thrift: ['127.0.0.1:9090=example-service'], 'thrift-idempotent': ['get', 'Users:list'] }, {});
  t.deepEqual(c.thrift, [{ listen: { host: '127.0.0.1', port: 9090 }, service: 'example-service' }]);
  t.deepEqual(c.thriftIdempotent, ['get', 'Users:list']);
  t.is(c.thriftMaxMessageBytes, 16 * 1024 * 1024);
  t.deepEqual(buildProxyConfig(zk, { ZKROUTE_THRIFT_IDEMPOTENT: 'a,b' }).thriftIdempotent, ['a', 'b']);
  t.throws(() => buildProxyConfig({ ...zk, thrift: ['127.0.0.1:9090'] }, {}), { message: /^--thrift "127\.0\.0\.1:9090": expected LISTEN=SERVICE/ });
  t.throws(() => buildProxyConfig({ ...zk, tcp: ['127.0.0.1:9090=a'], thrift: ['127.0.0.1:9090=b'] }, {}), { message: /^--thrift 127\.0\.0\.1:9090=b: 127\.0\.0\.1:9090 is already used by --tcp 127\.0\.0\.1:9090=a/ });
  t.throws(() => buildProxyConfig({ ...zk, 'thrift-max-message': '2GiB' }, {}), { message: /--thrift-max-message "2GiB"/ });
  t.throws(() => buildProxyConfig({ ...zk, 'thrift-idempotent': ['bad method'] }, {}), { message: /--thrift-idempotent "bad method"/ });
});
