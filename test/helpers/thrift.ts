// A real Thrift service over Apache Thrift's own Node library (npm `thrift`), in any transport
// (buffered by default, as the ThriftPy seed's TSimpleServer speaks, or framed) and protocol
// (strict binary by default, lax binary, compact). The IDL, written out by hand (no compiler
// needed here):
//   exception NotFound { 1: string what }
//   service Echo {
//     string echo(1: string text)                         // "<server name>:<text>"
//     string fail(1: string text) throws (1: NotFound nf)  // always throws NotFound
//     oneway void note(1: string text)                     // recorded by the server
//     string hang(1: string text)                          // never answered
//     string boom(1: string text)                          // a TApplicationException
//   }
import { createRequire } from 'node:module';
import type { AddressInfo, Server, Socket } from 'node:net';

const require = createRequire(import.meta.url);
/* eslint-disable @typescript-eslint/no-explicit-any */
const thrift = require('thrift') as any;
const { Thrift } = thrift;

interface Protocol {
  readMessageBegin(): { fname: string; mtype: number; rseqid: number };
  readMessageEnd(): void;
  readStructBegin(): void;
  readStructEnd(): void;
  readFieldBegin(): { ftype: number; fid: number };
  readFieldEnd(): void;
  readString(): string;
  skip(type: number): void;
  writeMessageBegin(name: string, type: number, seqid: number): void;
  writeMessageEnd(): void;
  writeStructBegin(name: string): void;
  writeStructEnd(): void;
  writeFieldBegin(name: string, type: number, id: number): void;
  writeFieldEnd(): void;
  writeFieldStop(): void;
  writeString(value: string): void;
  flush(): void;
}

/** Reads a struct whose field 0 or 1 is a string; other fields are skipped. */
function readStringStruct(input: Protocol, fid: number): string | undefined {
  let value: string | undefined;
  input.readStructBegin();
  for (;;) {
    const field = input.readFieldBegin();
    if (field.ftype === Thrift.Type.STOP) break;
    if (field.fid === fid && field.ftype === Thrift.Type.STRING) value = input.readString();
    else input.skip(field.ftype);
    input.readFieldEnd();
  }
  input.readStructEnd();
  return value;
}

function writeStringStruct(output: Protocol, name: string, field: string, fid: number, value: string): void {
  output.writeStructBegin(name);
  output.writeFieldBegin(field, Thrift.Type.STRING, fid);
  output.writeString(value);
  output.writeFieldEnd();
  output.writeFieldStop();
  output.writeStructEnd();
}

interface Handler {
  readonly name: string;
  readonly notes: string[];
  calls: number;
}

/** The server side of `Echo`, as the Thrift compiler would generate it. */
class EchoProcessor {
  readonly #handler: Handler;
  constructor(handler: Handler) {
    this.#handler = handler;
  }

  process(input: Protocol, output: Protocol): void {
    const message = input.readMessageBegin();
    const text = readStringStruct(input, 1) ?? '';
    input.readMessageEnd();
    const name = String(message.fname);
    this.#handler.calls += 1;
    if (name === 'note') {
      this.#handler.notes.push(text);
      return;
    }
    if (name === 'hang') return;
    if (name === 'boom') {
      // A TApplicationException from the server itself.
      output.writeMessageBegin(name, Thrift.MessageType.EXCEPTION, message.rseqid);
      new Thrift.TApplicationException(Thrift.TApplicationExceptionType.INTERNAL_ERROR, `${this.#handler.name} blew up`).write(output);
      output.writeMessageEnd();
      output.flush();
      return;
    }
    output.writeMessageBegin(name, Thrift.MessageType.REPLY, message.rseqid);
    if (name === 'fail') {
      // The declared exception: field 1 of the result struct, a NotFound { 1: what }.
      output.writeStructBegin('fail_result');
      output.writeFieldBegin('nf', Thrift.Type.STRUCT, 1);
      writeStringStruct(output, 'NotFound', 'what', 1, `${this.#handler.name} has no ${text}`);
      output.writeFieldEnd();
      output.writeFieldStop();
      output.writeStructEnd();
    } else {
      writeStringStruct(output, 'echo_result', 'success', 0, `${this.#handler.name}:${text}`);
    }
    output.writeMessageEnd();
    output.flush();
  }
}

/** The client side of `Echo`, as the Thrift compiler would generate it (callback style). */
class EchoClient {
  readonly output: { flush(): void };
  readonly pClass: new (t: unknown) => Protocol;
  _seqid = 0;
  readonly _reqs: Record<number, (err: unknown, value?: string) => void> = {};

  constructor(output: { flush(): void }, pClass: new (t: unknown) => Protocol) {
    this.output = output;
    this.pClass = pClass;
  }

  seqid(): number {
    return this._seqid;
  }

  new_seqid(): number {
    return (this._seqid += 1);
  }

  call(method: string, text: string, callback: (err: unknown, value?: string) => void): void {
    this._seqid = this.new_seqid();
    const oneway = method === 'note';
    if (!oneway) this._reqs[this.seqid()] = callback;
    const output = new this.pClass(this.output);
    output.writeMessageBegin(method, oneway ? Thrift.MessageType.ONEWAY : Thrift.MessageType.CALL, this.seqid());
    writeStringStruct(output, `${method}_args`, 'text', 1, text);
    output.writeMessageEnd();
    output.flush();
    if (oneway) callback(null);
  }

