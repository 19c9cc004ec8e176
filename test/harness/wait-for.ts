/** Poll `condition` until it holds (or throw after `timeoutMs`): for state with no event to await. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A promise the test resolves by hand: lets handlers block until the test says go. */
export class Latch {
  private release!: () => void;
  readonly promise = new Promise<void>((r) => (this.release = r));
  open(): void {
    this.release();
  }
}

/** Read `/balancer/stats` for one pool. */
export async function poolStats(url: string, pool: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/balancer/stats`, { headers });
  const body = (await res.json()) as { endpoints: Record<string, Record<string, unknown>> };
  const entry = body.endpoints[pool];
  if (!entry) throw new Error(`no pool ${pool} in stats: ${JSON.stringify(body)}`);
  return entry as {
    capacity: number | null;
    active_requests: number;
    available_slots: number;
    queued: number;
    capacity_source: string;
    admitted: number;
    rejected: number;
    timed_out: number;
  };
}
