import { Controller, Get, Module, Post } from '@nestjs/common';
import { Balanced, BalancerModule } from '../../src';
import { PLATFORMS, startApp } from '../harness/platforms';

@Controller()
class C {
  @Post('predict')
  @Balanced({ capacity: 2 })
  async predict() {
    await new Promise((r) => setTimeout(r, 50));
    return { ok: true };
  }
  @Get('health') health() { return 'ok'; }
}
@Module({ imports: [BalancerModule.forRoot({ healthEndpoint: false })], controllers: [C] })
class M {}

describe.each(PLATFORMS)('smoke %s', (platform) => {
  it('works', async () => {
    const app = await startApp(platform, M);
    const rs = await Promise.all(Array.from({ length: 6 }, () => fetch(app.url + '/predict', { method: 'POST' })));
    expect(rs.map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 201]);
    const stats = await (await fetch(app.url + '/balancer/stats')).json();
    console.log(JSON.stringify(stats));
    await app.close();
  });
});
