import { performance } from 'node:perf_hooks';

/** One request as the client saw it. */
export interface Sample {
  /** Where it went (base URL of the server). */
  url: string;
  /** performance.now() when it was sent and when its response body was read. */
  sentAt: number;
  endAt: number;
  /** 0 for a network error. */
  status: number;
  /** The balancer's `reason` of a 503/504 body. */
  reason?: string;
  /** The `Retry-After` header, as sent. */
  retryAfter: string | null;
}

export const latencyOf = (s: Sample): number => s.endAt - s.sentAt;

/** GET `url` and time it up to the last byte of the body. */
export async function timedGet(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Sample> {
  const sentAt = performance.now();
  try {
    const res = await fetch(`${base}${path}`, { headers });
    const text = await res.text();
    let reason: string | undefined;
    if (res.status >= 500) {
      try {
        reason = (JSON.parse(text) as { reason?: string }).reason;
      } catch {
        reason = undefined;
      }
    }
    return {
      url: base,
      sentAt,
      endAt: performance.now(),
      status: res.status,
      reason,
      retryAfter: res.headers.get('retry-after'),
    };
  } catch {
    return { url: base, sentAt, endAt: performance.now(), status: 0, retryAfter: null };
  }
}

/**
 * Closed-loop clients: each keeps one request in flight (sends the next as soon as the last
 * answered) until `stop()`; `done` settles when every client has had its last answer.
 */
export function closedLoop(
  clients: number,
  send: (client: number) => Promise<Sample>,
  onSample: (sample: Sample, client: number) => void = () => undefined,
): { samples: Sample[]; stop(): void; done: Promise<void> } {
  const samples: Sample[] = [];
  let stopped = false;
  const done = Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      while (!stopped) {
        const sample = await send(client);
        samples.push(sample);
        onSample(sample, client);
      }
    }),
  ).then(() => undefined);
  return { samples, stop: () => (stopped = true), done };
}

/**
 * Open-loop load: request i is sent at start + i x 1000 / rateHz whether or not earlier ones
 * answered (a late timer sends every request that is due at once). Resolves with every sample
 * once the last request has been answered.
 */
export async function openLoop(
  rateHz: number,
  durationMs: number,
  send: (i: number) => Promise<Sample>,
): Promise<Sample[]> {
  const total = Math.round((rateHz * durationMs) / 1000);
  const gapMs = 1000 / rateHz;
  const start = performance.now();
  const pending: Array<Promise<Sample>> = [];
  while (pending.length < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) / gapMs) + 1);
    while (pending.length < due) pending.push(send(pending.length));
    if (pending.length < total) {
      // Pacing of the generator (the next send time), not a wait for an event.
      const next = start + pending.length * gapMs;
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
  }
  return Promise.all(pending);
}

/** The q-quantile (0..1) of `values`, nearest rank; NaN when empty. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const median = (values: number[]): number => quantile(values, 0.5);

/** Counts of each status, for readable failures. */
export function statusCounts(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    const key = s.reason ? `${s.status} ${s.reason}` : String(s.status);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
