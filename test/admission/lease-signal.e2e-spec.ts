import { Controller, Get, Module, Post } from '@nestjs/common';
import {
  Balanced,
  BalancerModule,
  BalancerService,
  CapacityStore,
  LeaseLostError,
  LeaseSignal,
} from '../../src';
import { PLATFORMS } from '../harness/platforms';
import { startHealthApp, waitFor, within, type HealthApp } from '../health/health-fixtures';

/** What the handlers saw of their signal. */
const seen: { signal?: AbortSignal; reason?: unknown; free?: AbortSignal; run?: AbortSignal } = {};

@Controller()
class AppController {
  constructor(private readonly balancer: BalancerService) {}

  /** Runs until its slot's signal fires (as a model call given the signal would). */
  @Post('work')
  @Balanced({ capacity: 1 })
  async work(@LeaseSignal() signal: AbortSignal): Promise<{ ok: true }> {
    seen.signal = signal;
    await new Promise<void>((resolve) =>
      signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    seen.reason = signal.reason;
    return { ok: true };
  }

  /** Not watched: a signal that never fires. */
  @Get('free')
  free(@LeaseSignal() signal: AbortSignal): { aborted: boolean } {
    seen.free = signal;
    return { aborted: signal.aborted };
  }

  /** Non-HTTP work on the same pool: `fn` receives the slot's signal. */
  @Get('run')
  run(): Promise<{ aborted: boolean }> {
    return this.balancer.run('/work', (signal) => {
      seen.run = signal;
      return { aborted: signal.aborted };
    });
  }
}

@Module({
  imports: [
    BalancerModule.forRoot({ probeOnStartup: false, healthEndpoint: false, drainTimeout: 0.3 }),
  ],
  controllers: [AppController],
})
class LeaseSignalAppModule {}

describe.each(PLATFORMS)('the slot signal: @LeaseSignal() and run() (%s)', (platform) => {
  let h: HealthApp | undefined;

  beforeEach(() => {
    for (const key of Object.keys(seen)) delete seen[key as keyof typeof seen];
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('a request still running after drainTimeout sees its signal fire with reason "shutdown"', async () => {
    h = await startHealthApp(platform, LeaseSignalAppModule, { forceCloseConnections: true });
    const { url } = h;
    const store = h.app.get<CapacityStore>(CapacityStore);

    const free = await (await fetch(`${url}/free`)).json();
    expect(free).toEqual({ aborted: false });
    expect(seen.free).toBeInstanceOf(AbortSignal);
    const run = await (await fetch(`${url}/run`)).json();
    expect(run).toEqual({ aborted: false });
    expect(seen.run?.aborted).toBe(false);

    const stuck = fetch(`${url}/work`, { method: 'POST' }).catch(() => 'connection closed');
    await waitFor(() => seen.signal !== undefined, 10_000, 'request in the handler');
    expect(seen.signal?.aborted).toBe(false);
    await within(h.close(), 10_000, 'app.close() past the drain timeout');
    h = undefined;
    await waitFor(() => seen.reason !== undefined, 10_000, 'the handler saw its signal fire');
    expect(seen.reason).toBeInstanceOf(LeaseLostError);
    expect((seen.reason as LeaseLostError).reason).toBe('shutdown');
    expect((seen.reason as LeaseLostError).pool).toBe('/work');
    expect(store.localActive()).toBe(0);
    // A signal of a slot that was given back normally never fires.
    expect(seen.run?.aborted).toBe(false);
    expect(seen.free?.aborted).toBe(false);
    await stuck;
  });
});
