import { Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { DEFAULT_PRIORITY_AGING, MAX_PRIORITY, MAX_TENANT_LENGTH } from '../storage/queue-order';
import { OverloadPolicy } from './overload-policy';

function req(headers: Record<string, string | string[]>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

describe('OverloadPolicy', () => {
  afterEach(() => jest.restoreAllMocks());

  it('is absent when no policy is on (the fast path then reads nothing)', () => {
    expect(OverloadPolicy.from('/p', {}, false)).toBeUndefined();
    expect(OverloadPolicy.from('/p', { queueTargetMs: 0 }, false)).toBeUndefined();
  });

  it('fills the defaults: aging 1000, no per-tenant bound, no target', () => {
    const policy = OverloadPolicy.from('/p', { priorityHeader: 'x-priority' }, false)!;
    expect(policy.hasTenant).toBe(false);
    expect(policy.acquireOptions(undefined, 3)).toEqual({
      tenant: undefined,
      priority: 3,
      priorityAging: DEFAULT_PRIORITY_AGING,
      maxQueuePerTenant: undefined,
      queueTargetMs: undefined,
    });
    const full = OverloadPolicy.from(
      '/p',
      { tenantHeader: 'x-api-key', maxQueuePerTenant: 4, priorityAging: 10, queueTargetMs: 80 },
      false,
    )!;
    expect(full.hasTenant).toBe(true);
    expect(full.acquireOptions('acme', 0)).toEqual({
      tenant: 'acme',
      priority: 0,
      priorityAging: 10,
      maxQueuePerTenant: 4,
      queueTargetMs: 80,
    });
  });

  it('reads tenant and priority headers in any case, the first of repeated values', () => {
    const policy = OverloadPolicy.from(
      '/p',
      { tenantHeader: 'X-Api-Key', priorityHeader: 'X-Priority' },
      false,
    )!;
    expect(policy.tenantOf(req({ 'x-api-key': 'acme' }))).toBe('acme');
    expect(policy.tenantOf(req({ 'x-api-key': ['first', 'second'] }))).toBe('first');
    expect(policy.tenantOf(req({}))).toBeUndefined();
    expect(policy.tenantOf(req({ 'x-api-key': '' }))).toBeUndefined();
    expect(policy.priorityOf(req({ 'x-priority': '7' }))).toBe(7);
    expect(policy.priorityOf(req({ 'x-priority': 'high' }))).toBe(0);
    expect(policy.priorityOf(req({ 'x-priority': '99999' }))).toBe(MAX_PRIORITY);
    expect(policy.priorityOf(req({}))).toBe(0);
  });

  it('bounds untrusted tenant keys: cut to 64 characters, control characters replaced', () => {
    const policy = OverloadPolicy.from(
      '/p',
      { tenant: () => 'a\u0000b\nc' + 'x'.repeat(100) },
      false,
    )!;
    const tenant = policy.tenantOf(req({}))!;
    expect(tenant).toHaveLength(MAX_TENANT_LENGTH);
    expect(tenant.startsWith('a?b?c')).toBe(true);
  });

  it('calls the user functions with the request', () => {
    const seen: IncomingMessage[] = [];
    const policy = OverloadPolicy.from(
      '/p',
      {
        tenant: (r) => (seen.push(r), String(r.headers['x-user'])),
        priority: (r) => (seen.push(r), r.headers['x-batch'] ? -1 : 1),
      },
      false,
    )!;
    const r = req({ 'x-user': 'u1', 'x-batch': '1' });
    expect(policy.tenantOf(r)).toBe('u1');
    expect(policy.priorityOf(r)).toBe(-1);
    expect(seen).toEqual([r, r]);
  });

  it('treats a throwing function as the default tenant / priority 0, logged once per pool', () => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const policy = OverloadPolicy.from(
      '/p',
      {
        tenant: () => {
          throw new Error('no key');
        },
        priority: () => {
          throw new Error('no plan');
        },
      },
      true,
    )!;
    for (let i = 0; i < 3; i++) {
      expect(policy.tenantOf(req({}))).toBeUndefined();
      expect(policy.priorityOf(req({}))).toBe(0);
    }
    const lines = errors.mock.calls.map((c) => String(c[0]));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('pool "/p": the tenant function threw (no key)');
    expect(lines[1]).toContain('pool "/p": the priority function threw (no plan)');
    // Another pool logs its own once.
    const other = OverloadPolicy.from(
      '/q',
      {
        tenant: () => {
          throw new Error('again');
        },
      },
      true,
    )!;
    other.tenantOf(req({}));
    expect(errors).toHaveBeenCalledTimes(3);
  });

  it('warns when maxQueuePerTenant has no tenant source to bound', () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    OverloadPolicy.from('/p', { maxQueuePerTenant: 3 }, true);
    expect(warn).toHaveBeenCalledWith(
      expect.stringContaining('pool "/p": maxQueuePerTenant without tenant or tenantHeader'),
    );
  });
});
