import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/ship/lines.js';

/** Reference: split a whole buffer at `\n`, dropping a trailing partial line. */
function reference(all: Buffer, start: number, max: number) {
  const out: { offset: number; end: number; data: string; truncated: boolean }[] = [];
  let s = 0;
  for (;;) {
    const nl = all.indexOf(10, s);
    if (nl < 0) break;
    let stop = nl;
    if (stop > s && all[stop - 1] === 13) stop--;
    const truncated = stop - s > max;
    out.push({
      offset: start + s,
      end: start + nl + 1,
      data: all.subarray(s, truncated ? s + max : stop).toString('latin1'),
      truncated,
    });
    s = nl + 1;
  }
  return { lines: out, committed: start + s };
}

describe('LineSplitter', () => {
  it('cuts lines at the byte level with exact offsets, whatever the read boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 40 }),
            fc.constant(new Uint8Array([10])),
            fc.constant(new Uint8Array([13, 10])),
            fc.constant(new Uint8Array([0xe6, 0xb0, 0xb4, 10])),
          ),
          { maxLength: 60 },
        ),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 1, max: 64 }),
        (parts, cuts, start, max) => {
          const all = Buffer.concat(parts.map((p) => Buffer.from(p)));
          const sp = new LineSplitter(start, max);
          const got: { offset: number; end: number; data: string; truncated: boolean }[] = [];
          let pos = 0;
          let i = 0;
          while (pos < all.length) {
            const n = cuts[i++ % cuts.length]!;
            expect(sp.readPosition).toBe(start + pos);
            for (const l of sp.push(Buffer.from(all.subarray(pos, pos + n)))) {
              got.push({ ...l, data: l.data.toString('latin1') });
            }
            pos += n;
          }
          const want = reference(all, start, max);
          expect(got).toEqual(want.lines);
          expect(sp.committed).toBe(want.committed);
          expect(sp.readPosition).toBe(start + all.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps a 1 MB line as one line with its head, and the offsets after it right', () => {
    const sp = new LineSplitter(0, 1024);
    const big = Buffer.alloc(1024 * 1024, 0x78);
    const lines = [
      ...sp.push(Buffer.from('first\n')),
      ...sp.push(big.subarray(0, 300_000)),
      ...sp.push(big.subarray(300_000)),
      ...sp.push(Buffer.from('\nnext\n')),
    ];
    expect(lines.map((l) => [l.offset, l.end, l.data.length, l.truncated])).toEqual([
      [0, 6, 5, false],
      [6, 6 + big.length + 1, 1024, true],
      [6 + big.length + 1, 6 + big.length + 6, 4, false],
    ]);
  });

  it('holds a partial last line until its newline arrives', () => {
    const sp = new LineSplitter(100, 1000);
    expect(sp.push(Buffer.from('abc'))).toEqual([]);
    expect(sp.committed).toBe(100);
    expect(sp.pendingBytes).toBe(3);
    const [l] = sp.push(Buffer.from('def\n'));
    expect(l).toMatchObject({ offset: 100, end: 107, truncated: false });
    expect(l!.data.toString()).toBe('abcdef');
  });
});
