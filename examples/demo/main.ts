import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { DemoModule } from './app.module';

/**
 * `npm start`: the demo app. POST /predict is a simulated model (4 slots, 200 ms) that the
 * balancer probes at startup and then protects; the dashboard is at /balancer/ui.
 * `npm run demo:load` (in another terminal) drives it into overload.
 */
async function main(): Promise<void> {
  const app = await NestFactory.create(DemoModule);
  app.enableShutdownHooks();
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  console.log(`\nnestjs-balancer demo on ${base}`);
  console.log(`  dashboard:  ${base}/balancer/ui`);
  console.log(`  stats:      ${base}/balancer/stats`);
  console.log(
    `  try:        curl -X POST ${base}/predict -H 'content-type: application/json' -d '{"input":"hi"}'`,
  );
  console.log(`  overload:   npm run demo:load   (in another terminal)\n`);
}

void main();
