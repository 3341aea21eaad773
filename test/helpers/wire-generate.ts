// fast-check generators of HTTP/1.1 messages: mostly valid, often subtly not (the cases a
// request-smuggling or response-splitting attack is made of), pipelined, and split anywhere.
import fc from 'fast-check';

const weighted = <T>(...pairs: [number, fc.Arbitrary<T>][]) => fc.oneof(...pairs.map(([weight, arbitrary]) => ({ weight, arbitrary })));
const pick = <T>(...values: T[]) => fc.constantFrom(...values);

/** The end of a line: CRLF nearly always. */
const eol = weighted([30, fc.constant('\r\n')], [1, pick('\n', '\r', '\r\r\n', ' \r\n')]);

const tokenChars = 'abcXYZ09-_.!#$%&\'*+^`|~';
const token = fc.string({ unit: fc.constantFrom(...tokenChars.split('')), minLength: 1, maxLength: 8 });
const badNameChar = pick(' ', '\t', '"', '(', '\u00e9', '\u0000', '@', ',', ';', '/', '{');

const fieldName = weighted(
  [10, pick('Host', 'X-A', 'x-b', 'Accept', 'User-Agent', 'Cookie', 'Set-Cookie', 'Via')],
  [4, token],
  [1, fc.tuple(token, badNameChar, token).map(([a, b, c]) => a + b + c)],
  [1, fc.constant('')],
);

const valueChar = weighted([20, fc.constantFrom(...'abc XYZ019=;,/"()\u00e9\u00ff'.split(''))], [1, pick('\t', '\u0001', '\u007f', '\u0000', '\r', '\u000b')]);
const fieldValue = fc.string({ unit: valueChar, maxLength: 12 });
const colon = weighted([10, fc.constant(': ')], [3, pick(':', ':  ', ':\t', ': \t ')], [1, pick(' :', '\t:', '')]);

const field = fc.tuple(fieldName, colon, fieldValue, weighted([10, fc.constant('')], [1, pick(' ', '\t', '  ')]), eol).map(([n, c, v, trail, e]) => `${n}${c}${v}${trail}${e}`);
const obsFold = fc.tuple(pick(' ', '\t'), fieldValue, eol).map(([w, v, e]) => `${w}${v}${e}`);
const otherFields = fc.array(weighted([12, field], [1, obsFold]), { maxLength: 5 }).map((f) => f.join(''));

const connection = weighted(
  [6, fc.constant('')],
  [3, pick('Connection: keep-alive\r\n', 'Connection: close\r\n', 'Connection: Keep-Alive\r\n', 'Connection: keep-alive, close\r\n', 'Connection: closex\r\n', 'Connection: close\r\nConnection: keep-alive\r\n')],
  [1, pick('Connection: upgrade\r\nUpgrade: websocket\r\n', 'Upgrade: websocket\r\n', 'Connection: Upgrade\r\n')],
);

/** A chunked body: chunks (sizes in any case, leading zeros, extensions), last chunk, trailers. */
const chunkExtension = weighted(
  [8, fc.constant('')],
  [2, pick(';a=b', ';a', ';a=', ';a="b c"', ';a=b;c=d', ';=b')],
  [1, pick('; a=b', ' ;a', ';a=b c', ';a="b\\"c"', ';a="b"c', ';a=\u00e9', ';\u0001')],
);
const chunk = fc.tuple(fc.string({ unit: fc.constantFrom(...'abcdefghij0123456789'.split('')), minLength: 1, maxLength: 20 }), pick('lower', 'upper', 'zeros'), chunkExtension, eol, weighted([12, fc.constant('\r\n')], [1, pick('', 'X', '\n', '\r')]))
  .map(([data, form, ext, e, after]) => {
    let size = data.length.toString(16);
    if (form === 'upper') size = size.toUpperCase();
    if (form === 'zeros') size = `00${size}`;
    return `${size}${ext}${e}${data}${after}`;
  });
const trailers = weighted([6, fc.constant('')], [2, fc.array(field, { maxLength: 2 }).map((f) => f.join(''))]);
const chunkedBody = fc.tuple(fc.array(chunk, { maxLength: 3 }), weighted([10, fc.constant('0')], [1, pick('000', '0;x=y', 'x', '0 ', '')]), eol, trailers, eol)
  .map(([chunks, last, e1, t, e2]) => `${chunks.join('')}${last}${e1}${t}${e2}`);

const bodyText = fc.string({ unit: fc.constantFrom(...'abcxyz0123456789\r\n'.split('')), maxLength: 24 });

