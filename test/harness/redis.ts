import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';

/**
 * A redis-server owned by one test suite: started from the binary on PATH on a free port, with
 * persistence off, so a restart loses everything (what the outage tests want). It can be stopped
 * and started again on the same port.
 */
export class RedisServer {
  private child?: ChildProcess;
  /** Settles when the current child has exited and its pipes are closed. */
  private closed?: Promise<unknown>;

  private constructor(
    readonly port: number,
    /**
     * `true`: a one-node Redis Cluster holding every slot (cross-slot scripts fail as on a real
     * one); `'node'`: cluster mode without slots, to be joined into a larger cluster.
     */
    readonly cluster: boolean | 'node' = false,
    /** More `redis-server` arguments (`--replicaof`, `--min-replicas-to-write` …). */
    private readonly args: string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Start a server on a free port (retrying when another process took the port first). */
  static async start(
    opts: { cluster?: boolean | 'node'; args?: string[] } = {},
  ): Promise<RedisServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(await freePort(), opts.cluster, opts.args);
      try {
        await server.start();
        return server;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  /** A server for `port` that is not running yet (start it later with `start()`). */
  static at(port: number): RedisServer {
    return new RedisServer(port);
  }

  private get nodesFile(): string {
    return join(tmpdir(), `nestjs-balancer-nodes-${this.port}-${process.pid}.conf`);
  }

  /** (Re)start on this server's port. */
  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--loglevel',
        'warning',
        ...(this.cluster
          ? [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              this.nodesFile,
              // A lone node does not know its address; clients need it in CLUSTER SLOTS.
              '--cluster-announce-ip',
              '127.0.0.1',
            ]
          : []),
        ...this.args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.closed = once(child, 'close').catch(() => undefined);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = once(child, 'exit').then(() => {
      throw new Error(`redis-server on port ${this.port} exited at startup: ${output.trim()}`);
    });
    this.child = child;
    try {
      await Promise.race([exited, this.waitForPing(5000)]);
      if (this.cluster === true) await this.assignAllSlots();
    } catch (err) {
      child.kill('SIGKILL');
      this.child = undefined;
      throw err;
    }
    exited.catch(() => undefined);
  }

  /** Stop the server (SIGKILL: like a crash; nothing is saved anyway). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // Exited and its output pipes closed: no handle left behind for Jest.
    child.stdout?.destroy();
    child.stderr?.destroy();
    await this.closed;
    if (this.cluster) rmSync(this.nodesFile, { force: true });
  }

  /** A new client of this server; the caller closes it. */
  client(): Redis {
    return new Redis(this.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  }

  private async assignAllSlots(): Promise<void> {
    const client = new Redis(this.url, { disconnectTimeout: 20 });
    try {
      await client.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      const deadline = Date.now() + 10_000;
      while (!String(await client.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('one-node cluster did not become ok');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      client.disconnect();
    }
  }

  private async waitForPing(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const client = new Redis(this.url, {
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
        disconnectTimeout: 20,
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.ping();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      } finally {
        client.disconnect();
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * The Redis of suites that never restart it: `REDIS_URL` when set, else a server of their own.
 * Suites that stop or restart Redis always call `RedisServer.start()` instead.
 */
export async function sharedRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const url = process.env.REDIS_URL;
  if (url) return { url, stop: async () => undefined };
  const server = await RedisServer.start();
  return { url: server.url, stop: () => server.stop() };
}

/** A key prefix no other test uses: tests sharing one Redis never see each other's keys. */
export function uniquePrefix(name = 't'): string {
  return `${name}-${randomBytes(4).toString('hex')}`;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}
