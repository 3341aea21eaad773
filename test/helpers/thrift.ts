// A real Thrift service over Apache Thrift's own Node library (npm `thrift`): TBufferedTransport
// + TBinaryProtocol, as the ThriftPy seed's TSimpleServer speaks. The IDL, written out by hand
// (no compiler needed here):
//   service Echo { string echo(1: string text) }
// echo answers "<server name>:<text>", so a test can tell the instances apart.
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

/** The server side of `Echo`, as the Thrift compiler would generate it. */
class EchoProcessor {
  readonly #name: string;
  constructor(handler: { name: string }) {
    this.#name = handler.name;
  }

  process(input: Protocol, output: Protocol): void {
    const message = input.readMessageBegin();
    const text = readStringStruct(input, 1) ?? '';
    input.readMessageEnd();
    output.writeMessageBegin('echo', Thrift.MessageType.REPLY, message.rseqid);
    writeStringStruct(output, 'echo_result', 'success', 0, `${this.#name}:${text}`);
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

  echo(text: string, callback: (err: unknown, value?: string) => void): void {
    this._seqid = this.new_seqid();
    this._reqs[this.seqid()] = callback;
    const output = new this.pClass(this.output);
    output.writeMessageBegin('echo', Thrift.MessageType.CALL, this.seqid());
    writeStringStruct(output, 'echo_args', 'text', 1, text);
    output.writeMessageEnd();
    output.flush();
  }

  recv_echo(input: Protocol, mtype: number, rseqid: number): void {
    const callback = this._reqs[rseqid] ?? (() => {});
    delete this._reqs[rseqid];
    if (mtype === Thrift.MessageType.EXCEPTION) {
      const x = new Thrift.TApplicationException();
      x.read(input);
      input.readMessageEnd();
      callback(x);
      return;
    }
    const value = readStringStruct(input, 0);
    input.readMessageEnd();
    callback(value === undefined ? new Error('echo failed: unknown result') : null, value);
  }
}

export interface ThriftServer {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** A Thrift `Echo` server on 127.0.0.1 (port 0 unless given). */
export async function startThriftServer(name: string, port = 0): Promise<ThriftServer> {
  const server = thrift.createServer(EchoProcessor, { name }, { transport: thrift.TBufferedTransport, protocol: thrift.TBinaryProtocol }) as Server;
  const sockets = new Set<Socket>();
  let accepted = 0;
  server.on('connection', (socket: Socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    name,
    address: `127.0.0.1:${bound}`,
    port: bound,
    connections: () => accepted,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

export interface ThriftClient {
  echo(text: string): Promise<string>;
  /** Resolves once the connection is closed (by either side). */
  readonly closed: Promise<void>;
  close(): void;
}

/** A Thrift client of `Echo` over TBufferedTransport + TBinaryProtocol to host:port. */
export function connectThrift(port: number, host = '127.0.0.1'): Promise<ThriftClient> {
  return new Promise((resolve, reject) => {
    const connection = thrift.createConnection(host, port, { transport: thrift.TBufferedTransport, protocol: thrift.TBinaryProtocol, max_attempts: 0, connect_timeout: 2000 });
    const client = thrift.createClient(EchoClient, connection) as EchoClient;
    const closed = new Promise<void>((r) => connection.once('close', () => r()));
    connection.once('error', reject);
    connection.once('connect', () => {
      connection.removeListener('error', reject);
      connection.on('error', () => {});
      resolve({
        echo: (text) => new Promise<string>((ok, fail) => client.echo(text, (err, value) => (err ? fail(err) : ok(value!)))),
        closed,
        close: () => connection.end(),
      });
    });
  });
}
