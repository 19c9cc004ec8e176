import { Controller, Module, Post, type Type } from '@nestjs/common';
import { Balanced, BalancerModule } from '../../src';
import { CapturingLogger, startApp, type PlatformName } from '../harness/platforms';

@Controller()
class UploadController {
  @Post('upload')
  @Balanced({ capacity: 1 })
  upload(): string {
    return 'ok';
  }

  @Post('plain')
  plain(): string {
    return 'plain';
  }
}

function appModule(bodyParser: boolean): Type {
  @Module({
    imports: [
      BalancerModule.forRoot({
        healthEndpoint: false,
        ui: { enable: false },
        bodyParser,
        endpoints: { '/plain': { capacity: 2 } },
      }),
    ],
    controllers: [UploadController],
  })
  class StartupLineModule {}
  return StartupLineModule;
}

/** One startup line per watched route says where admission sits relative to body parsing. */
describe('startup line per watched route', () => {
  async function linesOf(platform: PlatformName, setup?: 'no-app-parser'): Promise<string[]> {
    const logger = new CapturingLogger();
    const app = await startApp(platform, appModule(setup !== undefined), {
      logger,
      bodyParser: setup === undefined,
    });
    await app.close();
    return logger.messages().filter((m) => m.includes('admitted'));
  }

  it('Fastify: @Balanced() and endpoints-only routes are admitted before their bodies are read', async () => {
    expect(await linesOf('fastify')).toEqual([
      'POST /upload: admitted before its body is read',
      'POST /plain: admitted before its body is read',
    ]);
  });

  it("Express with Nest's own body parser: admitted before, the parsers run after admission", async () => {
    expect(await linesOf('express')).toEqual([
      'POST /upload: admitted before its body is read',
      'POST /plain: admitted before its body is read',
    ]);
  });

  it('Express with { bodyParser: false } and the bodyParser option: admitted before', async () => {
    expect(await linesOf('express', 'no-app-parser')).toEqual([
      'POST /upload: admitted before its body is read',
      'POST /plain: admitted before its body is read',
    ]);
  });
});
