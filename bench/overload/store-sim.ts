import { performance } from 'node:perf_hooks';
import { MemoryCapacityStore } from '../../src/storage/memory-capacity.store';
import { percentile } from '../lib/stats';

/**
 * `queueTargetMs` on the memory store alone, without HTTP: open-loop Poisson arrivals at
 * rate x K/S call `acquire`, each granted request holds its slot S ms, the queue timeout and
 * the target are the overload bench's. What is left is the store's policy, so a run takes
 * seconds, costs almost no CPU and is not at the mercy of a busy machine: the place to check
 * that the queue is held near the target before a full `npm run bench:overload`.
 *
 *   npx ts-node --transpile-only bench/overload/store-sim.ts [--k 8] [--s 50] [--target MS]
 *     [--rate 3] [--timeout-ms 1000] [--duration 8] [--warmup 2]
 *
 * Prints the served requests' queue wait (p50/p90/p99, after the warm-up), shed and timed-out
 * counts, and per second the served p50 wait, the queue length and whether the store sheds.
 */

interface SimConfig {
  k: number;
  s: number;
  target: number | null;
  rate: number;
  timeoutMs: number;
  duration: number;
  warmup: number;
}

function parse(argv: string[]): SimConfig {
  const cfg: SimConfig = {
    k: 8,
    s: 50,
    target: null,
    rate: 3,
    timeoutMs: 1000,
    duration: 8,
    warmup: 2,
  };
  const keys: Record<string, keyof SimConfig> = {
    k: 'k',
    s: 's',
    target: 'target',
    rate: 'rate',
    'timeout-ms': 'timeoutMs',
    duration: 'duration',
    warmup: 'warmup',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = keys[argv[i].replace(/^--/, '')];
    const n = Number(argv[i + 1]);
    if (!key || !Number.isFinite(n) || n <= 0)
      throw new Error(`bad argument ${argv[i]} ${argv[i + 1]}`);
    cfg[key] = n;
  }
  return cfg;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function main(): Promise<void> {
  const cfg = parse(process.argv.slice(2));
  const target = cfg.target ?? 2 * cfg.s;
  const rate = (cfg.rate * cfg.k * 1000) / cfg.s;
  const store = new MemoryCapacityStore({ logger: false });
  await store.init();
  await store.setCapacity('sim', cfg.k, 'manual');
  const t0 = performance.now();
  const endAt = t0 + cfg.duration * 1000;
  const measuredFrom = t0 + cfg.warmup * 1000;
  const waits: number[] = [];
  const perSecond: Array<{ waits: number[]; queued: number; shedding: boolean }> = [];
  const counts = { sent: 0, served: 0, shed: 0, timeout: 0, other: 0 };
  const ticker = setInterval(() => {
    void store.snapshot('sim').then((snap) => {
      const sec = Math.floor((performance.now() - t0) / 1000);
      const slot = (perSecond[sec] ??= { waits: [], queued: 0, shedding: false });
      slot.queued = Math.max(slot.queued, snap.queued);
      slot.shedding ||= snap.overload?.shedding ?? false;
    });
  }, 100);
  const one = async (): Promise<void> => {
    const sentAt = performance.now();
    const r = await store.acquire('sim', {
      timeoutMs: cfg.timeoutMs,
      maxQueue: 100_000,
      queueTargetMs: target,
    });
    const measured = sentAt >= measuredFrom;
    if (r.ok) {
      const sec = Math.floor((performance.now() - t0) / 1000);
      (perSecond[sec] ??= { waits: [], queued: 0, shedding: false }).waits.push(r.waitedMs);
      if (measured) {
        waits.push(r.waitedMs);
        counts.served++;
      }
      await sleep(cfg.s);
      await r.lease.release();
    } else if (measured) {
      if (r.reason === 'shed') counts.shed++;
      else if (r.reason === 'timeout') counts.timeout++;
      else counts.other++;
    }
  };
  const pending: Array<Promise<void>> = [];
  let next = t0;
  while (next < endAt) {
    if (next > performance.now()) {
      await sleep(next - performance.now());
      continue;
    }
    while (next <= performance.now() && next < endAt) {
      if (next >= measuredFrom) counts.sent++;
      pending.push(one());
      next += -Math.log(1 - Math.random()) * (1000 / rate);
    }
  }
  await Promise.all(pending);
  clearInterval(ticker);
  await store.close();
  const sorted = Float64Array.from(waits).sort();
  const ms = (p: number): string => percentile(sorted, p)?.toFixed(0) ?? '-';
  const measuredS = cfg.duration - cfg.warmup;
  console.log(
    `K=${cfg.k} S=${cfg.s} ms, ${rate.toFixed(0)} req/s (${cfg.rate} x K/S), queueTargetMs ${target}, ` +
      `timeout ${cfg.timeoutMs} ms; after ${cfg.warmup} s warm-up: sent ${counts.sent}, served ` +
      `${counts.served} (${((counts.served * cfg.s) / (cfg.k * 1000 * measuredS)).toFixed(2)} x K/S), ` +
      `shed ${counts.shed}, timed out ${counts.timeout}, other ${counts.other}; served wait p50 ` +
      `${ms(50)} p90 ${ms(90)} p99 ${ms(99)} ms (goal p50 <= 2 x target = ${2 * target} ms)`,
  );
  console.log('second | served | wait p50 ms | max queued | shedding');
  perSecond.forEach((slot, sec) => {
    const w = Float64Array.from(slot.waits).sort();
    console.log(
      `${sec} | ${slot.waits.length} | ${percentile(w, 50)?.toFixed(0) ?? '-'} | ${slot.queued} | ${slot.shedding}`,
    );
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