  /** The call's callback, unless the reply was a TApplicationException (then handed to it). */
  #reply(input: Protocol, mtype: number, rseqid: number): ((err: unknown, value?: string) => void) | undefined {
    const callback = this._reqs[rseqid] ?? (() => {});
    delete this._reqs[rseqid];
    if (mtype !== Thrift.MessageType.EXCEPTION) return callback;
    const x = new Thrift.TApplicationException();
    x.read(input);
    input.readMessageEnd();
    callback(x);
    return undefined;
  }

  recv_fail(input: Protocol, mtype: number, rseqid: number): void {
    const callback = this.#reply(input, mtype, rseqid);
    if (!callback) return;
    // The result struct: field 1 holds the NotFound.
    let what: string | undefined;
    input.readStructBegin();
    for (;;) {
      const field = input.readFieldBegin();
      if (field.ftype === Thrift.Type.STOP) break;
      if (field.fid === 1 && field.ftype === Thrift.Type.STRUCT) what = readStringStruct(input, 1);
      else input.skip(field.ftype);
      input.readFieldEnd();
    }
    input.readStructEnd();
    input.readMessageEnd();
    callback(Object.assign(new Error(`NotFound: ${what}`), { name: 'NotFound', what }));
  }

  recv_boom(input: Protocol, mtype: number, rseqid: number): void {
    this.recv_echo(input, mtype, rseqid);
  }

  recv_hang(input: Protocol, mtype: number, rseqid: number): void {
    this.recv_echo(input, mtype, rseqid);
  }

  recv_echo(input: Protocol, mtype: number, rseqid: number): void {
    const callback = this.#reply(input, mtype, rseqid);
    if (!callback) return;
    const value = readStringStruct(input, 0);
    input.readMessageEnd();
    callback(value === undefined ? new Error('echo failed: unknown result') : null, value);
  }
}

/** How a client or server frames and encodes: the seed's TBufferedTransport + strict binary by default. */
export interface ThriftWire {
  readonly transport?: 'buffered' | 'framed';
  readonly protocol?: 'binary' | 'binary-lax' | 'compact';
}

/** Apache Thrift's classes for a wire format. */
function wire(w: ThriftWire = {}): { transport: unknown; protocol: unknown } {
  const transport = w.transport === 'framed' ? thrift.TFramedTransport : thrift.TBufferedTransport;
  const protocol = w.protocol === 'compact'
    ? thrift.TCompactProtocol
    : w.protocol === 'binary-lax'
      ? class LaxBinary extends thrift.TBinaryProtocol {
        constructor(trans: unknown) {
          super(trans, false, false);
        }
      }
      : thrift.TBinaryProtocol;
  return { transport, protocol };
}

export interface ThriftServer {
  readonly name: string;
  /** Oneway notes received. */
  readonly notes: readonly string[];
  /** Calls received (all methods). */
  calls(): number;
  readonly address: string;
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * A Thrift `Echo` server on 127.0.0.1 (port 0 unless given). `oneConnection`: like a
 * TSimpleServer, it serves one connection at a time (a second one is closed at once here).
 */
export async function startThriftServer(name: string, options: ThriftWire & { port?: number; oneConnection?: boolean } = {}): Promise<ThriftServer> {
  const handler: Handler = { name, notes: [], calls: 0 };
  const server = thrift.createServer(EchoProcessor, handler, wire(options)) as Server;
  if (options.oneConnection) server.maxConnections = 1;
  const sockets = new Set<Socket>();
  let accepted = 0;
  server.on('connection', (socket: Socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    name,
    notes: handler.notes,
    calls: () => handler.calls,
    address: `127.0.0.1:${bound}`,
    port: bound,
    connections: () => accepted,
    close: () => new Promise<void>((resolve) => {
      // Stop accepting first: a connection arriving between the two would keep close() waiting.
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}

export interface ThriftClient {
  echo(text: string): Promise<string>;
  /** Any method of Echo: `fail` rejects with the NotFound, `note` resolves once sent. */
  call(method: 'echo' | 'fail' | 'note' | 'hang' | 'boom', text: string): Promise<string | undefined>;
  /** Resolves once the connection is closed (by either side). */
  readonly closed: Promise<void>;
  close(): void;
}

/** A Thrift client of `Echo` to 127.0.0.1:port (TBufferedTransport + TBinaryProtocol unless told). */
export function connectThrift(port: number, w: ThriftWire = {}): Promise<ThriftClient> {
  return new Promise((resolve, reject) => {
    const connection = thrift.createConnection('127.0.0.1', port, { ...wire(w), max_attempts: 0, connect_timeout: 2000 });
    const client = thrift.createClient(EchoClient, connection) as EchoClient;
    const closed = new Promise<void>((r) => connection.once('close', () => r()));
    connection.once('error', reject);
    connection.once('connect', () => {
      connection.removeListener('error', reject);
      connection.on('error', () => {});
      resolve({
        echo: (text) => new Promise<string>((ok, fail) => client.call('echo', text, (err, value) => (err ? fail(err) : ok(value!)))),
        call: (method, text) => new Promise<string | undefined>((ok, fail) => client.call(method, text, (err, value) => (err ? fail(err) : ok(value)))),
        closed,
        close: () => connection.end(),
      });
    });
  });
}
