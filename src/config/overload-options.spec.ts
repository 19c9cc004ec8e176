import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { BalancerConfigError } from './balancer-config.error';
import type { BalancerOptions } from './balancer-options';
import { hasOverloadPolicy, mergeOverloadSettings } from './overload-options';
import { resolveBalancerOptions } from './resolve-options';

const dir = mkdtempSync(join(tmpdir(), 'balancer-overload-'));
function yamlFile(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

function problemsOf(input: BalancerOptions | string): string[] {
  try {
    resolveBalancerOptions(input);
  } catch (err) {
    expect(err).toBeInstanceOf(BalancerConfigError);
    return (err as BalancerConfigError).problems;
  }
  throw new Error('expected a BalancerConfigError');
}

const byKey = (req: IncomingMessage): string | undefined => req.headers['x-api-key'] as string;
const byPlan = (req: IncomingMessage): number => (req.headers['x-plan'] === 'pro' ? 1 : 0);

describe('overload options (queueTargetMs, tenants, priorities)', () => {
  it('are all off by default: no global target, nothing on an endpoint', () => {
    const o = resolveBalancerOptions({ endpoints: { '/predict': { capacity: 2 } } });
    expect(o.queueTargetMs).toBeUndefined();
    expect(hasOverloadPolicy(o.endpoints['/predict'])).toBe(false);
  });

  it('keeps every per-endpoint option, functions included, and the global target', () => {
    const o = resolveBalancerOptions({
      queueTargetMs: 50,
      endpoints: {
        '/a': { tenant: byKey, maxQueuePerTenant: 5, priority: byPlan, priorityAging: 20 },
        '/b': { tenantHeader: 'X-Api-Key', priorityHeader: 'x-priority', queueTargetMs: 0 },
      },
    });
    expect(o.queueTargetMs).toBe(50);
    expect(o.endpoints['/a']).toMatchObject({ maxQueuePerTenant: 5, priorityAging: 20 });
    expect(o.endpoints['/a'].tenant).toBe(byKey);
    expect(o.endpoints['/a'].priority).toBe(byPlan);
    expect(o.endpoints['/b']).toMatchObject({
      tenantHeader: 'X-Api-Key',
      priorityHeader: 'x-priority',
      queueTargetMs: 0,
    });
  });

  it('names the field of every bad value', () => {
    const problems = problemsOf({
      queueTargetMs: -1,
      endpoints: {
        '/p': {
          queueTargetMs: 'fast' as unknown as number,
          maxQueuePerTenant: 0,
          priorityAging: 2.5,
          tenant: 'x-api-key' as unknown as () => string,
          priority: 3 as unknown as () => number,
        },
        '/q': { tenantHeader: 'x api key', priorityHeader: 7 as unknown as string },
      },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'queueTargetMs must be a number of milliseconds (0 = off)',
        'endpoints./p.queueTargetMs must be a number of milliseconds (0 = off)',
        'endpoints./p.maxQueuePerTenant must be a positive integer',
        'endpoints./p.priorityAging must be a positive integer',
        'endpoints./q.tenantHeader must be an HTTP header name such as x-api-key',
        'endpoints./q.priorityHeader must be a string',
        'endpoints./p.tenant must be a function (req) => string | undefined (TypeScript only; in YAML use tenant_header)',
        'endpoints./p.priority must be a function (req) => number (TypeScript only; in YAML use priority_header)',
      ]),
    );
    expect(problems).toHaveLength(8);
  });

  it('refuses a function and a header for the same thing, naming both fields', () => {
    const problems = problemsOf({
      endpoints: {
        '/p': { tenant: byKey, tenantHeader: 'x-api-key', priority: byPlan, priorityHeader: 'x-p' },
      },
    });
    expect(problems).toEqual([
      'endpoints./p: tenant and tenantHeader are both set; use one of them',
      'endpoints./p: priority and priorityHeader are both set; use one of them',
    ]);
  });

  it('reads the YAML keys queue_target_ms, tenant_header, max_queue_per_tenant, priority_header, priority_aging', () => {
    const path = yamlFile('overload.yml', [
      'queue_target_ms: 40',
      'endpoints:',
      '  /predict:',
      '    queue_target_ms: 100',
      '    tenant_header: x-api-key',
      '    max_queue_per_tenant: 10',
      '    priority_header: x-priority',
      '    priority_aging: 50',
    ]);
    const o = resolveBalancerOptions(path);
    expect(o.queueTargetMs).toBe(40);
    expect(o.endpoints['/predict']).toMatchObject({
      queueTargetMs: 100,
      tenantHeader: 'x-api-key',
      maxQueuePerTenant: 10,
      priorityHeader: 'x-priority',
      priorityAging: 50,
    });
  });

  it('names the YAML spelling and line of a bad value, and refuses a function key in YAML', () => {
    const path = yamlFile('bad-overload.yml', [
      'queue_target_ms: soon',
      'endpoints:',
      '  /predict:',
      '    max_queue_per_tenant: -3',
      '    tenant: x-api-key',
      '    priority_aging: 0',
    ]);
    expect(problemsOf(path).sort()).toEqual(
      [
        'endpoints./predict.max_queue_per_tenant (line 4) must be a positive integer',
        'endpoints./predict.tenant (line 5) must be a function (req) => string | undefined (TypeScript only; in YAML use tenant_header)',
        'endpoints./predict.priority_aging (line 6) must be a positive integer',
        'queue_target_ms (line 1) must be a number of milliseconds (0 = off)',
      ].sort(),
    );
  });
});

describe('mergeOverloadSettings', () => {
  it('takes each key from the first layer that sets it, then the global target', () => {
    expect(
      mergeOverloadSettings(
        [{ maxQueuePerTenant: 3 }, { maxQueuePerTenant: 9, priorityAging: 7 }, undefined],
        250,
      ),
    ).toEqual({ maxQueuePerTenant: 3, priorityAging: 7, queueTargetMs: 250 });
    expect(mergeOverloadSettings([{ queueTargetMs: 0 }], 250)).toEqual({ queueTargetMs: 0 });
  });

  it('takes a tenant or priority source whole from the first layer that sets either half', () => {
    const merged = mergeOverloadSettings([
      { tenantHeader: 'x-tenant' },
      { tenant: byKey, priority: byPlan },
      { priorityHeader: 'x-priority' },
    ]);
    expect(merged).toEqual({ tenantHeader: 'x-tenant', priority: byPlan });
  });

  it('counts a policy as on when any option is set (a target of 0 is off)', () => {
    expect(hasOverloadPolicy({})).toBe(false);
    expect(hasOverloadPolicy({ queueTargetMs: 0 })).toBe(false);
    // Aging alone: BalancerService.run() callers may still pass priorities.
    expect(hasOverloadPolicy({ priorityAging: 5 })).toBe(true);
    expect(hasOverloadPolicy({ queueTargetMs: 1 })).toBe(true);
    expect(hasOverloadPolicy({ tenantHeader: 'x' })).toBe(true);
    expect(hasOverloadPolicy({ priority: byPlan })).toBe(true);
    expect(hasOverloadPolicy({ maxQueuePerTenant: 2 })).toBe(true);
  });
});
