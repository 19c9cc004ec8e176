import { TRACKED_TENANTS } from '../queue-order';
import { HeavyHitters } from './heavy-hitters';

/** The Space-Saving rules written plainly, as the reference for the heap. */
class Reference {
  readonly counts = new Map<string, number>();
  constructor(private readonly capacity: number) {}
  add(tenant: string): void {
    const c = this.counts.get(tenant);
    if (c !== undefined) this.counts.set(tenant, c + 1);
    else if (this.counts.size < this.capacity) this.counts.set(tenant, 1);
    else {
      const [victim, min] = [...this.counts].sort(
        (a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1),
      )[0];
      this.counts.delete(victim);
      this.counts.set(tenant, min + 1);
    }
  }
  top(n: number) {
    return [...this.counts]
      .map(([tenant, count]) => ({ tenant, count }))
      .sort((a, b) => b.count - a.count || (a.tenant < b.tenant ? -1 : 1))
      .slice(0, n);
  }
}

describe('HeavyHitters', () => {
  it('counts exactly while there is room', () => {
    const h = new HeavyHitters(5);
    for (const t of ['a', 'b', 'a', 'c', 'a', 'b']) h.add(t);
    expect(h.top(10)).toEqual([
      { tenant: 'a', count: 3 },
      { tenant: 'b', count: 2 },
      { tenant: 'c', count: 1 },
    ]);
    expect(h.top(1)).toEqual([{ tenant: 'a', count: 3 }]);
  });

  it('when full, a newcomer replaces the smallest entry (ties by name) with its count + 1', () => {
    const h = new HeavyHitters(3);
    for (const t of ['x', 'y', 'y', 'z', 'z', 'z']) h.add(t);
    h.add('new');
    expect(h.top(10)).toEqual([
      { tenant: 'z', count: 3 },
      { tenant: 'new', count: 2 },
      { tenant: 'y', count: 2 },
    ]);
    // Now 'new' and 'y' tie at 2: 'new' goes first by name.
    h.add('again');
    expect(h.top(10)).toEqual([
      { tenant: 'again', count: 3 },
      { tenant: 'z', count: 3 },
      { tenant: 'y', count: 2 },
    ]);
    expect(h.size).toBe(3);
  });

  it('never tracks more than its capacity, the default being TRACKED_TENANTS', () => {
    const h = new HeavyHitters();
    for (let i = 0; i < TRACKED_TENANTS * 3; i++) h.add(`t${i}`);
    expect(h.size).toBe(TRACKED_TENANTS);
  });

  it('matches the plain Space-Saving rules on a skewed random stream', () => {
    let x = 99; // xorshift32: the same stream on every run
    const random = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 4294967296;
    };
    const h = new HeavyHitters(20);
    const ref = new Reference(20);
    const seen: unknown[] = [];
    const expected: unknown[] = [];
    for (let i = 0; i < 5000; i++) {
      // A few heavy tenants and a long tail.
      const tenant =
        random() < 0.6 ? `heavy${Math.floor(random() * 4)}` : `tail${Math.floor(random() * 200)}`;
      h.add(tenant);
      ref.add(tenant);
      if (i % 250 === 0) {
        seen.push(h.top(20));
        expected.push(ref.top(20));
      }
    }
    expect(seen).toEqual(expected);
    expect(h.top(20)).toEqual(ref.top(20));
    expect(
      h
        .top(4)
        .map((c) => c.tenant)
        .sort(),
    ).toEqual(['heavy0', 'heavy1', 'heavy2', 'heavy3']);
  });
});
