import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy the tests own, between one worker and Redis: `cut()` drops every connection and
 * refuses new ones (accepted, then reset at once), `delay(ms)` holds every chunk for `ms` in
 * both directions (order kept), `heal()` forwards again without delay (after what is held).
 */
export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private cutOff = false;
  private delayMs = 0;
  /** Connections accepted since start (each reconnect of the worker's client is one). */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const proxy = new TcpProxy(server, port, targetPort);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.cutOff;
  }

  private accept(client: Socket): void {
    this.accepted++;
    client.on('error', () => undefined);
    if (this.cutOff) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(this.targetPort, '127.0.0.1');
    upstream.on('error', () => undefined);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      // Chunks held by a delay are written in arrival order, and a chunk that arrives after
      // heal() waits behind the ones still held: a TCP stream never reorders its bytes (a
      // reordered reply stream would desynchronise the Redis client, a fault no network makes).
      const held: Array<{ chunk: Buffer; due: number }> = [];
      let timer: NodeJS.Timeout | undefined;
      const flush = (): void => {
        timer = undefined;
        const now = Date.now();
        while (held.length > 0 && held[0].due <= now) {
          const { chunk } = held.shift()!;
          if (to.writable) to.write(chunk);
        }
        if (held.length > 0) timer = setTimeout(flush, held[0].due - now);
      };
      from.on('data', (chunk: Buffer) => {
        if (this.delayMs === 0 && held.length === 0) {
          to.write(chunk);
          return;
        }
        held.push({ chunk, due: Date.now() + this.delayMs });
        if (!timer) timer = setTimeout(flush, Math.max(0, held[0].due - Date.now()));
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
  }

  /** Drop every open connection and refuse new ones until `heal()`. */
  cut(): void {
    this.cutOff = true;
    for (const [client, upstream] of [...this.pairs]) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Hold every chunk for `ms` (0: none). */
  delay(ms: number): void {
    this.delayMs = ms;
  }

  /** Forward new connections to `port` from now on (a failover: point the worker elsewhere). */
  retarget(port: number): void {
    this.targetPort = port;
  }

  heal(): void {
    this.cutOff = false;
    this.delayMs = 0;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
