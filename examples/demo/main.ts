import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { DemoModule } from './app.module';

/**
 * `npm start`: the demo app. POST /predict is a simulated model (4 slots, 200 ms) that the
 * balancer probes at startup and then protects; the dashboard is at /balancer/ui.
 * `npm run demo:load` (in another terminal) drives it into overload.
 */
async function main(): Promise<number> {
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT must be a port number (0-65535), got "${process.env.PORT}"`);
    return 1;
  }
  const app = await NestFactory.create(DemoModule);
  app.enableShutdownHooks();
  try {
    await app.listen(port, '127.0.0.1');
  } catch (err) {
    await app.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      const why = code === 'EADDRINUSE' ? 'is already in use' : 'needs privileges';
      console.error(
        `\nnestjs-balancer demo: port ${port} on 127.0.0.1 ${why} (${code}).\n` +
          `Start it on another port:  PORT=${port === 3000 ? 3001 : 3000} npm start\n`,
      );
      return 1;
    }
    throw err;
  }
  const base = `http://127.0.0.1:${port}`;
  console.log(`\nnestjs-balancer demo on ${base}`);
  console.log(`  dashboard:  ${base}/balancer/ui`);
  console.log(`  stats:      ${base}/balancer/stats`);
  console.log(
    `  try:        curl -X POST ${base}/predict -H 'content-type: application/json' -d '{"input":"hi"}'`,
  );
  console.log(`  overload:   npm run demo:load   (in another terminal)\n`);
  return 0;
}

void main().then((code) => {
  if (code !== 0) process.exitCode = code;
});
