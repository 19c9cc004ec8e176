import type { EndpointStats } from '../admission/balancer-stats.service';
import { MAX_TENANT_LABEL, MAX_TENANT_SERIES, tenantSeries } from './tenant-series';

type Count = { tenant: string; count: number };
const pool = (queued: Count[], admitted: Count[]): EndpointStats =>
  ({ tenants: { queued, admitted } }) as EndpointStats;
/** `n` tenants named `prefix-00`, `prefix-01` … with falling counts (a top list). */
const ranking = (prefix: string, n: number): Count[] =>
  Array.from({ length: n }, (_, i) => ({
    tenant: `${prefix}-${String(i).padStart(2, '0')}`,
    count: 100 - i,
  }));

describe('tenantSeries', () => {
  it('is empty for a pool without tenants', () => {
    const s = tenantSeries({} as EndpointStats);
    expect([...s.queued, ...s.admitted]).toEqual([]);
  });

  it('keeps at most 10 tenants per pool over both rankings, alternating between them', () => {
    // 15 and 15 different tenants (more than a store would list): 10 label values in all.
    const s = tenantSeries(pool(ranking('q', 15), ranking('a', 15)));
    const labels = new Set([...s.queued.keys(), ...s.admitted.keys()]);
    expect(labels.size).toBe(MAX_TENANT_SERIES);
    expect([...s.queued.keys()]).toEqual(['q-00', 'q-01', 'q-02', 'q-03', 'q-04']);
    expect([...s.admitted.keys()]).toEqual(['a-00', 'a-01', 'a-02', 'a-03', 'a-04']);
    expect(s.queued.get('q-00')).toBe(100);
  });

  it('uses the free places of a short ranking for the other one', () => {
    const s = tenantSeries(pool(ranking('q', 2), ranking('a', 12)));
    expect([...s.queued.keys()]).toEqual(['q-00', 'q-01']);
    expect(s.admitted.size).toBe(8);
  });

  it('shows a tenant in both gauges as one label value', () => {
    const both = ranking('t', 12);
    const s = tenantSeries(pool(both, [...both].reverse()));
    const labels = new Set([...s.queued.keys(), ...s.admitted.keys()]);
    expect(labels.size).toBe(MAX_TENANT_SERIES);
    expect(s.queued.get('t-00')).toBe(100);
    expect(s.admitted.get('t-11')).toBe(89);
  });

  it('cuts label values to 64 characters, never inside a surrogate pair, and merges keys equal once cut', () => {
    const long = 'k'.repeat(200);
    const emoji = `${'e'.repeat(MAX_TENANT_LABEL - 1)}🔑tail`; // the key's pair straddles the cut
    const s = tenantSeries(
      pool(
        [
          { tenant: `${long}-one`, count: 5 },
          { tenant: `${long}-two`, count: 3 },
          { tenant: emoji, count: 1 },
        ],
        [],
      ),
    );
    expect([...s.queued]).toEqual([
      ['k'.repeat(MAX_TENANT_LABEL), 8],
      ['e'.repeat(MAX_TENANT_LABEL - 1), 1],
    ]);
  });
});
