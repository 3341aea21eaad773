import { createServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { Registration } from '../registration/registration.js';
import type { ZkAuth } from '../zookeeper/client.js';

export interface DemoService {
  readonly service: string;
  readonly id: string;
  readonly port: number;
}

export interface DemoServices {
  readonly instances: readonly DemoService[];
  close(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** A line echo over plain TCP: every line comes back prefixed with the instance's id. */
function lineEcho(id: string): Server {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      pending += text;
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        socket.write(`${id}: ${pending.slice(0, newline)}\n`);
        pending = pending.slice(newline + 1);
      }
    });
  });
  server.on('close', () => {
    for (const socket of sockets) socket.destroy();
  });
  return server;
}

/**
 * Small real services for dev mode, registered in ZooKeeper like any service: over HTTP,
 * `hello` (two instances: answers who it is) and `echo` (one: returns the request it got);
 * over plain TCP, `line-echo` (one: echoes each line).
 */
export async function startDemoServices(options: { zookeeper: string; basePath: string; auth?: readonly ZkAuth[] }, logger: Logger): Promise<DemoServices> {
  const servers: Server[] = [];
  const registrations: Registration[] = [];
  const instances: DemoService[] = [];
  const http = (handler: Parameters<typeof createServer>[1]) => () => createServer(handler);
  const demos: { service: string; id: string; server: () => Server }[] = [
    ...['hello-1', 'hello-2'].map((id) => ({
      service: 'hello',
      id,
      server: http((req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ service: 'hello', instance: id, path: req.url, message: `hello from ${id}` })}\n`);
      }),
    })),
    {
      service: 'echo',
      id: 'echo-1',
      server: http((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ service: 'echo', instance: 'echo-1', method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })}\n`);
        });
      }),
    },
    { service: 'line-echo', id: 'line-echo-1', server: () => lineEcho('line-echo-1') },
  ];
  try {
    for (const demo of demos) {
      const server = demo.server();
      servers.push(server);
      const port = await listen(server);
      const registration = new Registration(
        { zookeeper: options.zookeeper, basePath: options.basePath, service: demo.service, id: demo.id, host: '127.0.0.1', port, ...(options.auth ? { auth: options.auth } : {}) },
        { logger },
      );
      registrations.push(registration);
      await registration.start();
      await registration.announce();
      instances.push({ service: demo.service, id: demo.id, port });
    }
  } catch (err) {
    await close();
    throw err;
  }
  async function close(): Promise<void> {
    await Promise.all(registrations.map((r) => r.close().catch(() => {})));
    for (const server of servers) {
      (server as Partial<ReturnType<typeof createServer>>).closeAllConnections?.();
      await new Promise((r) => server.close(r));
    }
  }
  return { instances, close };
}
