// Thrift on the wire, as far as a per-call proxy needs it: which transport and protocol a caller
// speaks (told from its first bytes, as Envoy's thrift_proxy does), where each message ends
// (a frame's length, or a walk over the message's struct without building objects, with bounded
// nesting and sizes), the message header (method, type, sequence id), and a
// TApplicationException encoded in the caller's own format.

export type ThriftTransport = 'framed' | 'unframed';
/** `binary` with the version word (strict), `binary-lax` the old form without it, `compact`. */
export type ThriftProtocol = 'binary' | 'binary-lax' | 'compact';

export interface ThriftFormat {
  readonly transport: ThriftTransport;
  readonly protocol: ThriftProtocol;
}

export const MESSAGE_TYPE = { call: 1, reply: 2, exception: 3, oneway: 4 } as const;

export interface ThriftLimits {
  /** Largest message (a frame's length, or an unframed message's size). */
  readonly maxMessageBytes: number;
  /** Deepest nesting of structs and containers. */
  readonly maxDepth: number;
}

export const DEFAULT_LIMITS: ThriftLimits = { maxMessageBytes: 16 * 1024 * 1024, maxDepth: 64 };

/** Stable reasons a caller's bytes are refused (the `reason` label of the rejected metric). */
export type ThriftRejectReason = 'theader' | 'unknown_protocol' | 'malformed' | 'too_large' | 'too_deep';

export type Detection =
  | { readonly kind: 'format'; readonly format: ThriftFormat }
  | { readonly kind: 'need-more' }
  | { readonly kind: 'rejected'; readonly reason: ThriftRejectReason; readonly detail: string };

export interface ThriftMessage {
  /** Bytes of the whole message on the wire (frame header included). */
  readonly length: number;
  /** Method name as sent (a multiplexed `Service:method` kept whole). */
  readonly name: string;
  readonly type: number;
  readonly seqid: number;
}

export type ReadResult =
  | { readonly kind: 'message'; readonly message: ThriftMessage }
  | { readonly kind: 'need-more' }
  | { readonly kind: 'rejected'; readonly reason: ThriftRejectReason; readonly detail: string };

const COMPACT_ID = 0x82;
const COMPACT_VERSION = 1;
const THEADER_MAGIC = 0x0fff;
const MAX_NAME_BYTES = 64 * 1024;

/** Thrown inside a walk: the bytes end before the message does. */
const NEED_MORE = Symbol('need-more');

class Rejected extends Error {
  constructor(readonly reason: ThriftRejectReason, detail: string) {
    super(detail);
  }
}

/** A bounds-checked reader over one buffer; running off the end throws NEED_MORE. */
class Cursor {
  pos: number;
  /** `end`: where the bytes at hand stop; `limit`: the most a message may hold. */
  constructor(readonly buf: Buffer, start: number, readonly end: number, readonly limit: number) {
    this.pos = start;
  }

