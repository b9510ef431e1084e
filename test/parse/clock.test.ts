import { describe, expect, it } from 'vitest';
import { YearTracker } from '../../src/parse/clock.js';
import { LineParser } from '../../src/parse/parser.js';

const at = (iso: string) => () => new Date(iso);

describe('year inference for RFC 3164 lines', () => {
  it('takes the current year for a line of this month', () => {
    expect(new YearTracker(undefined, at('2026-11-27T12:00:00Z')).yearOf(11)).toBe(2026);
  });

  it('puts a December line read in early January in the previous year', () => {
    expect(new YearTracker(undefined, at('2027-01-02T00:10:00Z')).yearOf(12)).toBe(2026);
  });

  it('puts a January line read on 31 December (clock skew) in the next year', () => {
    expect(new YearTracker(undefined, at('2026-12-31T23:59:00Z')).yearOf(1)).toBe(2027);
  });

  it('moves to the next year when a stream goes from December to January', () => {
    const y = new YearTracker(undefined, at('2026-12-31T23:00:00Z'));
    expect([12, 12, 1, 1, 2].map((m) => y.yearOf(m))).toEqual([2026, 2026, 2027, 2027, 2027]);
  });

  it('keeps a late December line after January in the previous year without moving the stream', () => {
    const y = new YearTracker(2026, at('2000-01-01T00:00:00Z'));
    expect([12, 1, 12, 1].map((m) => y.yearOf(m))).toEqual([2026, 2027, 2026, 2027]);
  });

  it('starts from the given year and still rolls over', () => {
    const p = new LineParser({ year: 2020, timezone: 'UTC' });
    const ts = [
      'Dec 31 23:59:59 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]',
      'Jan  1 00:00:01 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]',
    ].map((l) => p.parse(l).ts);
    expect(ts).toEqual(['2020-12-31T23:59:59+00:00', '2021-01-01T00:00:01+00:00']);
  });

  it('uses now() when no year is given', () => {
    const p = new LineParser({ now: at('2031-06-15T00:00:00Z'), timezone: 'UTC' });
    expect(p.parse('Jun 14 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]').ts).toBe(
      '2031-06-14T10:00:00+00:00',
    );
  });
});
