import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateBalancedOptions } from '../admission/balanced-options.validation';
import { DeadlinePolicy } from '../admission/deadline-policy';
import { BalancerConfigError } from './balancer-config.error';
import type { BalancerOptions } from './balancer-options';
import { mergeDeadlineSettings } from './deadline-options';
import { resolveBalancerOptions } from './resolve-options';

const dir = mkdtempSync(join(tmpdir(), 'balancer-deadline-'));
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

const inTwoSeconds = (): number => 2000;
const request = (headers: Record<string, string>): IncomingMessage =>
  ({ headers }) as unknown as IncomingMessage;

describe('deadline options (deadlineHeader, deadline)', () => {
  it('are off by default, and kept as given (functions included)', () => {
    const off = resolveBalancerOptions({ endpoints: { '/a': { capacity: 1 } } });
    expect(off.deadlineHeader).toBeUndefined();
    expect(DeadlinePolicy.from('/a', mergeDeadlineSettings([off.endpoints['/a']]), false)).toBe(
      undefined,
    );
    const o = resolveBalancerOptions({
      deadlineHeader: 'x-request-timeout-ms',
      endpoints: { '/a': { deadline: inTwoSeconds }, '/b': { deadlineHeader: 'grpc-timeout' } },
    });
    expect(o.deadlineHeader).toBe('x-request-timeout-ms');
    expect(o.endpoints['/a'].deadline).toBe(inTwoSeconds);
    expect(o.endpoints['/b'].deadlineHeader).toBe('grpc-timeout');
  });

  it('names the field of every bad value, and both sources on one endpoint', () => {
    const problems = problemsOf({
      deadlineHeader: 'x request timeout',
      endpoints: {
        '/p': { deadlineHeader: 42 as unknown as string },
        '/q': { deadline: 2000 as unknown as () => number },
        '/r': { deadline: inTwoSeconds, deadlineHeader: 'x-request-timeout-ms' },
      },
    });
    expect(problems.sort()).toEqual(
      [
        'deadlineHeader must be an HTTP header name such as x-request-timeout-ms',
        'endpoints./p.deadlineHeader must be an HTTP header name such as x-request-timeout-ms',
        'endpoints./q.deadline must be a function (req) => milliseconds | Date | undefined (TypeScript only; in YAML use deadline_header)',
        'endpoints./r: deadline and deadlineHeader are both set; use one of them',
      ].sort(),
    );
  });

  it('reads the YAML key deadline_header (global and per endpoint) and names a bad one', () => {
    const o = resolveBalancerOptions(
      yamlFile('deadline.yml', [
        'deadline_header: x-request-timeout-ms',
        'endpoints:',
        '  /predict:',
        '    deadline_header: grpc-timeout',
      ]),
    );
    expect(o.deadlineHeader).toBe('x-request-timeout-ms');
    expect(o.endpoints['/predict'].deadlineHeader).toBe('grpc-timeout');
    const bad = yamlFile('bad-deadline.yml', ['endpoints:', '  /predict:', '    deadline: 2000']);
    expect(problemsOf(bad)).toEqual([
      'endpoints./predict.deadline (line 3) must be a function (req) => milliseconds | Date | undefined (TypeScript only; in YAML use deadline_header)',
    ]);
  });

  it('checks @Balanced() options with the same rules', () => {
    const where = '@Balanced() on Api.predict (POST /predict)';
    expect(validateBalancedOptions({ deadlineHeader: 'bad header' }, where)).toEqual([
      `${where}: deadlineHeader must be an HTTP header name such as x-request-timeout-ms`,
    ]);
    expect(
      validateBalancedOptions({ deadline: inTwoSeconds, deadlineHeader: 'x-timeout' }, where),
    ).toEqual([`${where}: deadline and deadlineHeader are both set; use one of them`]);
  });
});

describe('mergeDeadlineSettings', () => {
  it('takes the source whole from the first layer that sets one, else the global header', () => {
    expect(
      mergeDeadlineSettings([undefined, { deadlineHeader: 'x-a' }, { deadline: inTwoSeconds }]),
    ).toEqual({ deadlineHeader: 'x-a' });
    expect(mergeDeadlineSettings([{ deadline: inTwoSeconds }], 'x-global')).toEqual({
      deadline: inTwoSeconds,
    });
    expect(mergeDeadlineSettings([{}, undefined], 'x-global')).toEqual({
      deadlineHeader: 'x-global',
    });
  });
});

describe('DeadlinePolicy.deadlineOf', () => {
  const now = 1000;
  const byFn = (fn: (req: IncomingMessage) => number | Date | undefined) =>
    DeadlinePolicy.from('/p', { deadline: fn }, false)!;

  it('reads the header relative to now, case-insensitively named; none when absent or malformed', () => {
    const policy = DeadlinePolicy.from('/p', { deadlineHeader: 'X-Request-Timeout-Ms' }, false)!;
    expect(policy.deadlineOf(request({ 'x-request-timeout-ms': '250' }), now)).toBe(1250);
    expect(policy.deadlineOf(request({ 'x-request-timeout-ms': '2S' }), now)).toBe(3000);
    expect(policy.deadlineOf(request({}), now)).toBeUndefined();
    expect(policy.deadlineOf(request({ 'x-request-timeout-ms': '-1' }), now)).toBeUndefined();
    // Beyond what a Node timer holds (2^31 - 1 ms): no deadline rather than one that fires at once.
    expect(policy.deadlineOf(request({ 'x-request-timeout-ms': '99999999H' }), now)).toBe(
      undefined,
    );
  });

  it('reads a function: milliseconds from now, or an absolute Date; none for junk or a throw', () => {
    expect(byFn(() => 500).deadlineOf(request({}), now)).toBe(1500);
    expect(byFn(() => -20).deadlineOf(request({}), now)).toBe(980);
    const at = byFn(() => new Date(Date.now() + 10_000)).deadlineOf(request({}), now)!;
    expect(at).toBeGreaterThan(now + 9_000);
    expect(at).toBeLessThanOrEqual(now + 10_000);
    expect(byFn(() => Number.NaN).deadlineOf(request({}), now)).toBeUndefined();
    expect(byFn(() => new Date('nope')).deadlineOf(request({}), now)).toBeUndefined();
    expect(byFn(() => undefined).deadlineOf(request({}), now)).toBeUndefined();
    expect(
      byFn(() => {
        throw new Error('no budget');
      }).deadlineOf(request({}), now),
    ).toBeUndefined();
  });
});
