import { Controller, Get, Module, Post, type Type } from '@nestjs/common';
import { Balanced, BalancerModule, type BalancerModuleOptions } from '../../src';

/** Milliseconds each `/slow` request holds its slot. */
export const SLOW_MS = 150;

@Controller()
export class DashboardTestController {
  @Post('slow')
  @Balanced({ capacity: 2, queueTimeout: 0.4, maxQueue: 3 })
  async slow(): Promise<{ ok: boolean }> {
    await new Promise((r) => setTimeout(r, SLOW_MS));
    return { ok: true };
  }

  @Get('other')
  other(): { other: boolean } {
    return { other: true };
  }
}

/** An app with the balancer configured by `options` (probing off, no health gate). */
export function appWith(options: Exclude<BalancerModuleOptions, string>): Type {
  @Module({
    imports: [BalancerModule.forRoot({ healthEndpoint: false, probeOnStartup: false, ...options })],
    controllers: [DashboardTestController],
  })
  class DashboardTestModule {}
  return DashboardTestModule;
}

/** The same, through `forRootAsync` (options known only at runtime). */
export function asyncAppWith(options: Exclude<BalancerModuleOptions, string>): Type {
  @Module({
    imports: [
      BalancerModule.forRootAsync({
        useFactory: async () => ({ healthEndpoint: false, probeOnStartup: false, ...options }),
      }),
    ],
    controllers: [DashboardTestController],
  })
  class DashboardAsyncTestModule {}
  return DashboardAsyncTestModule;
}

export function basic(user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`, 'utf8').toString('base64');
}

/** The JSON config the server injected into the dashboard's index.html. */
export function injectedConfig(html: string): { statsUrl: string; historyUrl: string } {
  const m = /<script id="balancer-config" type="application\/json">([^<]*)<\/script>/.exec(html);
  if (!m) throw new Error('no balancer-config in index.html');
  return JSON.parse(m[1]);
}

/** `./assets/index-abc.js` and `.css` referenced by index.html. */
export function assetUrls(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]);
}
