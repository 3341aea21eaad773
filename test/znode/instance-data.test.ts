import test from 'ava';
import { decodeInstanceData, MAX_INSTANCE_DATA_BYTES } from '../../src/znode/instance-data.js';

const decode = (text: string | Buffer) => decodeInstanceData(Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'));

test('plain JSON keeps other fields as metadata and honours weight', (t) => {
  const r = decode('{"host":"10.0.0.5","port":8080,"zone":"a","weight":3}');
  t.true(r.ok);
  if (!r.ok) return;
  t.like(r.endpoint, { host: '10.0.0.5', port: 8080, weight: 3, format: 'json' });
  t.deepEqual(r.endpoint.metadata, { zone: 'a', weight: 3 });
});

test('Curator ServiceInstance uses address and port (or sslPort)', (t) => {
  const r = decode(JSON.stringify({ name: 'api', id: 'abc', address: 'api-1.internal', port: 9000, sslPort: null, payload: { zone: 'b' }, registrationTimeUTC: 1, serviceType: 'DYNAMIC' }));
  t.true(r.ok && r.endpoint.format === 'curator' && r.endpoint.host === 'api-1.internal' && r.endpoint.port === 9000);
  const ssl = decode(JSON.stringify({ name: 'api', id: 'x', address: '10.1.1.1', sslPort: 8443, serviceType: 'DYNAMIC' }));
  t.true(ssl.ok && ssl.endpoint.port === 8443);
});

test('Finagle serverset members are used only when ALIVE', (t) => {
  const alive = decode('{"serviceEndpoint":{"host":"10.0.0.9","port":31000},"additionalEndpoints":{"http":{"host":"10.0.0.9","port":31001}},"status":"ALIVE","shard":2}');
  t.true(alive.ok && alive.endpoint.format === 'serverset' && alive.endpoint.port === 31000);
  if (alive.ok) t.is(alive.endpoint.metadata['shard'], 2);
  const dead = decode('{"serviceEndpoint":{"host":"10.0.0.9","port":31000},"status":"DEAD"}');
  t.deepEqual(dead.ok ? undefined : dead.reason, 'not_alive');
});

test('host:port and [v6]:port text', (t) => {
  const v4 = decode('127.0.0.1:8080\n');
  t.true(v4.ok && v4.endpoint.host === '127.0.0.1' && v4.endpoint.port === 8080 && v4.endpoint.format === 'host-port');
  const v6 = decode('[::1]:9090');
  t.true(v6.ok && v6.endpoint.host === '::1' && v6.endpoint.port === 9090);
  const named = decode('svc-1.example.com:80');
  t.true(named.ok && named.endpoint.host === 'svc-1.example.com');
});

test('every kind of bad data is rejected with a stable reason', (t) => {
  const cases: [string | Buffer, string][] = [
    ['hello world', 'unrecognized'],
    ['{"host":"h","port":"8080"}', 'bad_port'],
    ['{"host":"h"}', 'bad_port'],
    ['{"host":"h","port":80.5}', 'bad_port'],
    ['{"host":"h","port":0}', 'bad_port'],
    ['{"host":"h","port":65536}', 'bad_port'],
    ['h:70000', 'bad_port'],
    ['{"host":"","port":80}', 'bad_host'],
    [':80', 'bad_host'],
    ['{"host":"a b","port":80}', 'bad_host'],
    ['{"host":', 'bad_json'],
    ['[1,2]', 'unrecognized'],
    ['', 'empty'],
    ['{"name":"x"}', 'unrecognized'],
    [Buffer.from([0xff, 0xfe, 0x3a, 0x38]), 'not_utf8'],
    [`{"host":"h","port":80,"pad":"${'x'.repeat(MAX_INSTANCE_DATA_BYTES)}"}`, 'too_large'],
  ];
  for (const [input, reason] of cases) {
    const r = decode(input);
    t.false(r.ok, String(input).slice(0, 40));
    if (!r.ok) t.is(r.reason as string, reason, String(input).slice(0, 40));
  }
});
