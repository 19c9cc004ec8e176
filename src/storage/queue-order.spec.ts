import {
  DEFAULT_PRIORITY_AGING,
  MAX_PRIORITY,
  MAX_TENANT_LENGTH,
  nextRound,
  normalizePriority,
  normalizeTenant,
  queueKey,
  queueTargetIntervalMs,
} from './queue-order';

describe('normalizeTenant', () => {
  it('keeps a plain key, trimmed', () => {
    expect(normalizeTenant('acme')).toBe('acme');
    expect(normalizeTenant('  key-1 ')).toBe('key-1');
  });

  it('takes the first value of a repeated header', () => {
    expect(normalizeTenant(['first', 'second'])).toBe('first');
    expect(normalizeTenant([])).toBeUndefined();
  });

  it('is undefined (the default tenant) for no header, an empty one or a non-string', () => {
    for (const raw of [undefined, null, '', '   ', 42, {}, [7], true]) {
      expect(normalizeTenant(raw)).toBeUndefined();
    }
  });

  it('cuts long keys to MAX_TENANT_LENGTH and replaces control characters', () => {
    const long = 'k'.repeat(MAX_TENANT_LENGTH * 3);
    expect(normalizeTenant(long)).toBe('k'.repeat(MAX_TENANT_LENGTH));
    expect(normalizeTenant('a\u0000b\nc\u007fd')).toBe('a?b?c?d');
    // Cut first, then cleaned: the result never exceeds the bound.
    const cut = normalizeTenant('\u0001'.repeat(MAX_TENANT_LENGTH + 10) + 'x');
    expect(cut).toBe('?'.repeat(MAX_TENANT_LENGTH));
  });
});

describe('normalizePriority', () => {
  it('keeps integers in range and truncates fractions toward zero', () => {
    expect(normalizePriority(3)).toBe(3);
    expect(normalizePriority(-2)).toBe(-2);
    expect(normalizePriority(2.9)).toBe(2);
    expect(normalizePriority(-2.9)).toBe(-2);
  });

  it('parses numeric strings (a header)', () => {
    expect(normalizePriority('5')).toBe(5);
    expect(normalizePriority(' -7 ')).toBe(-7);
  });

  it('clamps to ±MAX_PRIORITY', () => {
    expect(normalizePriority(MAX_PRIORITY * 10)).toBe(MAX_PRIORITY);
    expect(normalizePriority(-1e12)).toBe(-MAX_PRIORITY);
    expect(normalizePriority(String(MAX_PRIORITY + 1))).toBe(MAX_PRIORITY);
  });

  it('is 0 for anything else', () => {
    for (const raw of [
      undefined,
      null,
      '',
      '  ',
      'high',
      NaN,
      Infinity,
      -Infinity,
      {},
      [1],
      true,
    ]) {
      expect(normalizePriority(raw)).toBe(0);
    }
  });
});

describe('nextRound', () => {
  it('is one after the later of the current round and the tenant last round', () => {
    expect(nextRound(0, undefined)).toBe(1);
    expect(nextRound(5, undefined)).toBe(6);
    expect(nextRound(5, 3)).toBe(6);
    expect(nextRound(5, 9)).toBe(10);
  });
});

describe('queueKey', () => {
  it('is the round less priority x aging', () => {
    expect(queueKey(10, 0, DEFAULT_PRIORITY_AGING)).toBe(10);
    expect(queueKey(10, 2, 3)).toBe(4);
    expect(queueKey(10, -1, 3)).toBe(13);
  });

  it('stays an exact integer at the extremes (rounds far beyond any queue)', () => {
    const round = 2 ** 40;
    const high = queueKey(round, MAX_PRIORITY, 1_000_000);
    const low = queueKey(round, -MAX_PRIORITY, 1_000_000);
    expect(Number.isSafeInteger(high)).toBe(true);
    expect(Number.isSafeInteger(low)).toBe(true);
    expect(low - high).toBe(2 * MAX_PRIORITY * 1_000_000);
  });

  /**
   * The starvation bound: simulate one tenant's queue, where every arrival takes the next round,
   * and check that a waiter of priority p is passed by a later arrival of priority p + d exactly
   * when that arrival came fewer than d x aging rounds after it.
   */
  it('a later arrival of higher priority passes a waiter only within priority difference x aging rounds', () => {
    const aging = 3;
    for (let gap = 1; gap <= 12; gap++) {
      for (let d = 1; d <= 3; d++) {
        const waiter = { key: queueKey(1, 0, aging), seq: 0 };
        const later = { key: queueKey(1 + gap, d, aging), seq: 1 };
        const passes =
          later.key < waiter.key || (later.key === waiter.key && later.seq < waiter.seq);
        expect(passes).toBe(gap < d * aging);
      }
    }
  });

  it('with one tenant and one priority the keys are arrival order (FIFO)', () => {
    let current = 0;
    let last: number | undefined;
    const keys: number[] = [];
    for (let i = 0; i < 10; i++) {
      const round = nextRound(current, last);
      last = round;
      keys.push(queueKey(round, 0, DEFAULT_PRIORITY_AGING));
      if (i === 4) current = keys[0]; // grants in between do not reorder the rest
    }
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('queueTargetIntervalMs', () => {
  it('is five targets, at least 100 ms', () => {
    expect(queueTargetIntervalMs(1)).toBe(100);
    expect(queueTargetIntervalMs(20)).toBe(100);
    expect(queueTargetIntervalMs(21)).toBe(105);
    expect(queueTargetIntervalMs(200)).toBe(1000);
  });
});
