// The Thrift codec against messages written by Apache Thrift's own Node library (npm `thrift`):
// every transport and protocol, nested containers, byte-by-byte arrival, bounds, garbage.
import test from 'ava';
import { createRequire } from 'node:module';
import { DEFAULT_LIMITS, detectFormat, encodeApplicationException, readMessage, type ThriftFormat } from '../../src/thrift/codec.js';
import { seededRandom } from '../helpers/instances.js';

const require = createRequire(import.meta.url);
/* eslint-disable @typescript-eslint/no-explicit-any */
const thrift = require('thrift') as any;
const { Thrift } = thrift;

const FORMATS: ThriftFormat[] = [
  { transport: 'unframed', protocol: 'binary' },
  { transport: 'unframed', protocol: 'binary-lax' },
  { transport: 'unframed', protocol: 'compact' },
  { transport: 'framed', protocol: 'binary' },
  { transport: 'framed', protocol: 'binary-lax' },
  { transport: 'framed', protocol: 'compact' },
];

/** A protocol instance of Apache Thrift writing into a buffer, as a client or server would. */
function writer(fmt: ThriftFormat): { proto: any; bytes(): Buffer } {
  const out: Buffer[] = [];
  const Transport = fmt.transport === 'framed' ? thrift.TFramedTransport : thrift.TBufferedTransport;
  const trans = new Transport(undefined, (buf: Buffer) => out.push(Buffer.from(buf)));
  const proto = fmt.protocol === 'compact' ? new thrift.TCompactProtocol(trans) : new thrift.TBinaryProtocol(trans, false, fmt.protocol === 'binary');
  return { proto, bytes: () => Buffer.concat(out) };
}

/** A call whose arguments nest structs, lists, maps, sets, bools, binaries and numbers. */
function call(fmt: ThriftFormat, name: string, seqid: number, depth = 3, type = Thrift.MessageType.CALL): Buffer {
  const { proto, bytes } = writer(fmt);
  proto.writeMessageBegin(name, type, seqid);
  const writeStruct = (level: number) => {
    proto.writeStructBegin('s');
    proto.writeFieldBegin('text', Thrift.Type.STRING, 1);
    proto.writeString(`level ${level} ✓`);
    proto.writeFieldEnd();
    proto.writeFieldBegin('flag', Thrift.Type.BOOL, 2);
    proto.writeBool(level % 2 === 0);
    proto.writeFieldEnd();
    proto.writeFieldBegin('big', Thrift.Type.I64, 20);
    proto.writeI64(new thrift.Int64(0x7fff, 0xfffffff0));
    proto.writeFieldEnd();
    proto.writeFieldBegin('ratio', Thrift.Type.DOUBLE, 3);
    proto.writeDouble(level / 3);
    proto.writeFieldEnd();
    proto.writeFieldBegin('scores', Thrift.Type.MAP, 4);
    proto.writeMapBegin(Thrift.Type.STRING, Thrift.Type.I32, 3);
    for (const k of ['a', 'b', 'c']) {
      proto.writeString(k);
      proto.writeI32(-level * 1000);
    }
    proto.writeMapEnd();
    proto.writeFieldEnd();
    proto.writeFieldBegin('flags', Thrift.Type.LIST, 5);
    proto.writeListBegin(Thrift.Type.BOOL, 20);
    for (let i = 0; i < 20; i++) proto.writeBool(i % 3 === 0);
    proto.writeListEnd();
    proto.writeFieldEnd();
    proto.writeFieldBegin('ids', Thrift.Type.SET, 300);
    proto.writeSetBegin(Thrift.Type.I16, 2);
    proto.writeI16(-7);
    proto.writeI16(7);
    proto.writeSetEnd();
    proto.writeFieldEnd();
    proto.writeFieldBegin('blob', Thrift.Type.STRING, 6);
    proto.writeBinary(Buffer.alloc(300, 0xab));
    proto.writeFieldEnd();
    if (level < depth) {
      proto.writeFieldBegin('children', Thrift.Type.LIST, 7);
      proto.writeListBegin(Thrift.Type.STRUCT, 2);
      writeStruct(level + 1);
      writeStruct(level + 1);
      proto.writeListEnd();
      proto.writeFieldEnd();
    }
    proto.writeFieldStop();
    proto.writeStructEnd();
  };
  writeStruct(1);
  proto.writeMessageEnd();
  proto.flush();
  return bytes();
}

test('the format is told from the first bytes, for every transport and protocol', (t) => {
  for (const fmt of FORMATS) {
    const bytes = call(fmt, 'getUser', 7);
    t.deepEqual(detectFormat(bytes), { kind: 'format', format: fmt }, `${fmt.transport} ${fmt.protocol}`);
    // With only the first bytes, it waits for more rather than guessing.
    t.is(detectFormat(bytes.subarray(0, 1)).kind, 'need-more', `${fmt.transport} ${fmt.protocol}: one byte`);
  }
});

test('THeader is recognised and refused; other bytes are refused as no protocol', (t) => {
  const header = Buffer.from([0, 0, 0, 20, 0x0f, 0xff, 0, 0, 0, 0]);
  t.like(detectFormat(header), { kind: 'rejected', reason: 'theader' });
  t.like(detectFormat(Buffer.from('GET / HTTP/1.1\r\n\r\n')), { kind: 'rejected', reason: 'unknown_protocol' });
  t.like(detectFormat(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2])), { kind: 'rejected', reason: 'unknown_protocol' });
  t.like(detectFormat(Buffer.from([0x80, 0x02, 0, 1])), { kind: 'rejected', reason: 'unknown_protocol' });
});

