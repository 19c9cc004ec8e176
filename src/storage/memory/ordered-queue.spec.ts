import { OrderedQueue, type QueueEntry } from './ordered-queue';

interface Item extends QueueEntry {
  readonly name: string;
}

/** A small seeded generator (mulberry32): the same sequence on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('OrderedQueue', () => {
  let seq = 0;
  const item = (key: number, name = `k${key}`): Item => ({ key, seq: seq++, queued: false, name });

  it('serves the lowest key first and equal keys in insertion order', () => {
    const q = new OrderedQueue<Item>();
    for (const [key, name] of [
      [3, 'c1'],
      [1, 'a1'],
      [2, 'b1'],
      [1, 'a2'],
      [-5, 'neg'],
      [3, 'c2'],
      [1, 'a3'],
    ] as const)
      q.push(item(key, name));
    expect(q.size).toBe(7);
    const out: string[] = [];
    for (let e = q.shift(); e; e = q.shift()) out.push(e.name);
    expect(out).toEqual(['neg', 'a1', 'a2', 'a3', 'b1', 'c1', 'c2']);
    expect(q.size).toBe(0);
    expect(q.peek()).toBeUndefined();
  });

  it('delete takes an entry out once: it is never served, and a second delete says false', () => {
    const q = new OrderedQueue<Item>();
    const [a, b, c] = [item(1, 'a'), item(2, 'b'), item(3, 'c')];
    [a, b, c].forEach((e) => q.push(e));
    expect(q.delete(a)).toBe(true);
    expect(a.queued).toBe(false);
    expect(q.delete(a)).toBe(false);
    expect(q.size).toBe(2);
    expect(q.peek()).toBe(b);
    expect(q.shift()).toBe(b);
    expect(b.queued).toBe(false);
    expect(q.delete(b)).toBe(false);
    expect(q.entries()).toEqual([c]);
    expect(q.shift()).toBe(c);
    expect(q.shift()).toBeUndefined();
  });

  it('matches a sorted list under random pushes, deletes and shifts', () => {
    const random = rng(7);
    const q = new OrderedQueue<Item>();
    let model: Item[] = [];
    const order = (a: Item, b: Item) => a.key - b.key || a.seq - b.seq;
    // Each step's answer and size, from the queue and from the model, compared at the end.
    const got: unknown[] = [];
    const want: unknown[] = [];
    for (let step = 0; step < 5000; step++) {
      const r = random();
      if (r < 0.5) {
        const e = item(Math.floor(random() * 40) - 10);
        q.push(e);
        model.push(e);
      } else if (r < 0.75 && model.length > 0) {
        const e = model[Math.floor(random() * model.length)];
        got.push({ step, deleted: q.delete(e) });
        want.push({ step, deleted: true });
        model = model.filter((m) => m !== e);
      } else {
        model.sort(order);
        got.push({ step, shifted: q.shift() });
        want.push({ step, shifted: model.shift() });
      }
      got.push({ step, size: q.size });
      want.push({ step, size: model.length });
    }
    expect(got).toEqual(want);
    model.sort(order);
    expect(q.entries().sort(order)).toEqual(model);
  });

  it('countUpTo counts the queued entries with a key <= the given one, up to a limit', () => {
    const random = rng(11);
    const q = new OrderedQueue<Item>();
    const live: Item[] = [];
    for (let i = 0; i < 300; i++) {
      const e = item(Math.floor(random() * 50));
      q.push(e);
      live.push(e);
    }
    // Deleted entries (still in the heap until dropped) are not counted.
    for (const e of live.splice(0, 100)) q.delete(e);
    for (const key of [-1, 0, 7, 25, 49, 60]) {
      const exact = live.filter((e) => e.key <= key).length;
      expect(q.countUpTo(key, Infinity)).toBe(exact);
      expect(q.countUpTo(key, 5)).toBe(Math.min(exact, 5));
      expect(q.countUpTo(key, 0)).toBe(0);
    }
    expect(new OrderedQueue<Item>().countUpTo(10, 3)).toBe(0);
  });

  it('does not grow with entries deleted behind a head that never moves (compaction)', () => {
    const q = new OrderedQueue<Item>();
    const head = item(0, 'head');
    q.push(head);
    for (let i = 0; i < 10_000; i++) {
      const e = item(1 + i);
      q.push(e);
      q.delete(e);
    }
    expect(q.size).toBe(1);
    expect(q.held).toBeLessThanOrEqual(2 * 32 + 2);
    // Many live entries: deleted ones are dropped once they outnumber the live ones.
    const keep = Array.from({ length: 1000 }, (_, i) => item(100_000 + i));
    keep.forEach((e) => q.push(e));
    for (let i = 0; i < 5000; i++) {
      const e = item(50_000 + i);
      q.push(e);
      q.delete(e);
    }
    expect(q.size).toBe(1001);
    expect(q.held).toBeLessThanOrEqual(2 * q.size + 1);
    expect(q.shift()).toBe(head);
    expect(q.shift()).toBe(keep[0]);
  });

  it('an emptied queue holds nothing', () => {
    const q = new OrderedQueue<Item>();
    const entries = Array.from({ length: 10 }, (_, i) => item(i));
    entries.forEach((e) => q.push(e));
    entries.forEach((e) => q.delete(e));
    expect(q.size).toBe(0);
    expect(q.held).toBe(0);
    expect(q.peek()).toBeUndefined();
  });
});
