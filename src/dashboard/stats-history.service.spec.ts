import type {
  BalancerStats,
  BalancerStatsService,
  EndpointStats,
} from '../admission/balancer-stats.service';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { StatsHistory } from './stats-history.service';

function stats(active: number): BalancerStats {
  const e = {
    active_requests: active,
    queued: 1,
    capacity: 4,
    admitted: active,
    rejected: 0,
    timed_out: 0,
  };
  return { endpoints: { '/p': e as EndpointStats } } as unknown as BalancerStats;
}

describe('StatsHistory', () => {
  it('keeps the last historySeconds samples, oldest first', async () => {
    let n = 0;
    const source = { snapshot: async () => stats(++n) } as unknown as BalancerStatsService;
    const options = {
      ui: { enable: true, historySeconds: 60 },
      logger: false,
    } as ResolvedBalancerOptions;
    const history = new StatsHistory(options, source);
    let now = 1_700_000_000_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => (now += 1000));
    for (let i = 0; i < 75; i++) await history.sample();
    clock.mockRestore();
    const p = history.history().pools['/p'];
    expect(p.active).toEqual(Array.from({ length: 60 }, (_, i) => i + 16));
    expect(p.t).toHaveLength(60);
    expect(history.history(p.t[58]).pools['/p'].active).toEqual([75]);
  });

  it('skips a tick while a sample is still running and survives a failing store', async () => {
    let release!: () => void;
    let calls = 0;
    const source = {
      snapshot: () => {
        calls++;
        if (calls === 1) return new Promise<BalancerStats>((r) => (release = () => r(stats(1))));
        return Promise.reject(new Error('redis down'));
      },
    } as unknown as BalancerStatsService;
    const options = {
      ui: { enable: true, historySeconds: 60 },
      logger: false,
    } as ResolvedBalancerOptions;
    const history = new StatsHistory(options, source);
    const first = history.sample();
    await history.sample(); // skipped: the first is still busy
    expect(calls).toBe(1);
    release();
    await first;
    await history.sample(); // rejects inside: logged once, not thrown
    expect(calls).toBe(2);
    expect(history.history().pools['/p'].active).toEqual([1]);
  });
});
