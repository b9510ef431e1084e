import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CounterTable, sketchCount } from '../../src/detect/window/counter-table.js';

describe('CounterTable', () => {
  it('sums per counter over its own ring, zeroes skipped buckets, ignores what left the ring', () => {
    const t = new CounterTable({ counters: 2, buckets: 4, rings: [4, 2], bucketMs: 1000, maxKeys: 10 });
    const s = t.slot('a', 10);
    for (const b of [10, 11, 12, 13]) {
      expect(t.advance(s, b)).toBe(true);
      t.add(s, 0, b);
      t.add(s, 1, b);
    }
    expect(t.sum(s, 0)).toBe(4);
    expect(t.sum(s, 1)).toBe(2);
    expect(t.sum(s, 0, 2)).toBe(2);
    // late but inside counter 0's ring; outside counter 1's
    expect(t.advance(s, 11)).toBe(true);
    t.add(s, 0, 11);
    t.add(s, 1, 11);
    expect(t.sum(s, 0)).toBe(5);
    expect(t.sum(s, 1)).toBe(2);
    expect(t.at(s, 0, 11)).toBe(2);
    // too late for the table
    expect(t.advance(s, 9)).toBe(false);
    // a gap longer than the ring empties it
    expect(t.advance(s, 30)).toBe(true);
    expect(t.sum(s, 0)).toBe(0);
    expect(t.sum(s, 1)).toBe(0);
  });

  it('agrees with a plain list of timestamps for any in-order stream (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 200 }), (gaps) => {
        const t = new CounterTable({ counters: 1, buckets: 5, bucketMs: 1, maxKeys: 2 });
        let b = 100;
        const seen: number[] = [];
        const s = t.slot('k', b);
        for (const g of gaps) {
          b += g;
          t.advance(s, b);
          t.add(s, 0, b);
          seen.push(b);
          expect(t.sum(s, 0)).toBe(seen.filter((x) => x > b - 5).length);
        }
      }),
    );
  });

  it('frees idle keys, reuses their slots, refuses beyond maxKeys', () => {
    const t = new CounterTable({ counters: 1, buckets: 3, bucketMs: 1000, maxKeys: 2 });
    const a = t.slot('a', 1);
    t.slot('b', 5);
    expect(t.slot('c', 5)).toBe(-1);
    const freed: string[] = [];
    expect(t.sweep(3, (k) => freed.push(k))).toBe(1);
    expect(freed).toEqual(['a']);
    expect(t.slot('c', 6)).toBe(a);
    expect(t.sum(a, 0)).toBe(0);
    expect(t.size).toBe(2);
  });

  it('saturates instead of wrapping', () => {
    const t = new CounterTable({ counters: 1, buckets: 2, bucketMs: 1, maxKeys: 1 });
    const s = t.slot('x', 0);
    t.add(s, 0, 0, 70_000);
    expect(t.sum(s, 0)).toBe(65_535);
  });

  it('estimates small distinct counts from its 32-bit sketch', () => {
    expect(sketchCount(0)).toBe(0);
    expect(sketchCount(0b1)).toBe(1);
    // six bits set: linear counting estimates ~6.6 items (some of them may share a bit)
    expect(sketchCount(0b111111)).toBeGreaterThanOrEqual(6);
    expect(sketchCount(0b111111)).toBeLessThanOrEqual(7);
    expect(sketchCount(0xffffffff)).toBeGreaterThan(100);
  });
});
