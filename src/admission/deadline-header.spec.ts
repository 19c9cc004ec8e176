import { parseDeadlineHeader } from './deadline-header';

describe('parseDeadlineHeader', () => {
  it.each([
    ['2000', 2000],
    [' 2000 ', 2000],
    ['1', 1],
    ['99999999', 99_999_999],
    ['100m', 100],
    ['2S', 2000],
    ['1M', 60_000],
    ['1H', 3_600_000],
    ['500u', 0.5],
    ['5n', 0.000_005],
    ['000000250m', null], // nine digits
    ['0000250m', 250],
  ])('%j is %j ms', (value, ms) => {
    expect(parseDeadlineHeader(value)).toBe(ms);
  });

  it.each([
    [''],
    ['   '],
    ['0'],
    ['0S'],
    ['-100'],
    ['+100'],
    ['1.5S'],
    ['1e3'],
    ['123456789'],
    ['100s'],
    ['100 S'],
    ['S'],
    ['2000, 3000'],
    ['Infinity'],
    ['NaN'],
    ['0x10'],
  ])('%j is malformed (null)', (value) => {
    expect(parseDeadlineHeader(value)).toBeNull();
  });

  it('reads the first of a repeated header, and nothing when absent', () => {
    expect(parseDeadlineHeader(['300', '9000'])).toBe(300);
    expect(parseDeadlineHeader(['bad', '9000'])).toBeNull();
    expect(parseDeadlineHeader(undefined)).toBeNull();
  });
});
