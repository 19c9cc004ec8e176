import { RedisServer, uniquePrefix } from '../../harness/redis';
import { get, killAll, spawnWorkers } from '../workers';
import type { ChildProcess } from 'node:child_process';
async function main() {
  const children = new Set<ChildProcess>();
  const stress: ChildProcess[] = [];
  const server = await RedisServer.start();
  const raw = server.client();
  const prefix = uniquePrefix('mp');
  const config = { redisUrl: server.url, counterUrl: server.url, keyPrefix: prefix, capacity: 4, leaseTtl: 2, queueTimeout: 20 };
  const workers = await spawnWorkers('test/fixtures/redis-worker.ts', 3, { WORKER_CONFIG: JSON.stringify(config), WORKER_LOG: '1' }, children, 120_000);
  console.log('started');
  let next = 0; const statuses = new Map<number, number>(); const total = 2000;
  const t0 = Date.now();
  const timer = setInterval(async () => {
    console.log('progress', next, JSON.stringify(Object.fromEntries(statuses)), Math.round((Date.now() - t0) / 1000), 's');
    const leases = await raw.zrange(`${prefix}:{/work}:leases`, 0, -1, 'WITHSCORES');
    const queue = await raw.zrange(`${prefix}:{/work}:queue`, 0, -1, 'WITHSCORES');
    const [t] = await raw.time();
    console.log('channels', await raw.call('PUBSUB', 'CHANNELS', '*'), 'clients', String(await raw.call('CLIENT', 'LIST')).split('\n').filter((l) => l.includes('sub=1') || l.includes('psub')).length);
    console.log('now', t, 'leases', leases.join(' '), 'queue', queue.length / 2, await raw.hgetall(`${prefix}:{/work}:meta`));
  }, 3000);
  await Promise.all(Array.from({ length: 24 }, async (_, c) => {
    for (;;) { const i = next++; if (i >= total) return; const w = workers[(i + c) % 3]; const r = await get(`${w.url}/work?ms=2`); statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1); if (Date.now() - t0 > 20_000) return; }
  }));
  clearInterval(timer);
  console.log('done', JSON.stringify(Object.fromEntries(statuses)), Date.now() - t0);
  for (const w of workers) console.log(w.output().split('\n').filter((l) => /WARN|ERROR|Redis|DEBUG/.test(l)).slice(0, 30).join('\n'));
  for (const w of workers) console.log(JSON.stringify((await get(`${w.url}/balancer/stats`)).body));
  stress.forEach((s) => s.kill('SIGKILL'));
  await killAll(children); raw.disconnect(); await server.stop();
}
main();
