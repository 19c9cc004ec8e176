import { once } from 'node:events';
import { createServer, type Server } from 'node:http';

/**
 * A model server outside every worker: `GET /run?ms=N` holds the request N ms and answers
 * `{ running }`. It counts the requests in flight across all workers and records the peak, so
 * "never more than C at once" is measured where the work happens.
 */
export class ModelServer {
  running = 0;
  peak = 0;
  served = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<ModelServer> {
    const server = createServer();
    server.keepAliveTimeout = 60_000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const model = new ModelServer(server, `http://127.0.0.1:${port}`);
    server.on('request', (req, res) => {
      const ms = Number(new URL(req.url ?? '/', model.url).searchParams.get('ms') ?? '10');
      const running = ++model.running;
      model.peak = Math.max(model.peak, running);
      setTimeout(() => {
        model.running--;
        model.served++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ running }));
      }, ms);
    });
    return model;
  }

  /** The peak since the last call; starts afresh from what runs now. */
  takePeak(): number {
    const peak = this.peak;
    this.peak = this.running;
    return peak;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
