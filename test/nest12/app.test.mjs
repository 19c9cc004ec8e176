// The Nest 12 leg's app and tests. run.mjs copies this file into a fresh project where the packed
// nestjs-balancer is installed beside Nest 12, and runs it with `node --test` (Jest cannot load
// ESM-only Nest). Plain JavaScript, so decorators are applied by hand with Reflect.decorate.
/* global fetch, URL */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'node:http';
import { Body, Controller, Get, Module, Post, Query } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Balanced, BalancerModule, BalancerService } from 'nestjs-balancer';

// Type-checked by `npm run typecheck` (test/tsconfig.js.json: checkJs, strict); types in
// JSDoc, since this file runs as plain JavaScript.

/** @typedef {{ promise: Promise<void>, open: () => void }} Latch */
/** @typedef {{ active_requests: number, queued: number, admitted: number, timed_out: number, capacity: number, capacity_source: string, routes: string[], queue_timeout: number }} PoolStats */

/**
 * A promise the test resolves by hand.
 * @returns {Latch}
 */
function latch() {
  /** @type {() => void} */
  let open = () => undefined;
  /** @type {Promise<void>} */
  const promise = new Promise((resolve) => (open = resolve));
  return { promise, open };
}

/** The work behind the routes: counts what runs at once and in which order it started. */
const model = {
  /** @type {Latch} */
  all: latch(),
  /** @type {Map<string, Latch>} */
  each: new Map(),
  inFlight: 0,
  peak: 0,
  /** @type {string[]} */
  started: [],
  reset() {
    this.all?.open(); // whatever a failed test left waiting finishes, so the app can close
    this.all = latch();
    this.each = new Map();
    this.inFlight = 0;
    this.peak = 0;
    this.started = [];
  },
  /** @param {string} id */
  async generate(id) {
    this.started.push(id);
    this.peak = Math.max(this.peak, ++this.inFlight);
    const own = latch();
    this.each.set(id, own);
    await Promise.race([this.all.promise, own.promise]);
    this.inFlight--;
    return { id };
  },
};
model.reset();

class WorkController {
  /** @param {string} id */
  work(id) {
    return model.generate(id);
  }
  /** @param {string} id */
  short(id) {
    return model.generate(id);
  }
}
/**
 * Apply method decorators to `cls.prototype[name]`, as TypeScript's `@` would.
 * @param {{ prototype: object }} cls
 * @param {string} name
 * @param {...MethodDecorator} decorators
 */
function method(cls, name, ...decorators) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, name);
  Object.defineProperty(
    cls.prototype,
    name,
    Reflect.decorate(decorators, cls.prototype, name, descriptor),
  );
}
Query('id')(WorkController.prototype, 'work', 0);
Query('id')(WorkController.prototype, 'short', 0);
method(WorkController, 'work', Get('work'), Balanced({ capacity: 2 }));
method(WorkController, 'short', Get('short'), Balanced({ capacity: 1, queueTimeout: 0.2 }));
const AppController = /** @type {import('@nestjs/common').Type} */ (
  Reflect.decorate([Controller()], WorkController)
);
const AppModule = /** @type {import('@nestjs/common').Type} */ (
  Reflect.decorate(
    [
      Module({
        imports: [BalancerModule.forRoot({ healthEndpoint: false, logger: false })],
        controllers: [AppController],
      }),
    ],
    class AppModule {},
  )
);

/** @type {import('@nestjs/common').INestApplication} */
let app;
/** @type {string} */
let url;
/** @type {(path: string, id: string | number) => Promise<Response>} */
const get = (path, id) => fetch(`${url}/${path}?id=${id}`);
/** @type {(pool: string) => Promise<PoolStats>} */
const stats = async (pool) => {
  const body = /** @type {{ endpoints: Record<string, PoolStats> }} */ (
    await (await fetch(`${url}/balancer/stats`)).json()
  );
  return body.endpoints[pool];
};
/**
 * @param {() => boolean | Promise<boolean>} condition
 * @param {string} what
 */
async function until(condition, what) {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10); // polling: the queue has no event to await from outside
  }
}
/** @type {(pool: string, n: number) => Promise<void>} */
const arrived = (pool, n) =>
  until(async () => {
    const s = await stats(pool);
    return s.active_requests + s.queued === n;
  }, `${n} requests in ${pool}`);

it('runs on Nest 12, one copy shared with the CommonJS build', () => {
  const here = createRequire(import.meta.url);
  assert.match(here('@nestjs/core/package.json').version, /^12\./);
  const fromPackage = createRequire(here.resolve('nestjs-balancer'));
  assert.equal(fromPackage.resolve('@nestjs/core'), here.resolve('@nestjs/core'));
});

const ADAPTERS = { express: () => new ExpressAdapter(), fastify: () => new FastifyAdapter() };

