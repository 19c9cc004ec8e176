import { Body, Controller, Get, HttpException, Module, Post } from '@nestjs/common';
import { Balanced, BalancerModule } from '../../src';
import { SimulatedModel } from '../simulated-model';

/** The demo's "model": 4 slots of 200 ms; slower above 4 in flight, failing from 12. */
export const model = new SimulatedModel({
  capacity: Number(process.env.DEMO_K ?? 4),
  serviceTimeMs: Number(process.env.DEMO_S ?? 200),
  shape: 'knee',
});

@Controller()
export class DemoController {
  /** Probed at startup, then protected with the measured capacity. */
  @Post('predict')
  @Balanced({ probe: { body: { input: 'probe sample' } } })
  async predict(@Body() body: { input?: string }): Promise<{ output: string; ms: number }> {
    const result = await model.run();
    if (result.status !== 200) throw new HttpException('model out of memory', result.status);
    return { output: `scored:${String(body?.input ?? '').length}`, ms: result.ms };
  }

  /** Not watched: answers at once whatever the load on /predict. */
  @Get('info')
  info(): { model: { capacity: number; serviceTimeMs: number }; inFlight: number } {
    return {
      model: { capacity: model.capacity, serviceTimeMs: model.serviceTimeMs },
      inFlight: model.current,
    };
  }

  @Get('health')
  health(): { status: string } {
    return { status: 'ok' };
  }
}

@Module({
  imports: [
    BalancerModule.forRoot({
      queueTimeout: 5,
      latencyThresholdMs: 600,
      ui: { path: '/balancer/ui' },
    }),
  ],
  controllers: [DemoController],
})
export class DemoModule {}
