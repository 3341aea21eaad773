import test from 'ava';
import { removeDotSegments, parseRoute, prefixProblem } from '../../src/http/route.js';

test('routes <prefix>/<service>/<rest>?<query> to /<rest>?<query>', (t) => {
  t.like(parseRoute('/svc/orders/v1/items?id=3', '/svc'), { kind: 'service', service: 'orders', upstreamPath: '/v1/items?id=3', prefix: '/svc/orders' });
  t.like(parseRoute('/svc/orders', '/svc'), { kind: 'service', upstreamPath: '/' });
  t.like(parseRoute('/svc/orders/', '/svc'), { kind: 'service', upstreamPath: '/' });
  t.like(parseRoute('/svc/orders?x=1', '/svc'), { kind: 'service', upstreamPath: '/?x=1' });
  t.like(parseRoute('/svc/a.b_c-9/x%2Fy', '/svc'), { kind: 'service', service: 'a.b_c-9', upstreamPath: '/x%2Fy' });
  t.like(parseRoute('/svc/%6Frders/x', '/svc'), { kind: 'service', service: 'orders' });
  t.like(parseRoute('http://proxy:4700/svc/orders/x?y', '/svc'), { kind: 'service', service: 'orders', upstreamPath: '/x?y' });
});

test('other prefixes, including /', (t) => {
  t.like(parseRoute('/api/v2/orders/x', '/api/v2'), { kind: 'service', service: 'orders', upstreamPath: '/x', prefix: '/api/v2/orders' });
  t.like(parseRoute('/orders/x', '/'), { kind: 'service', service: 'orders', upstreamPath: '/x', prefix: '/orders' });
  t.like(parseRoute('/svc/orders/x', '/api'), { kind: 'not_routed' });
});

test('not routed: outside the prefix', (t) => {
  for (const target of ['/', '/other', '/svcx/a', '/SVC/a', '*', 'ftp://x/svc/a']) t.is(parseRoute(target, '/svc').kind, 'not_routed', target);
});

test('invalid service names', (t) => {
  const cases: [string, RegExp][] = [
    ['/svc', /empty/], ['/svc/', /empty/], ['/svc/?x', /empty/], ['/svc//x', /empty/],
    ['/svc/..', /may not be/], ['/svc/%2e%2E/x', /may not be/], ['/svc/./x', /may not be/],
    ['/svc/a%00b', /only letters/], ['/svc/a%2Fb/x', /only letters/], ['/svc/a b', /only letters/],
    ['/svc/%E0%A4%A', /percent-encoding/], [`/svc/${'n'.repeat(129)}`, /longer than 128/],
  ];
  for (const [target, problem] of cases) {
    const route = parseRoute(target, '/svc');
    t.is(route.kind, 'invalid_service', target);
    if (route.kind === 'invalid_service') t.regex(route.problem, problem, target);
  }
  t.is(parseRoute(`/svc/${'n'.repeat(128)}`, '/svc').kind, 'service');
});

test('prefix validation', (t) => {
  t.is(prefixProblem('/svc'), undefined);
  t.is(prefixProblem('/'), undefined);
  t.regex(prefixProblem('svc')!, /start with/);
  t.regex(prefixProblem('/svc/')!, /end with/);
  t.regex(prefixProblem('/s?v')!, /only/);
});

test('dot segments are resolved inside the service, never above its root (RFC 3986 remove_dot_segments)', (t) => {
  const path = (target: string, normalize = true) => {
    const r = parseRoute(target, '/svc', normalize);
    return r.kind === 'service' ? r.upstreamPath : r.kind;
  };
  t.is(path('/svc/a/../../admin'), '/admin');
  t.is(path('/svc/a/x/./y/../z?q=/../k'), '/x/z?q=/../k', 'the query is left alone');
  t.is(path('/svc/a/x/%2e%2E/admin'), '/admin', 'percent-encoded dots count');
  t.is(path('/svc/a/x/..'), '/');
  t.is(path('/svc/a/x/y/..'), '/x/');
  t.is(path('/svc/a/x/.'), '/x/');
  t.is(path('/svc/a/..hidden/.config'), '/..hidden/.config', 'dots inside a segment are not dot segments');
  t.is(path('/svc/a/../../admin', false), '/../../admin', '--no-normalize-path');
});

test('removeDotSegments leaves paths without dot segments as they are (the same string)', (t) => {
  const target = '/orders/42?x=1';
  t.is(removeDotSegments(target), target);
});