for (const [platform, adapter] of Object.entries(ADAPTERS)) {
  describe(`nestjs-balancer on Nest 12 (${platform})`, { timeout: 60_000 }, () => {
    before(async () => {
      app = await NestFactory.create(AppModule, adapter(), { logger: false });
      await app.listen(0, '127.0.0.1');
      url = `http://127.0.0.1:${app.getHttpServer().address().port}`;
    });
    after(async () => {
      model.all.open();
      await app?.close();
    });
    beforeEach(() => model.reset());
    afterEach(async () => {
      model.all.open();
      await arrived('/work', 0);
      await arrived('/short', 0);
    });

    it('holds the cap: 8 requests at once, never more than 2 inside', async () => {
      const before = await stats('/work');
      const pending = Array.from({ length: 8 }, (_, i) => get('work', i));
      await arrived('/work', 8);
      const held = await stats('/work');
      assert.equal(held.active_requests, 2);
      assert.equal(held.queued, 6);
      model.all.open();
      const statuses = (await Promise.all(pending)).map((r) => r.status);
      assert.deepEqual(statuses, Array(8).fill(200));
      assert.equal(model.peak, 2);
      const done = await stats('/work');
      assert.equal(done.admitted - before.admitted, 8);
      assert.equal(done.active_requests, 0);
    });

    it('serves the queue in arrival order', async () => {
      /** @type {Promise<Response>[]} */
      const pending = [];
      for (let i = 0; i < 6; i++) {
        pending.push(get('work', i));
        await arrived('/work', i + 1);
      }
      // Finish one at a time: each release admits exactly the head of the queue.
      for (let done = 0; done < 4; done++) {
        model.each.get(model.started[done])?.open();
        await until(() => model.started.length === done + 3, `request ${done + 3} to start`);
      }
      assert.deepEqual(model.started.slice(2), ['2', '3', '4', '5']);
      model.all.open();
      await Promise.all(pending);
    });

    it('answers 504 with Retry-After once the queue wait passes queueTimeout', async () => {
      const before = await stats('/short');
      const holder = get('short', 'holder');
      await arrived('/short', 1);
      const late = await get('short', 'late');
      assert.equal(late.status, 504);
      assert.equal(late.headers.get('retry-after'), '1');
      assert.equal(/** @type {{ reason: string }} */ (await late.json()).reason, 'queue_timeout');
      assert.deepEqual(model.started, ['holder']);
      model.all.open();
      assert.equal((await holder).status, 200);
      assert.equal((await stats('/short')).timed_out - before.timed_out, 1);
    });

    it('reports the pools in /balancer/stats', async () => {
      const s = await stats('/work');
      assert.equal(s.capacity, 2);
      assert.equal(s.capacity_source, 'manual');
      assert.deepEqual(s.routes, ['GET /work']);
      assert.equal(s.queue_timeout, 30);
    });

    it('lets BalancerService.run share the cap with the route', async () => {
      const balancer = app.get(BalancerService);
      const http = [get('work', 'a'), get('work', 'b')];
      await arrived('/work', 2);
      const run = balancer.run('/work', () => model.generate('run'));
      await arrived('/work', 3);
      assert.deepEqual(model.started, ['a', 'b']);
      model.all.open();
      assert.deepEqual(await run, { id: 'run' });
      await Promise.all(http);
      assert.equal(model.peak, 2);
    });
  });
}

/**
 * Express admits before the body is read with the parsers apps write in main.ts (the balancer's
 * step is mounted through HttpAdapterHost.init$, before them): an upload whose body has not been
 * sent yet already waits in the queue; once sent, it is parsed and served.
 */
class UploadController {
  /** @param {{ id: string }} body */
  upload(body) {
    return model.generate(body.id);
  }
}
Body()(UploadController.prototype, 'upload', 0);
method(UploadController, 'upload', Post('upload'), Balanced({ capacity: 1 }));
const UploadModule = /** @type {import('@nestjs/common').Type} */ (
  Reflect.decorate(
    [
      Module({
        imports: [BalancerModule.forRoot({ healthEndpoint: false, logger: false })],
        controllers: [
          /** @type {import('@nestjs/common').Type} */ (
            Reflect.decorate([Controller()], UploadController)
          ),
        ],
      }),
    ],
    class UploadModule {},
  )
);

/** @type {Record<string, (a: import('@nestjs/platform-express').NestExpressApplication) => void>} */
const PARSERS = {
  'app.useBodyParser': (a) => a.useBodyParser('json', { limit: '10mb' }),
  'app.use(express.json())': (a) =>
    a.use(createRequire(import.meta.url)('express').json({ limit: '10mb' })),
};

for (const [parser, setup] of Object.entries(PARSERS)) {
  describe(`Express on Nest 12 with ${parser}`, { timeout: 60_000 }, () => {
    before(async () => {
      app = await NestFactory.create(UploadModule, new ExpressAdapter(), { logger: false });
      setup(/** @type {import('@nestjs/platform-express').NestExpressApplication} */ (app));
      await app.listen(0, '127.0.0.1');
      url = `http://127.0.0.1:${app.getHttpServer().address().port}`;
    });
    after(async () => {
      model.all.open();
      await app?.close();
    });
    beforeEach(() => model.reset());

    it('queues an upload before its body is sent, then parses and serves it', async () => {
      const holder = fetch(`${url}/upload`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'holder' }),
      });
      await arrived('/upload', 1);
      const body = JSON.stringify({ id: 'late' });
      const { port } = new URL(url);
      /** @type {import('node:http').ClientRequest | undefined} */
      let answer;
      const answered = new Promise((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/upload',
            headers: { 'content-type': 'application/json', 'content-length': body.length },
          },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode, text }));
          },
        );
        req.on('error', reject);
        req.flushHeaders();
        answer = req;
      });
      // Queued with its body still in the client: admission came before any parser.
      await until(
        async () => (await stats('/upload')).queued === 1,
        'the bodiless upload to queue',
      );
      assert.ok(answer, 'the upload request was sent');
      answer.end(body);
      model.all.open();
      assert.equal((await holder).status, 201);
      const late = await answered;
      assert.equal(late.status, 201);
      assert.deepEqual(JSON.parse(late.text), { id: 'late' });
    });
  });
}
