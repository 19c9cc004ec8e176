import {
  Controller,
  Get,
  Module,
  RequestMethod,
  Version,
  VersioningType,
  type Type,
} from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import { Balanced, BalancerModule } from '../../src';
import { PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { waitFor } from '../harness/wait-for';

/**
 * Route shapes whose handler is not simply "one method, one path": each must admit against
 * the pool that stats show, and stats must count each request exactly once, where it was
 * admitted. Every pool has capacity 1; three requests at once must run one at a time.
 */
class Bucket {
  inFlight = 0;
  peak = 0;
  private open = false;
  private parked: Array<() => void> = [];
  async run(value: string): Promise<string> {
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      if (!this.open) await new Promise<void>((r) => this.parked.push(r));
      return value;
    } finally {
      this.inFlight--;
    }
  }
  release(): void {
    this.open = true;
    for (const r of this.parked.splice(0)) r();
  }
}

const buckets = new Map<string, Bucket>();
const bucket = (key: string): Bucket => {
  let b = buckets.get(key);
  if (!b) buckets.set(key, (b = new Bucket()));
  return b;
};

@Controller()
class MultiPathController {
  @Get(['one', 'two'])
  @Balanced({ capacity: 1 })
  multi(): Promise<string> {
    return bucket('multi').run('multi');
  }

  /** Watched only through `endpoints`, on both of its paths. */
  @Get(['y1', 'y2'])
  yamlMulti(): Promise<string> {
    return bucket('yaml-multi').run('yaml');
  }
}

@Controller({ path: 'ver', version: ['1', '2'] })
class UriVersionedController {
  @Get()
  @Balanced({ capacity: 1 })
  ver(): Promise<string> {
    return bucket('ver').run('ver');
  }
}

class BaseRoutes {
  @Get('inh')
  @Balanced({ capacity: 1 })
  inherited(): Promise<string> {
    return bucket('inherited').run('inherited');
  }
}

@Controller('sub')
class SubController extends BaseRoutes {}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the TypeScript mixin signature
type Ctor = new (...args: any[]) => object;
function WithWork<B extends Ctor>(Base: B) {
  class Mixed extends Base {
    @Get('mix')
    @Balanced({ capacity: 1 })
    mix(): Promise<string> {
      return bucket('mixin').run('mixin');
    }
  }
  return Mixed;
}
class Empty {}

@Controller('mixed')
class MixinController extends WithWork(Empty) {}

/** Served without the global prefix (`setGlobalPrefix('api', { exclude })`). */
@Controller()
class ExcludedController {
  @Get('plain')
  @Balanced({ capacity: 1 })
  plain(): Promise<string> {
    return bucket('excluded').run('plain');
  }
}

@Controller('r')
class FeatureController {
  @Get()
  @Balanced({ capacity: 1 })
  feature(): Promise<string> {
    return bucket('router').run('feature');
  }
}

@Module({ controllers: [FeatureController] })
class FeatureModule {}

@Module({
  imports: [
    BalancerModule.forRoot({
      healthEndpoint: false,
      logger: false,
      endpoints: { '/api/y1': { capacity: 1 }, '/api/y2': { capacity: 1 } },
    }),
    FeatureModule,
    RouterModule.register([{ path: 'feat', module: FeatureModule }]),
  ],
  controllers: [
    MultiPathController,
    UriVersionedController,
    SubController,
    MixinController,
    ExcludedController,
  ],
})
class ShapesModule {}

@Controller('hv')
class HeaderVersionedController {
  @Get()
  @Version('1')
  @Balanced({ capacity: 1, pool: 'hv1' })
  one(): Promise<string> {
    return bucket('hv1').run('one');
  }

  @Get()
  @Version('2')
  @Balanced({ capacity: 1, pool: 'hv2' })
  two(): Promise<string> {
    return bucket('hv2').run('two');
  }
}

@Module({
  imports: [BalancerModule.forRoot({ healthEndpoint: false, logger: false })],
  controllers: [HeaderVersionedController],
})
class HeaderModule {}