  need(n: number): void {
    if (this.pos + n > this.end) throw NEED_MORE;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  i16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  /** An unsigned LEB128 varint of at most `maxBytes` bytes (5 for 32 bits, 10 for 64). */
  varint(maxBytes = 5): number {
    let result = 0;
    for (let i = 0; i < maxBytes; i++) {
      const b = this.u8();
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    throw new Rejected('malformed', 'a varint longer than its type allows');
  }

  text(n: number): string {
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function isNameByte(b: number): boolean {
  return b >= 0x21 && b <= 0x7e;
}

/**
 * Tells a caller's format from its first bytes: strict binary (0x80 0x01), compact (0x82), or
 * a 4-byte frame length followed by one of those (or the lax binary form); THeader (a frame
 * whose body starts 0x0FFF) is recognised and refused.
 */
export function detectFormat(buf: Buffer): Detection {
  if (buf.length < 2) return { kind: 'need-more' };
  const strictOrCompact = (at: number, transport: ThriftTransport): Detection | undefined => {
    if (buf[at] === 0x80) return buf[at + 1] === 0x01 ? format(transport, 'binary') : reject('unknown_protocol', `binary version byte 0x${buf[at + 1]!.toString(16)}`);
    if (buf[at] === COMPACT_ID) return (buf[at + 1]! & 0x1f) === COMPACT_VERSION ? format(transport, 'compact') : reject('unknown_protocol', `compact version ${buf[at + 1]! & 0x1f}`);
    return undefined;
  };
  const unframed = strictOrCompact(0, 'unframed');
  if (unframed) return unframed;
  if (buf.length < 6) return { kind: 'need-more' };
  const first = buf.readInt32BE(0);
  if (first <= 0) return reject('unknown_protocol', `first word 0x${(first >>> 0).toString(16)} is neither a frame length nor a message start`);
  if (buf.readUInt16BE(4) === THEADER_MAGIC) return reject('theader', 'THeader transport is not supported');
  const framed = strictOrCompact(4, 'framed');
  if (framed) return framed;
  // The lax binary form: unframed, `first` is the method name's length, the name follows, then
  // a message type; framed, `first` is the frame's length and the name's length comes next.
  if (first <= MAX_NAME_BYTES) {
    let i = 4;
    while (i < Math.min(buf.length, 4 + first) && isNameByte(buf[i]!)) i++;
    if (i === 4 + first) {
      if (buf.length <= i) return { kind: 'need-more' };
      if (buf[i]! >= 1 && buf[i]! <= 4) return format('unframed', 'binary-lax');
    } else if (i === buf.length) {
      return { kind: 'need-more' };
    }
  }
  if (buf.length < 9) return { kind: 'need-more' };
  const nameLength = buf.readInt32BE(4);
  if (nameLength > 0 && nameLength <= MAX_NAME_BYTES && isNameByte(buf[8]!)) return format('framed', 'binary-lax');
  return reject('unknown_protocol', 'no Thrift transport and protocol matches the first bytes');
}

function format(transport: ThriftTransport, protocol: ThriftProtocol): Detection {
  return { kind: 'format', format: { transport, protocol } };
}

function reject(reason: ThriftRejectReason, detail: string): { kind: 'rejected'; reason: ThriftRejectReason; detail: string } {
  return { kind: 'rejected', reason, detail };
}

/**
 * The next whole message at the start of `buf` in `format`, or `need-more`, or why the bytes
 * are refused. Nothing is copied; an unframed message is walked field by field.
 */
export function readMessage(buf: Buffer, fmt: ThriftFormat, limits: ThriftLimits = DEFAULT_LIMITS): ReadResult {
  try {
    if (fmt.transport === 'framed') {
      if (buf.length < 4) return { kind: 'need-more' };
      const frame = buf.readInt32BE(0);
      if (frame <= 0) return reject('malformed', `frame length ${frame}`);
      if (frame > limits.maxMessageBytes) return reject('too_large', `a ${frame}-byte frame (limit ${limits.maxMessageBytes})`);
      // The header is read as soon as it is in, so a refusal does not wait for a whole frame.
      const header = readHeader(new Cursor(buf, 4, Math.min(buf.length, 4 + frame), limits.maxMessageBytes), fmt.protocol);
      if (buf.length < 4 + frame) return { kind: 'need-more' };
      return { kind: 'message', message: { length: 4 + frame, ...header } };
    }
    const end = Math.min(buf.length, limits.maxMessageBytes);
    const c = new Cursor(buf, 0, end, limits.maxMessageBytes);
    const header = readHeader(c, fmt.protocol);
    try {
      skipStruct(c, fmt.protocol, limits.maxDepth, 1);
    } catch (err) {
      if (err === NEED_MORE && buf.length >= limits.maxMessageBytes) return reject('too_large', `an unframed message over ${limits.maxMessageBytes} bytes`);
      throw err;
    }
    return { kind: 'message', message: { length: c.pos, ...header } };
  } catch (err) {
    if (err === NEED_MORE) return { kind: 'need-more' };
    if (err instanceof Rejected) return reject(err.reason, err.message);
    throw err;
  }
}

function readHeader(c: Cursor, protocol: ThriftProtocol): { name: string; type: number; seqid: number } {
  if (protocol === 'compact') {
    if (c.u8() !== COMPACT_ID) throw new Rejected('malformed', 'not a compact message');
    const versionAndType = c.u8();
    if ((versionAndType & 0x1f) !== COMPACT_VERSION) throw new Rejected('malformed', 'compact version');
    const type = (versionAndType >> 5) & 0x07;
    const seqid = c.varint() | 0; // written as an unsigned varint of the i32
    const nameLength = c.varint();
    if (nameLength > MAX_NAME_BYTES) throw new Rejected('malformed', `a ${nameLength}-byte method name`);
    return { name: c.text(nameLength), type: checkType(type), seqid };
  }
  if (protocol === 'binary') {
    const word = c.i32();
    if ((word & 0xffff0000) !== (0x80010000 | 0)) throw new Rejected('malformed', 'binary version word');
    const type = word & 0xff;
    const nameLength = c.i32();
    if (nameLength < 0 || nameLength > MAX_NAME_BYTES) throw new Rejected('malformed', `a ${nameLength}-byte method name`);
    const name = c.text(nameLength);
    return { name, type: checkType(type), seqid: c.i32() };
  }
  const nameLength = c.i32();
  if (nameLength < 0 || nameLength > MAX_NAME_BYTES) throw new Rejected('malformed', `a ${nameLength}-byte method name`);
  const name = c.text(nameLength);
  const type = c.u8();
  return { name, type: checkType(type), seqid: c.i32() };
}

function checkType(type: number): number {
  if (type < 1 || type > 4) throw new Rejected('malformed', `message type ${type}`);
  return type;
}

// Binary protocol type ids.
const B = { STOP: 0, BOOL: 2, BYTE: 3, DOUBLE: 4, I16: 6, I32: 8, I64: 10, STRING: 11, STRUCT: 12, MAP: 13, SET: 14, LIST: 15, UUID: 16 } as const;
// Compact protocol type ids (in field headers and container headers).
const C = { STOP: 0, TRUE: 1, FALSE: 2, BYTE: 3, I16: 4, I32: 5, I64: 6, DOUBLE: 7, BINARY: 8, LIST: 9, SET: 10, MAP: 11, STRUCT: 12, UUID: 13 } as const;

function skipStruct(c: Cursor, protocol: ThriftProtocol, maxDepth: number, depth: number): void {
  if (depth > maxDepth) throw new Rejected('too_deep', `nesting deeper than ${maxDepth}`);
  if (protocol === 'compact') {
    for (;;) {
      const header = c.u8();
      const type = header & 0x0f;
      if (type === C.STOP) return;
      if ((header & 0xf0) === 0) c.varint(); // the field id, zigzag, when no delta fits
      if (type === C.TRUE || type === C.FALSE) continue;
      skipCompact(c, type, maxDepth, depth);
    }
  }
  for (;;) {
    const type = c.u8();
    if (type === B.STOP) return;
    c.i16();
    skipBinary(c, type, maxDepth, depth);
  }
}

/** A container's element count: every element takes a byte at least, so no more than the limit. */
function count(c: Cursor, n: number): number {
  if (n < 0) throw new Rejected('malformed', `a container of ${n} elements`);
  if (n > c.limit) throw new Rejected('too_large', `a container of ${n} elements (limit ${c.limit} bytes)`);
  return n;
}

function skipBinary(c: Cursor, type: number, maxDepth: number, depth: number): void {
  switch (type) {
    case B.BOOL:
    case B.BYTE:
      c.skip(1);
      return;
    case B.I16:
      c.skip(2);
      return;
    case B.I32:
      c.skip(4);
      return;
    case B.DOUBLE:
    case B.I64:
      c.skip(8);
      return;
    case B.UUID:
      c.skip(16);
      return;
    case B.STRING: {
      const n = c.i32();
      if (n < 0) throw new Rejected('malformed', `a string of ${n} bytes`);
      c.skip(n);
      return;
    }
    case B.STRUCT:
      skipStruct(c, 'binary', maxDepth, depth + 1);
      return;
    case B.MAP: {
      if (depth + 1 > maxDepth) throw new Rejected('too_deep', `nesting deeper than ${maxDepth}`);
      const kt = c.u8();
      const vt = c.u8();
      const n = count(c, c.i32());
      for (let i = 0; i < n; i++) {
        skipBinary(c, kt, maxDepth, depth + 1);
        skipBinary(c, vt, maxDepth, depth + 1);
      }
      return;
    }
    case B.SET:
    case B.LIST: {
      if (depth + 1 > maxDepth) throw new Rejected('too_deep', `nesting deeper than ${maxDepth}`);
      const et = c.u8();
      const n = count(c, c.i32());
      for (let i = 0; i < n; i++) skipBinary(c, et, maxDepth, depth + 1);
      return;
    }
    default:
      throw new Rejected('malformed', `binary type ${type}`);
  }
}

function skipCompact(c: Cursor, type: number, maxDepth: number, depth: number): void {
  switch (type) {
    case C.TRUE:
    case C.FALSE:
    case C.BYTE:
      c.skip(1); // a bool inside a container is one byte
      return;
    case C.I16:
    case C.I32:
      c.varint(5);
      return;
    case C.I64:
      c.varint(10);
      return;
    case C.DOUBLE:
      c.skip(8);
      return;
    case C.UUID:
      c.skip(16);
      return;
    case C.BINARY:
      c.skip(c.varint());
      return;
    case C.STRUCT:
      skipStruct(c, 'compact', maxDepth, depth + 1);
      return;
    case C.LIST:
    case C.SET: {
      if (depth + 1 > maxDepth) throw new Rejected('too_deep', `nesting deeper than ${maxDepth}`);
      const header = c.u8();
      const et = header & 0x0f;
      const n = count(c, (header >> 4) === 15 ? c.varint() : header >> 4);
      for (let i = 0; i < n; i++) skipCompact(c, et, maxDepth, depth + 1);
      return;
    }
    case C.MAP: {
      if (depth + 1 > maxDepth) throw new Rejected('too_deep', `nesting deeper than ${maxDepth}`);
      const n = count(c, c.varint());
      if (n === 0) return;
      const kv = c.u8();
      for (let i = 0; i < n; i++) {
        skipCompact(c, kv >> 4, maxDepth, depth + 1);
        skipCompact(c, kv & 0x0f, maxDepth, depth + 1);
      }
      return;
    }
    default:
      throw new Rejected('malformed', `compact type ${type}`);
  }
}

/** TApplicationException types (Thrift's). */
export const APPLICATION_EXCEPTION = { unknown: 0, unknownMethod: 1, internalError: 6, protocolError: 7 } as const;

/**
 * A reply carrying a TApplicationException { 1: string message, 2: i32 type } for call
 * `name`/`seqid`, in the caller's own format.
 */
export function encodeApplicationException(fmt: ThriftFormat, name: string, seqid: number, type: number, message: string): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const text = Buffer.from(message, 'utf8');
  const parts: Buffer[] = [];
  if (fmt.protocol === 'compact') {
    parts.push(Buffer.from([COMPACT_ID, COMPACT_VERSION | (MESSAGE_TYPE.exception << 5)]), varint(seqid >>> 0), varint(nameBytes.length), nameBytes);
    // field 1 (delta 1), binary; field 2 (delta 1), i32 as zigzag varint; stop.
    parts.push(Buffer.from([0x10 | C.BINARY]), varint(text.length), text, Buffer.from([0x10 | C.I32]), varint(((type << 1) ^ (type >> 31)) >>> 0), Buffer.from([C.STOP]));
  } else {
    const i32 = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(v | 0);
      return b;
    };
    if (fmt.protocol === 'binary') parts.push(i32(0x80010000 | MESSAGE_TYPE.exception), i32(nameBytes.length), nameBytes, i32(seqid));
    else parts.push(i32(nameBytes.length), nameBytes, Buffer.from([MESSAGE_TYPE.exception]), i32(seqid));
    parts.push(Buffer.from([B.STRING, 0, 1]), i32(text.length), text, Buffer.from([B.I32, 0, 2]), i32(type), Buffer.from([B.STOP]));
  }
  const body = Buffer.concat(parts);
  if (fmt.transport === 'unframed') return body;
  const frame = Buffer.alloc(4);
  frame.writeInt32BE(body.length);
  return Buffer.concat([frame, body]);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value >>> 0;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}
