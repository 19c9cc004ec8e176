/**
 * Cost units against count caps, on a simulated model whose memory budget is in tokens.
 *
 * The model holds `BUDGET` tokens of memory; a call of t prompt tokens holds t tokens for
 * `BASE_MS + PER_TOKEN_MS x t`, and a call that arrives when its tokens do not fit in what is
 * left fails at once (out of memory, 500). Concurrency itself costs nothing: memory is the only
 * limit, as for a batching inference server. Prompt sizes are lognormal (median `MEDIAN`
 * tokens, sigma `SIGMA`: long-tailed), cut at the model's context `MAX_PROMPT`. Clients arrive
 * open-loop (Poisson) at 3x the model's best rate (its token budget over the mean token-time of
 * a call), every configuration with the same seeded sequence of arrivals and prompt sizes.
 *
 * The route is a real Nest app on Express, one per phase: `@Balanced`-style `endpoints['/generate']`
 * with either `capacity: K` (count-capped, several K) or `capacity: BUDGET, costHeader:
 * 'x-prompt-tokens'` (unit-capped; the client sends its prompt's token count). Queue timeout 2 s.
 * Rounds interleave the configurations; the table shows medians over rounds.
 *
 *   npm run bench -- costs
 *   ts-node --transpile-only bench/costs/units.ts [--rounds 3] [--seconds 5]
 */
import { Controller, Headers, HttpException, Module, Post, type Type } from '@nestjs/common';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BalancerModule, type EndpointOptions } from '../../src';
import { startApp } from '../../test/harness/platforms';
import { percentile } from '../lib/stats';
import { markdownTable } from '../lib/table';
import type { BenchSection } from '../section';

const BUDGET = 16_000;
const MEDIAN = 500;
const SIGMA = 1.0;
const MAX_PROMPT = 8_000;
const MIN_PROMPT = 16;
const BASE_MS = 100;
const PER_TOKEN_MS = 0.2;
const OVERLOAD = 3;
const QUEUE_TIMEOUT_S = 2;
/** 2 is the safe count cap (2 x the largest prompt fits the budget); the others are guesses. */
const COUNT_CAPS = [2, 8, 16, 24];
const WARMUP_S = 1;
/** A large prompt, for the share of them served. */
const LARGE = 2_000;

/**
 * What an allocation past the budget fails: `call` only the call that did not fit (at once, the
 * kindest case for a count cap), or `batch` that call and every call in flight (a CUDA
 * out-of-memory error aborts the batched forward pass all of them are in).
 */
type OomModel = 'call' | 'batch';

interface Running {
  timer: NodeJS.Timeout;
  fail: () => void;
}

const oom = (): HttpException =>
  new HttpException({ message: 'model out of memory', reason: 'oom' }, 500);

/** The simulated model: a memory budget in tokens. */
class TokenModel {
  used = 0;
  failed = 0;
  private readonly running = new Set<Running>();

  constructor(private readonly oomModel: OomModel) {}

  generate(tokens: number): Promise<void> {
    if (this.used + tokens > BUDGET) {
      this.failed++;
      if (this.oomModel === 'batch') for (const r of [...this.running]) r.fail();
      return Promise.reject(oom());
    }
    this.used += tokens;
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        this.running.delete(run);
        this.used -= tokens;
      };
      const run: Running = {
        timer: setTimeout(() => {
          done();
          resolve();
        }, holdMs(tokens)),
        fail: () => {
          clearTimeout(run.timer);
          done();
          this.failed++;
          reject(oom());
        },
      };
      this.running.add(run);
    });
  }
}

const holdMs = (tokens: number): number => BASE_MS + PER_TOKEN_MS * tokens;

/** Deterministic PRNG (mulberry32), so every configuration sees the same load. */
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

function promptSize(rand: () => number): number {
  // Box-Muller: a normal draw, then lognormal around the median.
  const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const t = Math.round(MEDIAN * Math.exp(SIGMA * z));
  return Math.min(MAX_PROMPT, Math.max(MIN_PROMPT, t));
}

