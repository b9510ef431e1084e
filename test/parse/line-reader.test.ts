import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readLines } from '../../src/parse/line-reader.js';

async function collect(chunks: Buffer[], max?: number): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of readLines(Readable.from(chunks), max)) out.push(...batch);
  return out;
}

describe('readLines', () => {
  it('splits LF and CRLF lines and keeps a last line without newline', async () => {
    expect(await collect([Buffer.from('a\r\nb\nc')])).toEqual(['a', 'b', 'c']);
  });

  it('keeps empty lines (one record each)', async () => {
    expect(await collect([Buffer.from('a\n\n\nb\n')])).toEqual(['a', '', '', 'b']);
  });

  it('joins lines and multi-byte characters split across chunks', async () => {
    const bytes = Buffer.from('héllo wörld\nzweite Zeile ü\n');
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(await collect([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual([
        'héllo wörld',
        'zweite Zeile ü',
      ]);
    }
  });

  it('keeps a line longer than the cap as one line (its head)', async () => {
    const long = 'x'.repeat(100);
    const chunks = [
      Buffer.from('a\n'),
      Buffer.from(long.slice(0, 30)),
      Buffer.from(long.slice(30)),
      Buffer.from('\nb\n'),
    ];
    expect(await collect(chunks, 40)).toEqual(['a', 'x'.repeat(40), 'b']);
  });

  it('replaces invalid UTF-8 instead of failing', async () => {
    expect(await collect([Buffer.from([0x61, 0xff, 0xfe, 0x0a, 0x62])])).toEqual(['a\uFFFD\uFFFD', 'b']);
  });
});

describe('readFileLines', () => {
  it('reads a file larger than its buffer with the same lines as readLines', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { readFileLines } = await import('../../src/parse/line-reader.js');
    const dir = mkdtempSync(join(tmpdir(), 'mizugiwa-lines-'));
    try {
      const lines = Array.from({ length: 20000 }, (_, i) => `line ${i} ${'ü'.repeat(i % 50)}`);
      lines[777] = 'x'.repeat(300_000);
      const file = join(dir, 'log');
      writeFileSync(file, `${lines.join('\r\n')}\r\nlast`);
      const got: string[] = [];
      for await (const b of readFileLines(file)) got.push(...b);
      expect(got).toHaveLength(20001);
      expect(got[0]).toBe(lines[0]);
      expect(got[19999]).toBe(lines[19999]);
      expect(got[777]).toBe('x'.repeat(256 * 1024));
      expect(got[20000]).toBe('last');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
