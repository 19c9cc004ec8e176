import { DEFAULT_TENANT, TenantTable, byCountThenName } from './tenant-table';

describe('TenantTable', () => {
  it('gives one tenant consecutive rounds (FIFO) and a newcomer the round after the current one', () => {
    const t = new TenantTable();
    expect([t.enqueue('a'), t.enqueue('a'), t.enqueue('a')]).toEqual([1, 2, 3]);
    expect(t.roundFor('b')).toBe(1);
    expect(t.enqueue('b')).toBe(1);
    t.granted(1);
    t.granted(2);
    // Granting an older round never moves the current round back.
    t.granted(1);
    expect(t.enqueue('c')).toBe(3);
    expect(t.enqueue('b')).toBe(3);
    expect(t.enqueue('a')).toBe(4);
  });

  it('roundFor does not record anything', () => {
    const t = new TenantTable();
    t.enqueue('a');
    expect(t.roundFor('a')).toBe(2);
    expect(t.roundFor('a')).toBe(2);
    expect(t.queuedOf('a')).toBe(1);
    expect(t.queuedOf('b')).toBe(0);
  });

  it('forgets a tenant when its last waiter leaves: the table stays bounded by the queue', () => {
    const t = new TenantTable();
    for (let i = 0; i < 5; i++) t.enqueue('gone');
    t.enqueue('stay');
    expect(t.size).toBe(2);
    for (let i = 0; i < 4; i++) t.leave('gone');
    expect(t.queuedOf('gone')).toBe(1);
    t.leave('gone');
    expect(t.queuedOf('gone')).toBe(0);
    expect(t.size).toBe(1);
    // Its rounds 1..5 are forgotten: it starts after the current round (0) again.
    expect(t.enqueue('gone')).toBe(1);
    t.leave('stay');
    t.leave('gone');
    expect(t.size).toBe(0);
    // A leave for a tenant not in the table changes nothing.
    t.leave('never');
    expect(t.size).toBe(0);
  });

  it('lists named tenants by queued count, largest first, ties by name, without the default tenant', () => {
    const t = new TenantTable();
    for (const [tenant, n] of [
      ['zeta', 2],
      ['alpha', 2],
      ['mid', 3],
      [DEFAULT_TENANT, 9],
      ['solo', 1],
    ] as const)
      for (let i = 0; i < n; i++) t.enqueue(tenant);
    expect(t.top(10)).toEqual([
      { tenant: 'mid', count: 3 },
      { tenant: 'alpha', count: 2 },
      { tenant: 'zeta', count: 2 },
      { tenant: 'solo', count: 1 },
    ]);
    expect(t.top(2).map((c) => c.tenant)).toEqual(['mid', 'alpha']);
  });

  it('byCountThenName orders by count descending, then name ascending', () => {
    const list = [
      { tenant: 'b', count: 1 },
      { tenant: 'a', count: 1 },
      { tenant: 'c', count: 5 },
    ].sort(byCountThenName);
    expect(list.map((c) => c.tenant)).toEqual(['c', 'a', 'b']);
  });
});