interface Arrival {
  atMs: number;
  tokens: number;
}

/** Poisson arrivals at `rate` per second for `seconds`, with prompt sizes, from one seed. */
function arrivals(seed: number, rate: number, seconds: number): Arrival[] {
  const rand = rng(seed);
  const out: Arrival[] = [];
  for (let t = 0; ;) {
    t += (-Math.log(1 - rand()) / rate) * 1000;
    if (t >= seconds * 1000) return out;
    out.push({ atMs: t, tokens: promptSize(rand) });
  }
}

/** The model's best request rate: its budget over the mean token-milliseconds of a call. */
function bestRate(): number {
  const rand = rng(7);
  let sum = 0;
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    const t = promptSize(rand);
    sum += t * holdMs(t);
  }
  return (BUDGET / (sum / n)) * 1000;
}

type Config = { name: string; oom: OomModel; endpoint: Partial<EndpointOptions> };

function appModule(model: TokenModel, endpoint: Partial<EndpointOptions>): Type {
  @Controller()
  class GenerateController {
    @Post('generate')
    async generate(@Headers('x-prompt-tokens') tokens: string): Promise<{ ok: true }> {
      await model.generate(Number(tokens));
      return { ok: true };
    }
  }
  @Module({
    imports: [
      BalancerModule.forRoot({
        probeOnStartup: false,
        healthEndpoint: false,
        ui: { enable: false },
        logger: false,
        queueTimeout: QUEUE_TIMEOUT_S,
        endpoints: { '/generate': { method: 'POST', ...endpoint } },
      }),
    ],
    controllers: [GenerateController],
  })
  class CostBenchModule {}
  return CostBenchModule;
}

interface PhaseResult {
  tokensPerS: number;
  served: number;
  failed: number;
  refused: number;
  p99Ms: number | null;
  /** Of the prompts of at least `LARGE` tokens sent, the share served. */
  largeServed: number;
}

