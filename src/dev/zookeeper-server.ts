// Starts real Apache ZooKeeper servers (Debian's package) for tests, benchmarks and dev mode.
// Every server gets its own temporary dataDir and free loopback ports; every java process is
// stopped in close(), killed when this process exits, and killed by a watchdog if this process dies hard.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';
// slf4j-simple, when installed, makes the server log to server.log in its temporary directory.
const SLF4J_SIMPLE = '/usr/share/java/slf4j-simple.jar';
const CLASSPATH = ['/etc/zookeeper/conf', ZOOKEEPER_JAR, ...(existsSync(SLF4J_SIMPLE) ? [SLF4J_SIMPLE] : [])].join(':');
const MAIN_CLASS = 'org.apache.zookeeper.server.quorum.QuorumPeerMain';
/** Marks our java processes so a leak check can find them: `pgrep -f zkroute.harness`. */
export const HARNESS_MARKER = '-Dzkroute.harness=1';

/** The lowest port of the kernel's ephemeral range (ip_local_port_range; 32768 by default). */
function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

function listenOn(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/**
 * `count` distinct loopback ports free now, for a server started later (a ZooKeeper JVM binds
 * its ports about a second after they are chosen). Chosen below the kernel's ephemeral range,
 * so no listen(0) of another process (an upstream, a proxy) can be handed one meanwhile, as it
 * could when these came from listen(0) themselves: a ZooKeeper server then exited while
 * starting (CI), and a port a test kept closed was answered by another test's upstream.
 * Held open together while choosing, so none repeats.
 */
export async function freePorts(count: number): Promise<number[]> {
  const low = 20_000;
  const high = Math.min(ephemeralLow(), 32768) - 1;
  const held: net.Server[] = [];
  try {
    for (let attempt = 0; held.length < count && attempt < 1000; attempt++) {
      const server = await listenOn(low + Math.floor(Math.random() * (high - low + 1)));
      if (server) held.push(server);
    }
    if (held.length < count) throw new Error(`no ${count} free loopback ports from ${low} to ${high}`);
    return held.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** Sends a four-letter-word command and returns the reply ('' when the server does not answer). */
export function fourLetterWord(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = () => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(timeoutMs, finish);
    socket.on('connect', () => socket.write(command));
    socket.on('data', (chunk) => (reply += chunk.toString('utf8')));
    socket.on('end', finish);
    socket.on('error', finish);
  });
}

export interface ZooKeeperServerOptions {
  /** ZooKeeper tick; sessions may last 2 to 20 ticks unless maxSessionTimeoutMs says more. Default 100. */
  readonly tickTimeMs?: number;
  readonly maxSessionTimeoutMs?: number;
  readonly startTimeoutMs?: number;
  /** Standalone only: the client port to use (default: a free one). */
  readonly clientPort?: number;
}

interface MemberConfig {
  readonly id: number;
  readonly clientPort: number;
  /** Observers serve reads and watches, forward writes, and do not vote. */
  readonly peers: readonly { id: number; quorumPort: number; electionPort: number; observer?: boolean }[];
}

/** One real ZooKeeper server process (standalone, or one member of an ensemble). */
export class ZooKeeperServer {
  readonly clientPort: number;
  readonly dataDir: string;
  readonly #options: Required<ZooKeeperServerOptions>;
  readonly #configFile: string;
  readonly #logFile: string;
  #child: ChildProcess | undefined;
  #watchdog: ChildProcess | undefined;
  #paused = false;

  private constructor(member: MemberConfig, options: ZooKeeperServerOptions) {
    this.#options = { tickTimeMs: 100, maxSessionTimeoutMs: 60_000, startTimeoutMs: 30_000, clientPort: 0, ...options };
    this.clientPort = member.clientPort;
    this.dataDir = mkdtempSync(path.join(tmpdir(), 'zkroute-zk-'));
    this.#configFile = path.join(this.dataDir, 'zoo.cfg');
    this.#logFile = path.join(this.dataDir, 'server.log');
    const lines = [
      `tickTime=${this.#options.tickTimeMs}`,
      'initLimit=50',
      'syncLimit=20',
      `dataDir=${path.join(this.dataDir, 'data')}`,
      `clientPort=${member.clientPort}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      '4lw.commands.whitelist=srvr,ruok,cons,stat,wchc,wchs,mntr,wchp',
      // Every client here comes from 127.0.0.1: the default of 60 per address would cap the
      // sessions a scale run (hundreds of sidecars) can open.
      'maxClientCnxns=0',
      `minSessionTimeout=${2 * this.#options.tickTimeMs}`,
      `maxSessionTimeout=${this.#options.maxSessionTimeoutMs}`,
      'autopurge.purgeInterval=0',
      'reconfigEnabled=false',
    ];
    for (const peer of member.peers) {
      lines.push(`server.${peer.id}=127.0.0.1:${peer.quorumPort}:${peer.electionPort}${peer.observer ? ':observer' : ''}`);
    }
    if (member.peers.find((p) => p.id === member.id)?.observer) lines.push('peerType=observer');
    writeFileSync(this.#configFile, `${lines.join('\n')}\n`);
    const dataPath = path.join(this.dataDir, 'data');
    mkdirSync(dataPath, { recursive: true });
    // myid names this member in an ensemble; a standalone server needs none.
    if (member.peers.length > 0) writeFileSync(path.join(dataPath, 'myid'), `${member.id}\n`);
  }

  /** Starts a standalone server on a free loopback port and waits until it serves. */
  static async start(options: ZooKeeperServerOptions = {}): Promise<ZooKeeperServer> {
    assertInstalled();
    const clientPort = options.clientPort ?? (await freePorts(1))[0]!;
    const server = new ZooKeeperServer({ id: 1, clientPort, peers: [] }, options);
    try {
      await server.start();
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** @internal used by ZooKeeperEnsemble */
  static create(member: MemberConfig, options: ZooKeeperServerOptions): ZooKeeperServer {
    assertInstalled();
    return new ZooKeeperServer(member, options);
  }

  get connectString(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** (Re)starts the process with the same ports and data, and waits until it serves. */
  async start(): Promise<void> {
    if (this.running) return;
    this.spawn();
    await this.waitServing();
  }

  /** Starts the process without waiting (an ensemble starts all members, then waits). */
  spawn(): void {
    const log = openSync(this.#logFile, 'a');
    const child = spawn(
      'java',
      [
        '-Xmx192m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xss512k',
        HARNESS_MARKER, `-Dzookeeper.log.dir=${this.dataDir}`, '-Dorg.slf4j.simpleLogger.defaultLogLevel=info', '-Dorg.slf4j.simpleLogger.showDateTime=true',
        '-cp', CLASSPATH, MAIN_CLASS, this.#configFile,
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    // Installed by the start, not by importing this file: this process exiting kills the server.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => process.off('exit', killOnExit));
    this.#child = child;
    this.#paused = false;
    // If this Node process is killed hard (a test runner timeout), take the server down with it.
    this.#watchdog = spawn(
      'sh',
      ['-c', `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; kill -CONT ${child.pid} 2>/dev/null; kill -9 ${child.pid} 2>/dev/null`],
      { stdio: 'ignore', detached: true },
    );
    this.#watchdog.unref();
  }

  /** Polls `srvr` until the server reports a mode (standalone, leader or follower). */
  async waitServing(timeoutMs = this.#options.startTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`ZooKeeper on port ${this.clientPort} exited while starting; see ${this.#logFile}`);
      if (/Mode: (standalone|leader|follower|observer)/.test(await fourLetterWord(this.clientPort, 'srvr', 500))) return;
      await sleep(100);
    }
    throw new Error(`ZooKeeper on port ${this.clientPort} did not start within ${timeoutMs} ms; see ${this.#logFile}`);
  }

  /** Stops the process (TERM, then KILL after 5 s) and keeps its data for a restart. */
  async stop(): Promise<void> {
    await this.#terminate('SIGTERM');
  }

  /** kill -9: the server vanishes without closing sessions. */
  async kill(): Promise<void> {
    await this.#terminate('SIGKILL');
  }

  /** SIGSTOP: the kernel still accepts connections but nothing answers. */
  pause(): void {
    if (this.#child?.pid && this.running) {
      process.kill(this.#child.pid, 'SIGSTOP');
      this.#paused = true;
    }
  }

  resume(): void {
    if (this.#child?.pid && this.running) {
      process.kill(this.#child.pid, 'SIGCONT');
      this.#paused = false;
    }
  }

  async #terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (this.#paused) child.kill('SIGCONT');
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    this.#paused = false;
  }

  /** Stops the process and removes its files. */
  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

function assertInstalled(): void {
  if (!existsSync(ZOOKEEPER_JAR)) {
    throw new Error(`Apache ZooKeeper is not installed (${ZOOKEEPER_JAR} is missing): run scripts/install-zookeeper.sh as root`);
  }
}

/** A three-server (or n-server) ensemble on loopback. */
export class ZooKeeperEnsemble {
  readonly members: readonly ZooKeeperServer[];

  private constructor(members: ZooKeeperServer[]) {
    this.members = members;
  }

  /** `size` voting members, then `observers` observers (members too: `members` lists all). */
  static async start(size = 3, options: ZooKeeperServerOptions = {}, observers = 0): Promise<ZooKeeperEnsemble> {
    const total = size + observers;
    const ports = await freePorts(total * 3);
    const peers = Array.from({ length: total }, (_, i) => ({ id: i + 1, quorumPort: ports[total + i]!, electionPort: ports[2 * total + i]!, observer: i >= size }));
    const members = peers.map((peer, i) => ZooKeeperServer.create({ id: peer.id, clientPort: ports[i]!, peers }, options));
    const ensemble = new ZooKeeperEnsemble(members);
    try {
      for (const member of members) member.spawn();
      await Promise.all(members.map((m) => m.waitServing()));
    } catch (err) {
      await ensemble.close();
      throw err;
    }
    return ensemble;
  }

  get connectString(): string {
    return this.members.map((m) => m.connectString).join(',');
  }

  /** The member a session is connected to, found through the `cons` four-letter word. */
  async memberServing(sessionIdHex: string): Promise<ZooKeeperServer | undefined> {
    const needle = `sid=0x${sessionIdHex.replace(/^0x/, '')}`;
    for (const member of this.members) {
      if (!member.running) continue;
      if ((await fourLetterWord(member.clientPort, 'cons')).includes(needle)) return member;
    }
    return undefined;
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.close()));
  }
}
