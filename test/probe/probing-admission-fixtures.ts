import { Controller, Headers, HttpCode, Module, Post, Res, type Type } from '@nestjs/common';
import { BalancerModule, type BalancerOptions } from '../../src';
import { PoolRegistry } from '../../src/admission/pool-registry';
import { PROBE_HEADER } from '../../src/config/balancer.constants';
import { SimulatedModel } from '../../examples/simulated-model';
import { type RunningApp } from '../harness/platforms';

/*
 * Issue 19, item 1: while a route's capacity is probed, real requests are admitted at an
 * interim cap (1 here: nothing stored) and share each level with the probe. Counted at the
 * model: every request that enters it records how many were inside (probe and real) and the
 * level the probe was measuring, so "never more than the level" is checked on every entry.
 *
 * The model is the slow one: S = 3 s, true K = 2 (slower above), failing at 6 in
 * flight. The probe is kept to levels 1 and 2 (`maxConcurrency: 2`, few samples) so a run takes
 * about half a minute; `latencyThresholdMs` is set because this test is about admission, not
 * about the latency rule.
 */

export const S = 3000;
export const POOL = '/predict';

export interface Entry {
  probe: boolean;
  /** Requests inside the model once this one entered. */
  total: number;
  probeIn: number;
  realIn: number;
  /** The level being measured when it entered (`null`: none yet), and whether a probe ran. */
  level: number | null;
  probing: boolean;
}

/** A slow knee model that records, per entry, what was inside it. */
export class CountingModel {
  readonly model = new SimulatedModel({
    capacity: 2,
    serviceTimeMs: S,
    shape: 'knee',
    slowdown: 1.5,
    failAt: 6,
  });
  readonly entries: Entry[] = [];
  private probeIn = 0;
  private realIn = 0;
  /** The probing worker's view of the pool (set once the apps run). */
  status: () => { level: number | null; probing: boolean } = () => ({
    level: null,
    probing: false,
  });

  async run(probe: boolean): Promise<number> {
    if (probe) this.probeIn++;
    else this.realIn++;
    this.entries.push({
      probe,
      total: this.probeIn + this.realIn,
      probeIn: this.probeIn,
      realIn: this.realIn,
      ...this.status(),
    });
    try {
      return (await this.model.run()).status;
    } finally {
      if (probe) this.probeIn--;
      else this.realIn--;
    }
  }
}

export interface RawReply {
  status(code: number): unknown;
  code?(code: number): unknown;
}

export function appModule(model: CountingModel, balancer: BalancerOptions): Type {
  @Controller()
  class PredictController {
    @Post('predict')
    @HttpCode(200)
    async predict(
      @Headers(PROBE_HEADER) probe: string | undefined,
      @Res({ passthrough: true }) res: RawReply,
    ): Promise<{ ok: boolean }> {
      const status = await model.run(probe !== undefined);
      if (typeof res.code === 'function') res.code(status);
      else res.status(status);
      return { ok: status < 400 };
    }
  }
  @Module({ imports: [BalancerModule.forRoot(balancer)], controllers: [PredictController] })
  class ProbingAppModule {}
  return ProbingAppModule;
}

export function options(storage?: { url: string; keyPrefix: string }): BalancerOptions {
  return {
    healthEndpoint: false,
    ui: { enable: false },
    latencyThresholdMs: 10_000,
    probe: {
      warmupMs: 0,
      levelDurationMs: 50,
      minSamples: 3,
      levelLatencies: 2,
      maxConcurrency: 2,
    },
    ...(storage ? { storage: { type: 'redis' as const, ...storage } } : {}),
    endpoints: { [POOL]: { method: 'POST' } },
  };
}

/** The view the model checks against: the pool as the worker that probes it sees it. */
export function watch(model: CountingModel, apps: RunningApp[]): void {
  const registries = apps.map((a) => a.app.get(PoolRegistry));
  model.status = () => {
    for (const r of registries) {
      const s = r.get(POOL)?.probeStatus;
      if (s && (s.state === 'running' || s.state === 'pending'))
        return { level: s.level ?? null, probing: true };
    }
    return { level: null, probing: false };
  };
}

/** Real requests sent one after another by `clients` senders until `stop()`; statuses kept. */
export function realTraffic(urls: string[], clients: number) {
  let running = true;
  let n = 0;
  const statuses: number[] = [];
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const res = await fetch(`${urls[n++ % urls.length]}${POOL}`, { method: 'POST' });
      await res.arrayBuffer();
      statuses.push(res.status);
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

/** Every entry while probing stayed within the level measured (1 before the first level). */
export function checkLevels(model: CountingModel): void {
  const during = model.entries.filter((e) => e.probing);
  expect(during.length).toBeGreaterThan(0);
  const over = during.filter((e) => e.total > (e.level ?? 1));
  expect(over).toEqual([]);
  // The sharing happened: at a level of 2, a real request and a probe request were inside
  // together (without sharing the model would have seen 3 at that level).
  expect(during.some((e) => e.level === 2 && e.realIn > 0 && e.probeIn > 0)).toBe(true);
  expect(model.model.failed).toBe(0);
}

jest.setTimeout(180_000);