interface PoolNumbers {
  admitted: number;
  active_requests: number;
  queued: number;
  available_slots: number;
  capacity: number;
  routes: string[];
}

async function allStats(url: string): Promise<Record<string, PoolNumbers>> {
  const res = await fetch(`${url}/balancer/stats`);
  return ((await res.json()) as { endpoints: Record<string, PoolNumbers> }).endpoints;
}

/**
 * Send three requests at once to `path`; exactly one runs (the pool's cap), the others queue in
 * `pool`; when let go, `pool` (and no other pool) has admitted exactly three more.
 */
async function exercise(
  base: string,
  statsBase: string,
  path: string,
  pool: string,
  key: string,
  headers: Record<string, string> = {},
): Promise<void> {
  buckets.delete(key);
  const before = await allStats(statsBase);
  const responses = [0, 1, 2].map(() => fetch(`${base}${path}`, { headers }));
  await waitFor(
    async () => {
      const s = (await allStats(statsBase))[pool];
      return s?.active_requests === 1 && s.queued === 2;
    },
    10_000,
    `${path}: 1 running and 2 queued in pool ${pool}`,
  );
  expect(bucket(key).peak).toBe(1);
  bucket(key).release();
  const results = await Promise.all(responses);
  expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
  expect(bucket(key).peak).toBe(1);
  await waitFor(async () => (await allStats(statsBase))[pool].active_requests === 0);
  const after = await allStats(statsBase);
  for (const [name, s] of Object.entries(after)) {
    expect({ name, admitted: s.admitted - (before[name]?.admitted ?? 0) }).toEqual({
      name,
      admitted: name === pool ? 3 : 0,
    });
  }
  expect(after[pool]).toMatchObject({ active_requests: 0, queued: 0, available_slots: 1 });
}

describe.each(PLATFORMS)('route shapes on %s', (platform) => {
  let app: RunningApp;
  let api: string;

  beforeAll(async () => {
    app = await startApp(platform, ShapesModule as Type, {
      setup: (a) => {
        a.setGlobalPrefix('api', { exclude: [{ path: 'plain', method: RequestMethod.GET }] });
        a.enableVersioning({ type: VersioningType.URI });
      },
    });
    api = `${app.url}/api`;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('shows exactly the pools of the served paths', async () => {
    const stats = await allStats(api);
    expect(Object.keys(stats).sort()).toEqual(
      [
        '/api/one',
        '/api/two',
        '/api/y1',
        '/api/y2',
        '/api/v1/ver',
        '/api/v2/ver',
        '/api/sub/inh',
        '/api/mixed/mix',
        '/plain',
        '/api/feat/r',
      ].sort(),
    );
  });

  it.each([
    ['/one', '/api/one', 'multi'],
    ['/two', '/api/two', 'multi'],
    ['/y1', '/api/y1', 'yaml-multi'],
    ['/y2', '/api/y2', 'yaml-multi'],
    ['/v1/ver', '/api/v1/ver', 'ver'],
    ['/v2/ver', '/api/v2/ver', 'ver'],
    ['/sub/inh', '/api/sub/inh', 'inherited'],
    ['/mixed/mix', '/api/mixed/mix', 'mixin'],
    ['/feat/r', '/api/feat/r', 'router'],
  ])('admits %s against pool %s only', async (path, pool, key) => {
    await exercise(api, api, path, pool, key);
  });

  it('admits a route excluded from the global prefix against its own pool', async () => {
    await exercise(app.url, api, '/plain', '/plain', 'excluded');
  });
});

describe.each(PLATFORMS)('header-versioned routes on %s', (platform) => {
  let app: RunningApp;

  beforeAll(async () => {
    app = await startApp(platform, HeaderModule as Type, {
      setup: (a) => a.enableVersioning({ type: VersioningType.HEADER, header: 'x-api-version' }),
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  it.each([
    ['1', 'hv1'],
    ['2', 'hv2'],
  ])('admits version %s against pool %s only', async (version, pool) => {
    await exercise(app.url, app.url, '/hv', pool, pool, { 'x-api-version': version });
  });
});
