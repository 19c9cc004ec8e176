/**
 * A stand-in for a model server, used by the demo, the tests and the benchmarks.
 *
 * - `knee`: K requests run at full speed; above K in flight every request slows down sharply
 *   (like a model server that starts swapping), and at `failAt` requests in flight new ones
 *   fail at once (out of memory).
 * - `queue`: K slots; the rest wait in line, so latency grows as in-flight / K. Nothing fails.
 */
export interface SimulatedModelOptions {
  /** K: requests the "hardware" serves at full speed. */
  capacity: number;
  /** S: service time of one request at or below K, in milliseconds. */
  serviceTimeMs: number;
  /** @default 'knee' */
  shape?: 'knee' | 'queue';
  /** knee: service time multiplier once in-flight exceeds K, grown by in-flight / K. @default 4 */
  slowdown?: number;
  /** knee: in-flight count at which requests fail (status 500). @default 3 x K */
  failAt?: number;
}

export interface SimulatedResult {
  status: number;
  /** Time spent inside the model, ms. */
  ms: number;
}

export class SimulatedModel {
  readonly capacity: number;
  readonly serviceTimeMs: number;
  readonly shape: 'knee' | 'queue';
  private readonly slowdown: number;
  private readonly failAt: number;
  private inFlight = 0;
  private peakInFlight = 0;
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /** Counts since the last `reset()`. */
  served = 0;
  failed = 0;

  constructor(options: SimulatedModelOptions) {
    this.capacity = options.capacity;
    this.serviceTimeMs = options.serviceTimeMs;
    this.shape = options.shape ?? 'knee';
    this.slowdown = options.slowdown ?? 4;
    this.failAt = options.failAt ?? 3 * options.capacity;
  }

  /** Requests inside the model right now (running or, for `queue`, waiting). */
  get current(): number {
    return this.inFlight;
  }

  /** Highest in-flight count seen since the last `reset()`. */
  get peak(): number {
    return this.peakInFlight;
  }

  reset(): void {
    this.peakInFlight = this.inFlight;
    this.served = 0;
    this.failed = 0;
  }

  /** Serve one request. Resolves with the status the endpoint should answer. */
  async run(): Promise<SimulatedResult> {
    const start = Date.now();
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    try {
      if (this.shape === 'queue') {
        if (this.running >= this.capacity) await new Promise<void>((r) => this.waiting.push(r));
        this.running++;
        try {
          await delay(this.serviceTimeMs);
        } finally {
          this.running--;
          this.waiting.shift()?.();
        }
      } else {
        if (this.inFlight >= this.failAt) {
          this.failed++;
          await delay(1);
          return { status: 500, ms: Date.now() - start };
        }
        const over = this.inFlight > this.capacity;
        const ms = over
          ? this.serviceTimeMs * this.slowdown * (this.inFlight / this.capacity)
          : this.serviceTimeMs;
        await delay(ms);
      }
      this.served++;
      return { status: 200, ms: Date.now() - start };
    } finally {
      this.inFlight--;
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
