/**
 * Redis round trips per uncontended admitted request. A Nest app with the Redis store serves
 * sequential requests on a trivial @Balanced() route (capacity never reached) while a MONITOR
 * connection records every command the app sends to a private redis-server; INFO
 * commandstats deltas cross-check the count. Target: exactly 2 (acquire, release).
 *
 *   npm run bench -- redis          (part of npm run bench)
 *   ts-node --transpile-only bench/redis-roundtrips.ts
 */
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import { Balanced, BalancerModule } from '../src';
import { SCRIPTS } from '../src/storage/redis/scripts';
import { RedisServer } from '../test/harness/redis';
import type { BenchSection } from './section';

const REQUESTS = Number(process.env.BENCH_REDIS_REQUESTS ?? 2000);
const WARMUP = 100;

@Controller()
class TrivialController {
  @Get('trivial')
  @Balanced({ capacity: 8 })
  trivial(): string {
    return 'ok';
  }
}

function scriptNames(): Map<string, string> {
  const bySha = new Map<string, string>();
  for (const [name, def] of Object.entries(SCRIPTS)) {
    bySha.set(
      createHash('sha1').update(def.lua).digest('hex'),
      name.replace(/^balancer/, '').toLowerCase(),
    );
  }
  return bySha;
}

async function commandstats(client: Redis): Promise<Map<string, number>> {
  const info = await client.info('commandstats');
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1], Number(m[2]));
  return out;
}

export async function runRedisBench(): Promise<BenchSection> {
  const server = await RedisServer.start();
  const admin = server.client();
  const monitorBase = server.client();
  const monitor = await monitorBase.monitor();
  // The bench's own commands (INFO, PING) are not the app's.
  const adminAddr = /addr=(\S+)/.exec(String(await admin.call('CLIENT', 'INFO')))?.[1];
  const shas = scriptNames();
  let recording = false;
  /** Commands sent by the app while recording, by name (scripts by their store name). */
  const seen = new Map<string, number>();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (!recording || source === 'lua' || source === adminAddr) return;
    const cmd = args[0].toLowerCase();
    const name = cmd === 'evalsha' ? `script:${shas.get(args[1]) ?? args[1]}` : cmd;
    seen.set(name, (seen.get(name) ?? 0) + 1);
  });

  @Module({
    imports: [
      BalancerModule.forRoot({
        storage: { type: 'redis', url: server.url, keyPrefix: 'bench' },
        probeOnStartup: false,
        healthEndpoint: false,
        ui: { enable: false },
        metrics: false,
        logger: false,
      }),
    ],
    controllers: [TrivialController],
  })
  class BenchModule {}

  const app = await NestFactory.create(BenchModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/trivial`;
  try {
    for (let i = 0; i < WARMUP; i++) await (await fetch(url)).text();
    const before = await commandstats(admin);
    recording = true;
    const started = performance.now();
    let ok = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(url);
      await res.text();
      if (res.status === 200) ok++;
    }
    const elapsedMs = performance.now() - started;
    // MONITOR lines may trail the replies by a moment: a PING through it marks the end.
    await admin.ping();
    await new Promise((r) => setTimeout(r, 200));
    recording = false;
    const after = await commandstats(admin);

    const perRequest = (name: string): number => (seen.get(name) ?? 0) / REQUESTS;
    const periodic = [...seen].filter(([n]) => n === 'script:heartbeat' || n === 'ping');
    const hot = [...seen].filter(([n]) => !periodic.some(([p]) => p === n));
    const hotTotal = hot.reduce((sum, [, n]) => sum + n, 0) / REQUESTS;
    const evalshaDelta = (after.get('evalsha') ?? 0) - (before.get('evalsha') ?? 0);
    const data = {
      requests: REQUESTS,
      admitted: ok,
      roundTripsPerRequest: hotTotal,
      acquirePerRequest: perRequest('script:acquire'),
      releasePerRequest: perRequest('script:release'),
      periodic: Object.fromEntries(periodic),
      commands: Object.fromEntries(seen),
      evalshaCallsDelta: evalshaDelta,
      elapsedMs: Math.round(elapsedMs),
      meanRequestMs: elapsedMs / REQUESTS,
    };
    const rows = [...seen]
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `| ${name} | ${n} | ${(n / REQUESTS).toFixed(3)} |`);
    const markdown = [
      `${REQUESTS} sequential requests to a trivial \`@Balanced({ capacity: 8 })\` route (never contended), Redis store, one worker.`,
      `Commands the app sent to Redis while they ran (MONITOR; commands run inside scripts excluded):`,
      '',
      '| command | calls | per request |',
      '|---|---:|---:|',
      ...rows,
      '',
      `**Round trips per admitted request: ${hotTotal.toFixed(3)}** (target 2: acquire + release). ` +
        `Periodic heartbeats (${periodic.map(([n, c]) => `${n} ${c}`).join(', ') || 'none'}) run every leaseTtl/3 per pool, independent of traffic.`,
      `Cross-check, INFO commandstats: ${evalshaDelta} EVALSHA calls in total over the run. ` +
        `Mean request time ${data.meanRequestMs.toFixed(2)} ms (sequential, client in the same process).`,
    ].join('\n');
    return { title: 'Redis round trips per request', markdown, data };
  } finally {
    await app.close();
    monitor.disconnect();
    monitorBase.disconnect();
    admin.disconnect();
    await server.stop();
  }
}

if (require.main === module) {
  runRedisBench()
    .then((section) => {
      console.log(`## ${section.title}\n\n${section.markdown}`);
      console.log(JSON.stringify(section.data, null, 2));
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