test('whole messages are delimited, their header read; arriving byte by byte they wait until complete', (t) => {
  for (const fmt of FORMATS) {
    const first = call(fmt, 'Users:getUser', 41);
    const second = call(fmt, 'ping', -5, 1, Thrift.MessageType.ONEWAY);
    const stream = Buffer.concat([first, second]);
    const one = readMessage(stream, fmt);
    t.deepEqual(one, { kind: 'message', message: { length: first.length, name: 'Users:getUser', type: 1, seqid: 41 } }, `${fmt.transport} ${fmt.protocol}`);
    t.deepEqual(readMessage(stream.subarray(first.length), fmt), { kind: 'message', message: { length: second.length, name: 'ping', type: 4, seqid: -5 } });
    for (let n = 0; n < first.length; n++) {
      const partial = readMessage(first.subarray(0, n), fmt);
      if (partial.kind !== 'need-more') {
        t.fail(`${fmt.transport} ${fmt.protocol}: ${n} of ${first.length} bytes gave ${partial.kind}`);
        break;
      }
    }
  }
});

test('a struct nested deeper than the bound (unframed: walked), and an oversize message, are refused', (t) => {
  for (const fmt of FORMATS) {
    const deep = call(fmt, 'deep', 1, 8);
    t.is(readMessage(deep, fmt, DEFAULT_LIMITS).kind, 'message');
    // A frame is delimited by its length and passed whole: only unframed messages are walked.
    const bounded = readMessage(deep, fmt, { ...DEFAULT_LIMITS, maxDepth: 6 });
    if (fmt.transport === 'unframed') t.like(bounded, { kind: 'rejected', reason: 'too_deep' }, `${fmt.transport} ${fmt.protocol}`);
    else t.is(bounded.kind, 'message');
    const big = call(fmt, 'big', 2, 3);
    t.like(readMessage(big, fmt, { ...DEFAULT_LIMITS, maxMessageBytes: 1000 }), { kind: 'rejected', reason: 'too_large' }, `${fmt.transport} ${fmt.protocol}: ${big.length} bytes`);
  }
  // A frame announcing more than the limit is refused from its header, before it arrives.
  t.like(readMessage(Buffer.from([0x7f, 0, 0, 0, 0x80, 0x01]), { transport: 'framed', protocol: 'binary' }), { kind: 'rejected', reason: 'too_large' });
});

test('a TApplicationException in the caller\'s format is read back by Apache Thrift', (t) => {
  for (const fmt of FORMATS) {
    const bytes = encodeApplicationException(fmt, 'getUser', 99, Thrift.TApplicationExceptionType.INTERNAL_ERROR, 'zkroute: upstream_unavailable');
    t.deepEqual(readMessage(bytes, fmt), { kind: 'message', message: { length: bytes.length, name: 'getUser', type: 3, seqid: 99 } });
    const Transport = fmt.transport === 'framed' ? thrift.TFramedTransport : thrift.TBufferedTransport;
    let decoded: { name: string; type: number; seqid: number; message: string; code: number } | undefined;
    Transport.receiver((trans: unknown) => {
      const proto = fmt.protocol === 'compact' ? new thrift.TCompactProtocol(trans) : new thrift.TBinaryProtocol(trans, fmt.protocol === 'binary', true);
      const header = proto.readMessageBegin();
      const x = new Thrift.TApplicationException();
      x.read(proto);
      proto.readMessageEnd();
      decoded = { name: header.fname, type: header.mtype, seqid: header.rseqid, message: x.message, code: x.type };
    })(bytes);
    t.deepEqual(decoded && { ...decoded, name: String(decoded.name) }, { name: 'getUser', type: Thrift.MessageType.EXCEPTION, seqid: 99, message: 'zkroute: upstream_unavailable', code: Thrift.TApplicationExceptionType.INTERNAL_ERROR }, `${fmt.transport} ${fmt.protocol}`);
  }
});

test('random and mutated bytes never throw: each is a message, a wait, or a refusal', (t) => {
  const random = seededRandom(2026);
  const samples = FORMATS.map((fmt) => call(fmt, 'm', 3, 2));
  let cases = 0;
  for (let i = 0; i < 600; i++) {
    let bytes: Buffer;
    if (i % 2 === 0) {
      bytes = Buffer.alloc(1 + Math.floor(random() * 200));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
    } else {
      // A real message with a few bytes changed: the hard cases for a walker.
      bytes = Buffer.from(samples[i % samples.length]!);
      for (let k = 0; k < 3; k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    }
    const detected = detectFormat(bytes);
    t.true(['format', 'need-more', 'rejected'].includes(detected.kind));
    for (const fmt of FORMATS) {
      const result = readMessage(bytes, fmt, { maxMessageBytes: 64 * 1024, maxDepth: 16 });
      if (result.kind === 'message') t.true(result.message.length > 0 && result.message.length <= bytes.length);
      cases += 1;
    }
  }
  t.log(`${cases} decodes of random and mutated bytes`);
});
