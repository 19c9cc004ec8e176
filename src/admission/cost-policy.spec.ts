import type { IncomingMessage } from 'node:http';
import { BalancerInvalidCostException } from './admission.exceptions';
import { CostPolicy } from './cost-policy';

const req = (headers: Record<string, string | string[]>): IncomingMessage =>
  ({ headers }) as unknown as IncomingMessage;

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(BalancerInvalidCostException);
    return ((error as BalancerInvalidCostException).getResponse() as { message: string }).message;
  }
  throw new Error('expected a 400 invalid_cost');
}

describe('CostPolicy', () => {
  it('is absent when no cost option is set', () => {
    expect(CostPolicy.from('p', {}, false)).toBeUndefined();
    expect(CostPolicy.from('p', { maxQueueCost: 10 }, false)?.maxQueueCost).toBe(10);
  });

  it('reads a header as whole units (the first of a repeated header; fractions round up)', () => {
    const policy = CostPolicy.from('p', { costHeader: 'X-Tokens' }, false)!;
    expect(policy.unitsOf(req({ 'x-tokens': '120' }))).toBe(120);
    expect(policy.unitsOf(req({ 'x-tokens': ' 2.1 ' }))).toBe(3);
    expect(policy.unitsOf(req({ 'x-tokens': ['7', '9'] }))).toBe(7);
  });

  it('refuses a missing, malformed, zero or huge header with a reason naming it', () => {
    const policy = CostPolicy.from('p', { costHeader: 'x-tokens' }, false)!;
    expect(reason(() => policy.unitsOf(req({})))).toContain('x-tokens header) is missing');
    for (const bad of ['', 'abc', '-1', '+1', '1e3', '0x10', 'Infinity', 'NaN', '1 2']) {
      expect(reason(() => policy.unitsOf(req({ 'x-tokens': bad })))).toContain('is not a number');
    }
    expect(reason(() => policy.unitsOf(req({ 'x-tokens': '0' })))).toContain('is not positive');
    expect(reason(() => policy.unitsOf(req({ 'x-tokens': '1000000000001' })))).toContain(
      'is larger than',
    );
  });

  it('refuses what a cost function throws or returns that is not a positive finite number', () => {
    const throwing = CostPolicy.from(
      'p',
      {
        cost: () => {
          throw new Error('boom');
        },
      },
      false,
    )!;
    expect(reason(() => throwing.unitsOf(req({})))).toContain('could not be read');
    for (const value of [Number.NaN, 0, -2, Number.POSITIVE_INFINITY, 2e12, '5' as unknown]) {
      const policy = CostPolicy.from('p', { cost: () => value as number }, false)!;
      expect(() => policy.unitsOf(req({}))).toThrow(BalancerInvalidCostException);
    }
    expect(CostPolicy.from('p', { cost: () => 41.5 }, false)!.unitsOf(req({}))).toBe(42);
  });

  it("reads the probe request's units from the probe's headers, 1 when it cannot", () => {
    const header = CostPolicy.from('p', { costHeader: 'x-tokens' }, false)!;
    const probe = { method: 'POST', path: '/gen', headers: { 'X-Tokens': '900' } };
    expect(header.probeUnits(probe)).toBe(900);
    expect(header.probeUnits({ ...probe, headers: {} })).toBe(1);
    const fn = CostPolicy.from('p', { cost: (r) => (r.url === '/gen' ? 50 : 1) }, false)!;
    expect(fn.probeUnits(probe)).toBe(50);
  });
});
