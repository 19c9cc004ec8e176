import { Body, Controller, HttpCode, Module, Post, Res, type Type } from '@nestjs/common';
import { BalancerModule, type BalancerOptions } from '../../src';
import { p99 } from './adaptive-fixtures';

/*
 * The backend and the load of the adaptive recovery suites (test/adaptive/recovery.e2e-spec.ts,
 * timing pass; test/adaptive/probe-handover.e2e-spec.ts, parallel pass): a backend of true
 * capacity k (S = 50 ms; each request beyond k in flight adds S to every request) behind
 * `POST /predict`, and closed-loop clients that keep every status the balancer answered.
 */

export const S = 50;
export const POOL = '/predict';

/** Like `ShiftingModel` (adaptive-fixtures), recording each request's service time as well. */
export class RecordingModel {
  k = 8;
  private inFlight = 0;
  readonly served: Array<{ start: number; ms: number; serviceMs: number }> = [];

  async run(): Promise<void> {
    const start = Date.now();
    this.inFlight++;
    const serviceMs = S * (1 + Math.max(0, this.inFlight - this.k));
    await new Promise((r) => setTimeout(r, serviceMs));
    this.inFlight--;
    this.served.push({ start, ms: Date.now() - start, serviceMs });
  }
}

interface RawReply {
  status(code: number): unknown;
  code?(code: number): unknown;
}

/** `POST /predict` on `model`; a body `{ "wrong": true }` is refused with 422 (a bad probe body). */
export function appModule(model: RecordingModel, balancer: BalancerOptions): Type {
  @Controller()
  class PredictController {
    @Post('predict')
    @HttpCode(200)
    async predict(
      @Body() body: { wrong?: boolean } | undefined,
      @Res({ passthrough: true }) res: RawReply,
    ): Promise<{ ok: boolean }> {
      if (body?.wrong) {
        if (typeof res.code === 'function') res.code(422);
        else res.status(422);
        return { ok: false };
      }
      await model.run();
      return { ok: true };
    }
  }
  @Module({ imports: [BalancerModule.forRoot(balancer)], controllers: [PredictController] })
  class RecoveryAppModule {}
  return RecoveryAppModule;
}

export interface History {
  capacity: number;
  reason: string;
  at: string;
}

export async function adaptiveOf(
  url: string,
): Promise<{ controller: boolean; history: History[] }> {
  const body = (await (await fetch(`${url}/balancer/stats`)).json()) as {
    endpoints: Record<string, { adaptive: { controller: boolean; history: History[] } }>;
  };
  return body.endpoints[POOL].adaptive;
}

/** `clients` closed-loop senders; every status the balancer answered is kept. */
export function closedLoop(url: string, clients: number) {
  let running = true;
  const statuses = new Map<number, number>();
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const res = await fetch(`${url}${POOL}`, { method: 'POST' });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  });
  return {
    statuses,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** p99 of the requests that entered the model in [from, to) (ms epoch): service and wall time. */
export function p99Within(model: RecordingModel, from: number, to: number) {
  const entered = model.served.filter((s) => s.start >= from && s.start < to);
  return { service: p99(entered.map((s) => s.serviceMs)), wall: p99(entered.map((s) => s.ms)) };
}
