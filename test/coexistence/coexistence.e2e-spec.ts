import { join } from 'node:path';
import { ADMISSION_CASES } from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';
import { startChildApp, type ChildApp } from './child-app';

/**
 * The real neighbours a production app loads, all at once, in a process of its own:
 * OpenTelemetry's NestJS instrumentation registered before Nest loads (with a tracer provider
 * and an in-memory exporter, so spans are really produced), a global `ThrottlerGuard`,
 * nestjs-cls, and `@nestjs/swagger` document generation. In each case the cap holds (peak =
 * capacity), stats count every request exactly once, and every slot comes back.
 */
interface State {
  work: { inFlight: number; peak: number; parked: number };
  yaml: { inFlight: number; peak: number; parked: number };
  handlerSpans: { work: number; yaml: number };
}

const CAPACITY = 2;
const REQUESTS = 8;

describe.each(ADMISSION_CASES)('coexistence on %s, %s admission', (platform, admission) => {
  let app: ChildApp;
  const state = async (): Promise<State> =>
    (await (await fetch(`${app.url}/test/state`)).json()) as State;

  beforeAll(async () => {
    app = await startChildApp(join(__dirname, 'fixtures', 'otel-first.ts'), {
      PLATFORM: platform,
      ADMISSION: admission,
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  async function capHolds(
    bucket: 'work' | 'yaml',
    pool: string,
    send: (i: number) => Promise<Response>,
  ): Promise<Array<{ id: string; clsId: string; clsAfter: string }>> {
    const responses = Array.from({ length: REQUESTS }, (_, i) => send(i));
    await waitFor(
      async () => {
        const s = await poolStats(app.url, pool);
        return s.active_requests === CAPACITY && s.queued === REQUESTS - CAPACITY;
      },
      15_000,
      `${CAPACITY} admitted and ${REQUESTS - CAPACITY} queued`,
    );
    expect((await state())[bucket]).toEqual({
      inFlight: CAPACITY,
      peak: CAPACITY,
      parked: CAPACITY,
    });
    await fetch(`${app.url}/test/open/${bucket}`, { method: 'POST' });
    const results = await Promise.all(responses);
    expect(results.map((r) => r.status).every((s) => s === 200 || s === 201)).toBe(true);
    const bodies = (await Promise.all(results.map((r) => r.json()))) as Array<{
      id: string;
      clsId: string;
      clsAfter: string;
    }>;
    expect((await state())[bucket].peak).toBe(CAPACITY);
    await waitFor(async () => (await poolStats(app.url, pool)).active_requests === 0);
    expect(await poolStats(app.url, pool)).toMatchObject({
      capacity: CAPACITY,
      active_requests: 0,
      available_slots: CAPACITY,
      queued: 0,
      admitted: REQUESTS,
      rejected: 0,
      timed_out: 0,
    });
    return bodies;
  }

  it('caps a @Balanced() route wrapped by OpenTelemetry, with throttler and CLS in the path', async () => {
    const bodies = await capHolds('work', '/work/:id', (i) =>
      fetch(`${app.url}/work/${i}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: `in-${i}` }),
      }),
    );
    expect(bodies.map((b) => b.id).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    // Every request kept its own CLS context through the queue wait.
    const ids = bodies.map((b) => b.clsId);
    expect(new Set(ids).size).toBe(REQUESTS);
    expect(bodies.every((b) => typeof b.clsId === 'string' && b.clsId === b.clsAfter)).toBe(true);
    // The instrumentation really wrapped the handler: one span per request.
    await waitFor(async () => (await state()).handlerSpans.work === REQUESTS);
  });

  it('caps a route watched only through endpoints (the global interceptor) under OpenTelemetry', async () => {
    const bodies = await capHolds('yaml', '/yaml/:id', (i) => fetch(`${app.url}/yaml/${i}`));
    expect(new Set(bodies.map((b) => b.clsId)).size).toBe(REQUESTS);
    await waitFor(async () => (await state()).handlerSpans.yaml === REQUESTS);
  });

  it('leaves the global ThrottlerGuard working', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${app.url}/limited`)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('keeps the hidden request parameter out of the Swagger document', async () => {
    const doc = (await (await fetch(`${app.url}/test/doc`)).json()) as {
      paths: Record<
        string,
        Record<string, { parameters?: Array<{ name: string; in: string }>; requestBody?: unknown }>
      >;
    };
    const op = doc.paths['/work/{id}'].post;
    expect(op.parameters?.map((p) => `${p.in}:${p.name}`)).toEqual(['path:id']);
    expect(op.requestBody).toBeDefined();
    expect(JSON.stringify(doc)).not.toMatch(/IncomingMessage|"req"/);
  });

  it('reports every watched route protected and no request past admission', async () => {
    const health = (await (await fetch(`${app.url}/balancer/health`)).json()) as {
      details: { balancer: { unprotected: string[]; unadmitted: Record<string, number> } };
    };
    expect(health.details.balancer.unprotected).toEqual([]);
    expect(health.details.balancer.unadmitted).toEqual({});
  });
});
