import { Controller, HttpCode, Module, Post, type DynamicModule } from '@nestjs/common';
import { BalancerModule, type BalancerOptions } from '../../src';

/**
 * A backend whose true capacity can change while it runs (a model swapped, a neighbour on the
 * GPU): up to `k` in flight a request takes `serviceMs`; each one beyond `k` adds another
 * `serviceMs` to every request (it thrashes). Records every request's time inside the model.
 */
export class ShiftingModel {
  k: number;
  private inFlight = 0;
  /** Most requests in flight at once since the start (or `resetPeak()`). */
  peak = 0;
  readonly served: Array<{ start: number; ms: number }> = [];

  constructor(
    k: number,
    readonly serviceMs: number,
  ) {
    this.k = k;
  }

  async run(): Promise<void> {
    const start = Date.now();
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    const ms = this.serviceMs * (1 + Math.max(0, this.inFlight - this.k));
    await new Promise((r) => setTimeout(r, ms));
    this.inFlight--;
    this.served.push({ start, ms: Date.now() - start });
  }

  resetPeak(): void {
    this.peak = this.inFlight;
  }

  /** Times of the finished requests that started after `since` (ms epoch). */
  since(since: number): number[] {
    return this.served.filter((s) => s.start > since).map((s) => s.ms);
  }
}

export function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)] ?? 0;
}

/** An app with `POST /predict` on `model`, watched with `balancer` options. */
export function adaptiveAppModule(model: ShiftingModel, balancer: BalancerOptions): DynamicModule {
  @Controller()
  class PredictController {
    @Post('predict')
    @HttpCode(200)
    async predict(): Promise<{ ok: true }> {
      await model.run();
      return { ok: true };
    }
  }
  @Module({})
  class AdaptiveAppModule {}
  return {
    module: AdaptiveAppModule,
    imports: [BalancerModule.forRoot(balancer)],
    controllers: [PredictController],
  };
}

/** What the closed-loop clients got back: answers by status, and requests that failed. */
export interface LoadOutcome {
  statuses: Record<number, number>;
  /** Fetch errors (connection refused or reset): the balancer answered nothing. */
  errors: string[];
}

export interface ClosedLoop {
  /** Stop the senders and return every answer they got. */
  stop(): Promise<LoadOutcome>;
}

/**
 * `clients` closed-loop senders against `urls` (round robin) until `stop()`, counting every
 * status code and every failed request: a 503 from the balancer is not a served request.
 */
export function closedLoop(urls: string[], clients: number): ClosedLoop {
  let running = true;
  let n = 0;
  const outcome: LoadOutcome = { statuses: {}, errors: [] };
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const url = urls[n++ % urls.length];
      try {
        const res = await fetch(`${url}/predict`, { method: 'POST' });
        await res.arrayBuffer();
        outcome.statuses[res.status] = (outcome.statuses[res.status] ?? 0) + 1;
      } catch (err) {
        outcome.errors.push(String((err as Error).cause ?? err));
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return outcome;
    },
  };
}
