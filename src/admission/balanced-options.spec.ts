import type { IncomingMessage } from 'node:http';
import { validateBalancedOptions } from './balanced-options.validation';
import { mergeBalancedOptions } from './balanced.decorator';

const byKey = (req: IncomingMessage): string | undefined => req.headers['x-api-key'] as string;
const byPlan = (req: IncomingMessage): number => (req.headers['x-plan'] === 'pro' ? 1 : 0);
const WHERE = '@Balanced() on Api.predict (POST /predict)';

describe('@Balanced() overload options', () => {
  it('accepts every overload option', () => {
    expect(
      validateBalancedOptions(
        {
          queueTargetMs: 50,
          tenant: byKey,
          maxQueuePerTenant: 3,
          priority: byPlan,
          priorityAging: 10,
        },
        WHERE,
      ),
    ).toEqual([]);
    expect(
      validateBalancedOptions({ tenantHeader: 'x-api-key', priorityHeader: 'x-priority' }, WHERE),
    ).toEqual([]);
  });

  it('names the route and the field of a bad value', () => {
    expect(
      validateBalancedOptions(
        { maxQueuePerTenant: 0, tenant: 'x-api-key', queueTargetMs: -5 },
        WHERE,
      ).sort(),
    ).toEqual(
      [
        `${WHERE}: maxQueuePerTenant must be a positive integer`,
        `${WHERE}: queueTargetMs must be a number of milliseconds (0 = off)`,
        `${WHERE}: tenant must be a function (req) => string | undefined (TypeScript only; in YAML use tenant_header)`,
      ].sort(),
    );
  });

  it('refuses a function and a header for the same thing', () => {
    expect(validateBalancedOptions({ priority: byPlan, priorityHeader: 'x-p' }, WHERE)).toEqual([
      `${WHERE}: priority and priorityHeader are both set; use one of them`,
    ]);
  });
});

describe('@Balanced() cost options', () => {
  it('accepts a cost function or header and maxQueueCost', () => {
    expect(validateBalancedOptions({ cost: () => 3, maxQueueCost: 100 }, WHERE)).toEqual([]);
    expect(validateBalancedOptions({ costHeader: 'x-tokens' }, WHERE)).toEqual([]);
  });

  it('names the field of a bad value, and refuses a function and a header together', () => {
    expect(
      validateBalancedOptions({ cost: 5, costHeader: 'x tokens', maxQueueCost: 0 }, WHERE).sort(),
    ).toEqual(
      [
        `${WHERE}: cost must be a function (req) => number of units (TypeScript only; in YAML use cost_header)`,
        `${WHERE}: costHeader must be an HTTP header name such as x-tokens`,
        `${WHERE}: maxQueueCost must be a positive integer (units)`,
        `${WHERE}: cost and costHeader are both set; use one of them`,
      ].sort(),
    );
  });
});

describe('mergeBalancedOptions', () => {
  it('is undefined without either decorator', () => {
    expect(mergeBalancedOptions(undefined, undefined)).toBeUndefined();
  });

  it('lets the method win key by key and merges the probe settings', () => {
    expect(
      mergeBalancedOptions(
        { capacity: 2, queueTargetMs: 100, probe: { method: 'POST', body: { a: 1 } } },
        { capacity: 4, probe: { path: '/x/1' } },
      ),
    ).toEqual({
      capacity: 4,
      queueTargetMs: 100,
      probe: { method: 'POST', body: { a: 1 }, path: '/x/1' },
    });
  });

  it("replaces the controller's tenant or priority source whole with the method's", () => {
    const merged = mergeBalancedOptions(
      { tenant: byKey, priorityHeader: 'x-priority' },
      { tenantHeader: 'x-tenant' },
    );
    expect(merged).toEqual({ tenantHeader: 'x-tenant', priorityHeader: 'x-priority', probe: {} });
    expect(validateBalancedOptions(merged, WHERE)).toEqual([]);
  });

  it("replaces the controller's deadline source whole with the method's", () => {
    const budget = (): number => 2000;
    const merged = mergeBalancedOptions({ deadline: budget }, { deadlineHeader: 'grpc-timeout' });
    expect(merged).toEqual({ deadlineHeader: 'grpc-timeout', probe: {} });
    expect(validateBalancedOptions(merged, WHERE)).toEqual([]);
    expect(mergeBalancedOptions({ deadlineHeader: 'x-timeout' }, { capacity: 1 })).toEqual({
      deadlineHeader: 'x-timeout',
      capacity: 1,
      probe: {},
    });
  });
});