async function phase(config: Config, load: Arrival[], seconds: number): Promise<PhaseResult> {
  const model = new TokenModel(config.oom);
  const app = await startApp('express', appModule(model, config.endpoint));
  const latencies: number[] = [];
  let tokens = 0;
  let served = 0;
  let refused = 0;
  let large = 0;
  let largeOk = 0;
  const start = performance.now();
  const calls: Array<Promise<void>> = [];
  try {
    for (const a of load) {
      const wait = start + a.atMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const sent = performance.now();
      if (a.tokens >= LARGE) large++;
      calls.push(
        fetch(`${app.url}/generate`, {
          method: 'POST',
          headers: { 'x-prompt-tokens': String(a.tokens) },
        }).then(
          async (res) => {
            await res.arrayBuffer();
            const done = performance.now();
            const inWindow = done - start >= WARMUP_S * 1000 && done - start <= seconds * 1000;
            if (res.status === 201) {
              if (a.tokens >= LARGE) largeOk++;
              if (inWindow) {
                tokens += a.tokens;
                served++;
              }
              if (sent - start >= WARMUP_S * 1000) latencies.push(done - sent);
            } else if (res.status === 503 || res.status === 504) refused++;
          },
          () => void refused++,
        ),
      );
    }
    await Promise.all(calls);
  } finally {
    await app.close();
  }
  latencies.sort((x, y) => x - y);
  return {
    tokensPerS: tokens / (seconds - WARMUP_S),
    served,
    failed: model.failed,
    refused,
    p99Ms: percentile(latencies, 99),
    largeServed: large ? largeOk / large : 0,
  };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function runCostsBench(
  opts: { rounds?: number; seconds?: number } = {},
): Promise<BenchSection> {
  const rounds = opts.rounds ?? 3;
  const seconds = opts.seconds ?? 5;
  const rate = bestRate() * OVERLOAD;
  const configs: Config[] = (['batch', 'call'] as const).flatMap((oomModel) => [
    {
      name: `units (capacity ${BUDGET} tokens)`,
      oom: oomModel,
      endpoint: { capacity: BUDGET, costHeader: 'x-prompt-tokens' },
    },
    ...COUNT_CAPS.map((k) => ({
      name: `count cap ${k}`,
      oom: oomModel,
      endpoint: { capacity: k },
    })),
  ]);
  const key = (c: Config): string => `${c.oom}: ${c.name}`;
  const results = new Map<string, PhaseResult[]>();
  for (let r = 0; r < rounds; r++) {
    const load = arrivals(1000 + r, rate, seconds);
    // Interleaved, and the order turns each round so no configuration always runs first.
    const order = configs.map((_, i) => configs[(i + r) % configs.length]);
    for (const c of order) {
      const res = await phase(c, load, seconds);
      console.error(
        `[costs] round ${r + 1} ${key(c)}: ${res.tokensPerS.toFixed(0)} tok/s, ` +
          `failed ${res.failed}, refused ${res.refused}, p99 ${res.p99Ms?.toFixed(0)} ms`,
      );
      results.set(key(c), [...(results.get(key(c)) ?? []), res]);
    }
  }
  const rows = configs.map((c) => {
    const rs = results.get(key(c))!;
    return {
      oom: c.oom,
      name: c.name,
      tokensPerS: median(rs.map((x) => x.tokensPerS)),
      failed: median(rs.map((x) => x.failed)),
      refused: median(rs.map((x) => x.refused)),
      served: median(rs.map((x) => x.served)),
      p99Ms: median(rs.map((x) => x.p99Ms ?? 0)),
      largeServed: median(rs.map((x) => x.largeServed)),
    };
  });
  const markdown = [
    `Simulated model: ${BUDGET} tokens of memory, a call of t tokens holds them ${BASE_MS} + ` +
      `${PER_TOKEN_MS} x t ms; an allocation past the budget fails (500) either the batch (the ` +
      `call and every call in flight, as a CUDA out-of-memory error aborts a batched forward ` +
      `pass) or only the call that did not fit (the kindest case for a count cap). Prompts ` +
      `lognormal (median ${MEDIAN}, sigma ${SIGMA}, ${MIN_PROMPT}..${MAX_PROMPT} tokens); ` +
      `Poisson arrivals at ${OVERLOAD}x the model's best rate (${rate.toFixed(0)} req/s), ` +
      `${seconds} s per phase (tokens counted after the first ${WARMUP_S} s), queue timeout ` +
      `${QUEUE_TIMEOUT_S} s, Express. Medians over ${rounds} interleaved rounds (the same seeded ` +
      `load for every configuration in a round). Count cap 2 is the largest that can never run ` +
      `out of memory (2 x ${MAX_PROMPT} tokens).`,
    '',
    markdownTable(
      [
        'out of memory fails',
        'admission',
        'tokens served/s',
        'served',
        'failed calls (OOM)',
        '503/504',
        'p99 ms (served)',
        `prompts >= ${LARGE} served`,
      ],
      rows.map((x) => [
        x.oom === 'batch' ? 'the batch' : 'the call',
        x.name,
        x.tokensPerS.toFixed(0),
        x.served,
        x.failed,
        x.refused,
        x.p99Ms.toFixed(0),
        `${(x.largeServed * 100).toFixed(0)} %`,
      ]),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    'Reproduce: `npm run bench -- costs` (about 3 minutes).',
  ].join('\n');
  const section = {
    title: 'Cost units vs count caps (token budget)',
    markdown,
    data: { rows, rate },
  };
  const dir = join(__dirname, '..', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'costs-latest.md'), `# ${section.title}\n\n${markdown}\n`);
  return section;
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const arg = (name: string): number | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  runCostsBench({ rounds: arg('rounds'), seconds: arg('seconds') })
    .then((s) => console.log(s.markdown))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
