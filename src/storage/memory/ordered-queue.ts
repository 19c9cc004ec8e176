/** An entry of an `OrderedQueue`: served by lowest `key`, equal keys by lowest `seq`. */
export interface QueueEntry {
  /** The queue key (`queueKey` of `queue-order.ts`). */
  readonly key: number;
  /** Insertion sequence, unique and increasing: equal keys keep arrival order. */
  readonly seq: number;
  /** Set by the queue: true from `push` until the entry is shifted or deleted. */
  queued: boolean;
}

/** Below this many deleted entries the heap is never compacted (cheaper to leave them). */
const COMPACT_MIN = 32;

function before(a: QueueEntry, b: QueueEntry): boolean {
  return a.key < b.key || (a.key === b.key && a.seq < b.seq);
}

/**
 * A pool's queue in service order: a binary min-heap on (key, seq) with lazy deletion. A
 * waiter that leaves early (timeout, abort) is only marked; it is dropped when it reaches the
 * top, or when deleted entries outnumber live ones (compaction, so a queue whose head never
 * moves, e.g. while the capacity is unknown, does not grow with every timeout).
 * push O(log n), delete O(1) amortised, shift O(log n) amortised.
 */
export class OrderedQueue<T extends QueueEntry> {
  private heap: T[] = [];
  private live = 0;

  /** Waiters in the queue (deleted ones not counted). */
  get size(): number {
    return this.live;
  }

  push(entry: T): void {
    entry.queued = true;
    this.live++;
    this.heap.push(entry);
    this.up(this.heap.length - 1);
  }

  /** The next entry to serve, left in the queue. */
  peek(): T | undefined {
    this.dropDeletedTop();
    return this.heap[0];
  }

  /** Entries held, deleted ones not yet dropped included: at most about twice `size`. */
  get held(): number {
    return this.heap.length;
  }

  /** Take the next entry to serve out of the queue. */
  shift(): T | undefined {
    const top = this.peek();
    if (top) this.delete(top);
    return top;
  }

  /** Take `entry` out of the queue; false when it was not in it (served or deleted before). */
  delete(entry: T): boolean {
    if (!entry.queued) return false;
    entry.queued = false;
    this.live--;
    if (this.live === 0) this.heap = [];
    else if (this.heap.length - this.live > Math.max(COMPACT_MIN, this.live)) this.compact();
    return true;
  }

  /**
   * How many queued entries have a key <= `key` (served before a newcomer with that key),
   * counting at most `limit`. It visits only those entries and their children (a subtree whose
   * top has a larger key holds only larger keys), so it costs about the count, not the size.
   */
  countUpTo(key: number, limit: number): number {
    let count = 0;
    const stack: number[] = this.heap.length > 0 ? [0] : [];
    while (stack.length > 0 && count < limit) {
      const i = stack.pop() as number;
      const entry = this.heap[i];
      if (entry.key > key) continue;
      if (entry.queued) count++;
      const left = 2 * i + 1;
      if (left < this.heap.length) stack.push(left);
      if (left + 1 < this.heap.length) stack.push(left + 1);
    }
    return Math.min(count, limit);
  }

  /** The queued entries, in no particular order (a copy: safe to delete while iterating). */
  entries(): T[] {
    return this.heap.filter((e) => e.queued);
  }

  private dropDeletedTop(): void {
    while (this.heap.length > 0 && !this.heap[0].queued) {
      const last = this.heap.pop() as T;
      if (this.heap.length > 0) {
        this.heap[0] = last;
        this.down(0);
      }
    }
  }

  private compact(): void {
    this.heap = this.heap.filter((e) => e.queued);
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private up(i: number): void {
    const heap = this.heap;
    const entry = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = entry;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(heap[child + 1], heap[child])) child++;
      if (!before(heap[child], entry)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = entry;
  }
}