/** Framing fields and the body that goes with them (or, sometimes, does not). */
const framing = weighted(
  [6, fc.constant({ fields: '', body: '' })],
  [6, bodyText.map((b) => ({ fields: `Content-Length: ${b.length}\r\n`, body: b }))],
  [2, fc.tuple(bodyText, pick('+', ' ', '0', ', ', ' , ', '-', 'x', '')).map(([b, odd]) => ({ fields: odd === ', ' || odd === ' , ' ? `Content-Length: ${b.length}${odd}${b.length}\r\n` : `Content-Length: ${odd}${b.length}\r\n`, body: b }))],
  [1, bodyText.map((b) => ({ fields: `Content-Length: ${b.length}\r\nContent-Length: ${b.length}\r\n`, body: b }))],
  [1, bodyText.map((b) => ({ fields: `Content-Length: ${b.length}\r\nContent-Length: ${b.length + 1}\r\n`, body: b }))],
  [5, fc.tuple(pick('chunked', 'Chunked', 'gzip, chunked', ',chunked', 'gzip,chunked', '  chunked  '), chunkedBody).map(([te, b]) => ({ fields: `Transfer-Encoding: ${te}\r\n`, body: b }))],
  [2, fc.tuple(pick('chunked, gzip', 'chunked,', 'chunked;q=1', 'xchunked', 'gzip', 'identity'), chunkedBody).map(([te, b]) => ({ fields: `Transfer-Encoding: ${te}\r\n`, body: b }))],
  [1, chunkedBody.map((b) => ({ fields: 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', body: b }))],
  [1, chunkedBody.map((b) => ({ fields: 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', body: b }))],
  [1, chunkedBody.map((b) => ({ fields: 'Transfer-Encoding: chunked\r\nContent-Length: 3\r\n', body: b }))],
  [1, chunkedBody.map((b) => ({ fields: 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', body: b }))],
);

const method = weighted([20, pick('GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH')], [2, pick('PROPFIND', 'M-SEARCH', 'QUERY', 'PURGE', 'CONNECT')], [2, pick('get', 'FOO', 'GE', 'GETX', 'G\u00e9T', '')]);
const targetChar = weighted([30, fc.constantFrom(...'abcz019-._~!$&\'()*+,;=:@/?%'.split(''))], [1, pick('\t', '\u007f', '\u00e9', '#', '"', '<', '{', '\\', '^', '`', '|', '\u0001')]);
const target = weighted(
  [12, fc.string({ unit: targetChar, maxLength: 16 }).map((p) => `/${p}`)],
  [1, pick('*', 'http://a/b', 'http://a:8080/svc/x?y', 'a', 'a:80', 'localhost:443', 'https://x', '//a', 'HTTP://A/')],
);
const afterMethod = weighted([20, fc.constant(' ')], [1, pick('  ', '\t', '')]);
const version = weighted([20, fc.constant(' HTTP/1.1')], [4, fc.constant(' HTTP/1.0')], [1, pick(' HTTP/1.2', ' HTTP/2.0', ' HTTP/0.9', ' http/1.1', ' HTTP/1.1 ', '  HTTP/1.1', ' HTTP/1', ' HTTP/11', '')]);

/** One request as text (latin1). */
export const request = fc.tuple(weighted([10, fc.constant('')], [1, fc.constant('\r\n')]), method, afterMethod, target, version, eol, weighted([8, fc.constant('Host: a\r\n')], [1, fc.constant('')]), otherFields, connection, framing, eol)
  .map(([pre, m, sp, t, v, e, host, other, conn, f, end]) => `${pre}${m}${sp}${t}${v}${e}${host}${other}${conn}${f.fields}${end}${f.body}`);

const status = weighted([10, pick('200', '201', '204', '301', '304', '404', '500', '503')], [1, pick('100', '101', '099', '600', '20', '2000', 'abc', '')]);
const reason = weighted([10, pick(' OK', ' Not Found', '', ' ', ' Some Reason')], [1, pick(' O\u00e9K', ' O\tK', ' O\u0001K', '  OK')]);
const statusLine = fc.tuple(weighted([20, fc.constant('HTTP/1.1 ')], [3, fc.constant('HTTP/1.0 ')], [1, pick('HTTP/1.2 ', 'HTTP/2.0 ', 'HTTP/1.1  ', 'HTTP/1.1', 'http/1.1 ')]), status, reason, eol).map(([v, s, r, e]) => `${v}${s}${r}${e}`);

/** One response as text; a few are preceded by a 100 Continue. */
export const response = fc.tuple(weighted([12, fc.constant('')], [1, fc.constant('HTTP/1.1 100 Continue\r\n\r\n')]), statusLine, otherFields, connection, framing, eol)
  .map(([interim, line, other, conn, f, end]) => `${interim}${line}${other}${conn}${f.fields}${end}${f.body}`);

/** Several messages on one connection, plus sometimes a little garbage after. */
export const stream = (message: fc.Arbitrary<string>) => fc.tuple(fc.array(message, { minLength: 1, maxLength: 3 }), weighted([10, fc.constant('')], [1, pick('\r\n', 'x', 'GET')]))
  .map(([messages, tail]) => messages.join('') + tail);

/** Split points for a text of `length` bytes: none, a few at random, or every byte. */
export function splits(text: string, mode: 'whole' | 'bytes' | number[]): Buffer[] {
  const all = Buffer.from(text, 'latin1');
  if (mode === 'whole') return [all];
  if (mode === 'bytes') return Array.from({ length: all.length }, (_, i) => all.subarray(i, i + 1));
  const cuts = [...new Set(mode.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const c of cuts) {
    out.push(all.subarray(last, c));
    last = c;
  }
  out.push(all.subarray(last));
  return out.filter((b) => b.length > 0);
}

export const splitMode = weighted<'whole' | 'bytes' | number[]>([4, fc.constant('whole' as const)], [1, fc.constant('bytes' as const)], [4, fc.array(fc.nat(400), { minLength: 1, maxLength: 6 })]);
