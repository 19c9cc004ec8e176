import type { TenantCount } from '../capacity-store.interface';
import { TRACKED_TENANTS } from '../queue-order';
import { byCountThenName } from './tenant-table';

function smaller(a: TenantCount, b: TenantCount): boolean {
  return a.count < b.count || (a.count === b.count && a.tenant < b.tenant);
}

/**
 * Admitted counts per tenant in bounded memory (Space-Saving): a tracked tenant counts on; a
 * new one is inserted with 1 while there is room, else it replaces the smallest entry (smallest
 * count, then smallest name, as a Redis sorted set orders them) and starts from that count + 1.
 * Counts are exact for tenants never evicted and over-estimate by at most the evicted count
 * otherwise. A min-heap on (count, name) with each tenant's position: O(log n) per count.
 */
export class HeavyHitters {
  private readonly heap: TenantCount[] = [];
  private readonly position = new Map<string, number>();

  constructor(private readonly capacity = TRACKED_TENANTS) {}

  /** Count one admission of `tenant`. */
  add(tenant: string): void {
    const i = this.position.get(tenant);
    if (i !== undefined) {
      this.heap[i].count++;
      this.down(i);
    } else if (this.heap.length < this.capacity) {
      this.heap.push({ tenant, count: 1 });
      this.up(this.heap.length - 1);
    } else {
      const evicted = this.heap[0];
      this.position.delete(evicted.tenant);
      this.heap[0] = { tenant, count: evicted.count + 1 };
      this.down(0);
    }
  }

  /** Tenants tracked (at most the capacity). */
  get size(): number {
    return this.heap.length;
  }

  /** The `n` largest counts, largest first, ties by name. */
  top(n: number): TenantCount[] {
    return this.heap
      .map(({ tenant, count }) => ({ tenant, count }))
      .sort(byCountThenName)
      .slice(0, n);
  }

  private place(entry: TenantCount, i: number): void {
    this.heap[i] = entry;
    this.position.set(entry.tenant, i);
  }

  private up(i: number): void {
    const entry = this.heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!smaller(entry, this.heap[parent])) break;
      this.place(this.heap[parent], i);
      i = parent;
    }
    this.place(entry, i);
  }

  private down(i: number): void {
    const n = this.heap.length;
    const entry = this.heap[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && smaller(this.heap[child + 1], this.heap[child])) child++;
      if (!smaller(this.heap[child], entry)) break;
      this.place(this.heap[child], i);
      i = child;
    }
    this.place(entry, i);
  }
}
