import { latencyOf, median } from './load';
import {
  PROPERTY_PLATFORMS,
  SERVED_P50_BOUND_MS,
  expectBurstsNotShed,
  expectPriorityServedNext,
  expectProperty,
  expectStandingOverloadShed,
  overloadFigures,
  runBursts,
  runPriority,
  runStandingOverload,
} from './properties';
import { useRedisWorkers } from './redis-workers';

/*
 * Issue 11, priorities and queueTargetMs across two worker processes on one Redis: a
 * high-priority request on one worker is granted before the low ones queued on the other, and
 * shedding is decided on the global queue, with the memory store's bounds (properties.ts).
 */
const workers = useRedisWorkers();

describe.each(PROPERTY_PLATFORMS)(
  'priorities and queueTargetMs across two workers on Redis (%s)',
  (platform) => {
    it('a high-priority request on worker 2 is granted before the lows queued on worker 1', async () => {
      const [w1, w2] = workers(platform);
      expectPriorityServedNext(
        await runPriority({ holdUrl: w1, lowUrl: w1, highUrl: w2, statsUrl: w2, logUrl: w1 }),
      );
    });

    it('bursts spread over both workers shed nothing', async () => {
      const [w1, w2] = workers(platform);
      expectBurstsNotShed(await runBursts((i) => (i % 2 === 0 ? w1 : w2), w2));
    });

    it('shedding is global: worker 2, under capacity on its own, is shed like worker 1', async () => {
      const [w1, w2] = workers(platform);
      // Worker 1 receives 5/6 of the 3 x C/S load (2.5 x), worker 2 1/6 (0.5 x: on its own it
      // would never queue). The queue and the decision are global, so both see the same state.
      const run = await runStandingOverload((i) => (i % 6 === 5 ? w2 : w1));
      expectStandingOverloadShed(run);
      const one = overloadFigures(run.window.filter((s) => s.url === w1));
      const two = overloadFigures(run.window.filter((s) => s.url === w2));
      const shedShare = (f: typeof one) => f.shed / f.sent;
      // Both fractions estimate one probability; half of worker 1's leaves room for worker 2's
      // small sample (about 30 requests in the window).
      expectProperty(shedShare(two) >= shedShare(one) / 2, 'worker 2 shed like worker 1', {
        one,
        two,
      });
      const servedTwo = run.window.filter((s) => s.url === w2 && s.status === 200);
      expect(median(servedTwo.map(latencyOf))).toBeLessThanOrEqual(SERVED_P50_BOUND_MS);
    }, 40_000);
  },
);
