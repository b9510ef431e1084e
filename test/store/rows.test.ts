import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipRange } from '../../src/store/ip-range.js';
import { decisionRow, eventRow, RecordError, utcTime } from '../../src/store/rows.js';
import { decisionFor } from './fixtures.js';

describe('utcTime', () => {
  it('converts offsets to UTC and keeps the fraction', () => {
    expect(utcTime('2026-11-27T10:15:00.123456+01:00', 6, 'ts')).toBe('2026-11-27 09:15:00.123456');
    expect(utcTime('2026-11-27T10:15:00.123456+01:00', 3, 'ts')).toBe('2026-11-27 09:15:00.123');
    expect(utcTime('2026-11-27T10:15:00.5-0230', 6, 'ts')).toBe('2026-11-27 12:45:00.500000');
    expect(utcTime('2026-01-01T00:30:00Z', 0, 'ts')).toBe('2026-01-01 00:30:00');
    expect(utcTime('2026-01-01 00:30:00', 0, 'ts')).toBe('2026-01-01 00:30:00');
    expect(utcTime(Date.UTC(2026, 0, 2, 3, 4, 5, 6), 3, 'ts')).toBe('2026-01-02 03:04:05.006');
  });

  it('refuses what is not a time, naming the field', () => {
    for (const bad of ['yesterday', '2026-13-01T00:00:00Z', '2026-11-27T25:00:00Z', '', '2026-11-27', 42n]) {
      expect(() => utcTime(bad, 6, 'ts')).toThrow(RecordError);
    }
    expect(() => utcTime('nope', 6, 'created_at')).toThrow(/^created_at: /);
    // Also right after the same second was read (the cache must not skip the check).
    expect(utcTime('2026-11-27T10:15:00.123Z', 6, 'ts')).toBe('2026-11-27 10:15:00.123000');
    expect(() => utcTime('2026-11-27T10:15:00.1234567890Z', 6, 'ts')).toThrow(RecordError);
  });

  it('agrees with Date for any time and offset, also in runs that hit its cache', () => {
    const one = fc.record({
      ms: fc.integer({ min: Date.UTC(1971, 0, 1), max: Date.UTC(2200, 0, 1) }),
      micros: fc.integer({ min: 0, max: 999 }),
      off: fc.integer({ min: -14 * 60, max: 14 * 60 }),
    });
    fc.assert(
      fc.property(fc.array(one, { minLength: 1, maxLength: 8 }), fc.boolean(), (items, repeat) => {
        for (const { ms, micros, off } of repeat ? [...items, ...items] : items) {
          const local = new Date(ms + off * 60_000).toISOString().slice(0, 23);
          const sign = off < 0 ? '-' : '+';
          const a = Math.abs(off);
          const text = `${local}${String(micros).padStart(3, '0')}${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
          const expected = `${new Date(ms).toISOString().slice(0, 23).replace('T', ' ')}${String(micros).padStart(3, '0')}`;
          expect(utcTime(text, 6, 'ts')).toBe(expected);
        }
      }),
    );
  });
});

describe('rows', () => {
  it('an event keeps unknown fields in extra and needs kind and raw', () => {
    const row = eventRow(
      {
        id: 'a',
        kind: 'reject',
        raw: 'r',
        ts: '2026-11-27T10:00:00Z',
        novel: 1,
        command_counts: { rcpt: { ok: 0, total: 1 } },
      },
      'current',
      0,
    );
    expect(row).toEqual({
      id: 'a',
      kind: 'reject',
      raw: 'r',
      ts: '2026-11-27 10:00:00.000000',
      extra: '{"novel":1}',
      command_counts: '{"rcpt":{"ok":0,"total":1}}',
    });
    expect(() => eventRow({ raw: 'r' }, 'current', 0)).toThrow(/kind/);
    expect(() => eventRow([], 'current', 0)).toThrow(/JSON object/);
  });

  it('an event without id gets one derived from host, time and line (the same line twice, the same id)', () => {
    const e = { kind: 'unknown', raw: 'x', host: 'h', ts: '2026-11-27T10:00:00Z' };
    const a = eventRow(e, 'current', 0).id;
    expect(a).toMatch(/^sha1:[0-9a-f]{40}$/);
    expect(eventRow({ ...e }, 'current', 0).id).toBe(a);
    expect(eventRow({ ...e, raw: 'y' }, 'current', 0).id).not.toBe(a);
  });

  it('a decision row carries the target range and when the change took effect', () => {
    const lifted = decisionRow(
      { ...decisionFor('2001:db8::/64'), state: 'lifted' },
      'current',
      { timestamp: Date.UTC(2026, 10, 27, 9, 30) },
      0,
    );
    expect(lifted).toMatchObject({
      target_low: '2001:db8::',
      target_high: '2001:db8::ffff:ffff:ffff:ffff',
      changed_at: '2026-11-27 09:30:00.000',
    });
    expect(() => decisionRow({ ...decisionFor('1.2.3.4'), state: 'gone' }, 'current', undefined, 0)).toThrow(
      /state/,
    );
  });

  it('ipRange: addresses and prefixes of both families', () => {
    expect(ipRange('192.0.2.7')).toEqual({ low: '::ffff:192.0.2.7', high: '::ffff:192.0.2.7', bits: 128 });
    expect(ipRange('192.0.2.77/24')).toEqual({
      low: '::ffff:192.0.2.0',
      high: '::ffff:192.0.2.255',
      bits: 120,
    });
    expect(ipRange('IPv6:2001:db8::1')).toMatchObject({ low: '2001:db8::1', bits: 128 });
    expect(() => ipRange('300.1.1.1')).toThrow(RangeError);
  });
});
