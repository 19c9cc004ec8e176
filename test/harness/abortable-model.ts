import { once } from 'node:events';
import { createServer, type Server } from 'node:http';

/**
 * A model server outside every worker whose work stops when its caller gives up, like a model
 * server cancelling a generation when the client aborts: `GET /run?ms=N&from=<label>` holds the
 * request N ms, or until the connection closes. It counts the requests in flight across all
 * workers and keeps the peak, so "never more than C at once" is measured where the work happens.
 */
export class AbortableModel {
  running = 0;
  peak = 0;
  /** Requests the caller abandoned before they were done (their work stopped early). */
  abandoned = 0;
  /** Requests in flight per caller label. */
  readonly byCaller = new Map<string, number>();
  /** Every change of `running`: [ms since start, running, caller]. */
  readonly timeline: Array<[number, number, string]> = [];
  private readonly t0 = Date.now();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<AbortableModel> {
    const server = createServer();
    server.keepAliveTimeout = 60_000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const model = new AbortableModel(server, `http://127.0.0.1:${port}`);
    server.on('request', (req, res) => model.serve(req.url ?? '/', res));
    return model;
  }

  private serve(path: string, res: import('node:http').ServerResponse): void {
    const params = new URL(path, this.url).searchParams;
    const ms = Number(params.get('ms') ?? '10');
    const from = params.get('from') ?? '?';
    this.change(from, +1);
    let done = false;
    const end = (abandoned: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (abandoned) this.abandoned++;
      this.change(from, -1);
    };
    const timer = setTimeout(() => {
      end(false);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true }));
    }, ms);
    res.on('close', () => end(!res.writableFinished));
  }

  private change(from: string, delta: number): void {
    this.running += delta;
    this.byCaller.set(from, (this.byCaller.get(from) ?? 0) + delta);
    this.peak = Math.max(this.peak, this.running);
    this.timeline.push([Date.now() - this.t0, this.running, from]);
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
