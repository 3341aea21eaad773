// The TCP load generator: bounded by time, loopback only. Prints one JSON line.
//   node tcp-load.mjs pingpong PORT CONNECTIONS SECONDS   64-byte request, wait for the echo, repeat
//   node tcp-load.mjs connect  PORT PARALLEL SECONDS      connect, one 64-byte round trip, close, repeat
//   node tcp-load.mjs bulk     PORT CONNECTIONS SECONDS   read a stream as fast as it comes
// A fifth argument `thrift` makes the ping-pong request a 64-byte Thrift call (unframed strict
// binary `ping(1: string)`), which an echoing upstream answers with the same bytes.
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';

const [mode, portText, countText, secondsText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const deadline = performance.now() + Number(secondsText) * 1000;
function thriftCall(total) {
  const head = Buffer.alloc(4 + 4 + 4 + 4 + 1 + 2 + 4);
  let at = head.writeUInt32BE(0x80010001, 0);
  at = head.writeInt32BE(4, at);
  at += head.write('ping', at, 'latin1');
  at = head.writeInt32BE(1, at);
  at = head.writeUInt8(11, at);
  at = head.writeInt16BE(1, at);
  const text = total - head.length - 1;
  head.writeInt32BE(text, at);
  return Buffer.concat([head, Buffer.alloc(text, 'x'), Buffer.from([0])]);
}
const payload = process.argv[6] === 'thrift' ? thriftCall(64) : Buffer.alloc(64, 'x');
let ops = 0;
let errors = 0;
let bytes = 0;
const latencies = [];

function open() {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  return socket;
}

function pingpong() {
  return new Promise((resolve) => {
    const socket = open();
    let got = 0;
    let sentAt = 0;
    const send = () => {
      if (performance.now() > deadline) {
        socket.destroy();
        resolve();
        return;
      }
      sentAt = performance.now();
      socket.write(payload);
    };
    socket.on('connect', send);
    socket.on('data', (data) => {
      got += data.length;
      if (got < payload.length) return;
      got -= payload.length;
      ops += 1;
      latencies.push(performance.now() - sentAt);
      send();
    });
    socket.on('error', () => {
      errors += 1;
      resolve();
    });
  });
}

async function connectLoop() {
  while (performance.now() < deadline) {
    await new Promise((resolve) => {
      const socket = open();
      let got = 0;
      socket.on('connect', () => socket.write(payload));
      socket.on('data', (data) => {
        got += data.length;
        if (got >= payload.length) {
          ops += 1;
          socket.destroy();
          resolve();
        }
      });
      socket.on('error', () => {
        errors += 1;
        socket.destroy();
        resolve();
      });
      socket.on('close', resolve);
    });
  }
}

function bulk() {
  return new Promise((resolve) => {
    const socket = open();
    socket.on('connect', () => socket.write('B'));
    socket.on('data', (data) => {
      bytes += data.length;
      if (performance.now() > deadline) {
        socket.destroy();
        resolve();
      }
    });
    socket.on('error', () => {
      errors += 1;
      resolve();
    });
  });
}

const started = performance.now();
const task = mode === 'pingpong' ? pingpong : mode === 'connect' ? connectLoop : bulk;
await Promise.all(Array.from({ length: count }, () => task()));
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const at = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] : null);
console.log(JSON.stringify({ mode, ops, errors, seconds, perSecond: ops / seconds, mbPerSecond: bytes / 1024 / 1024 / seconds, p50Ms: at(50), p99Ms: at(99) }));
