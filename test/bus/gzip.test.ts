import { gzipSync, unzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { inflatedSize } from '../../src/bus/kafka.js';

describe('inflatedSize (the gzip codec inflates a record batch in one chunk)', () => {
  const data = Buffer.from('{"kind":"reject","reason":"user_unknown"}\n'.repeat(30_000));

  it('is the inflated size read from the gzip trailer, plus room so the chunk never fills', () => {
    const gz = gzipSync(data, { level: 1 });
    expect(inflatedSize(gz)).toBe(data.length + 64);
    const out = unzipSync(gz, { chunkSize: inflatedSize(gz) });
    expect(out.equals(data)).toBe(true);
    // One chunk: the result is a view of zlib's own output buffer, not a concatenation.
    expect(out.buffer.byteLength).toBe(data.length + 64);
  });

  it('gives the same bytes when the trailer does not tell the whole size (several members)', () => {
    const gz = Buffer.concat([gzipSync(data), gzipSync(Buffer.from('tail'))]);
    expect(inflatedSize(gz)).toBe(1024);
    expect(
      unzipSync(gz, { chunkSize: inflatedSize(gz) }).equals(Buffer.concat([data, Buffer.from('tail')])),
    ).toBe(true);
  });

  it('caps a bogus size and falls back on short input', () => {
    const bogus = Buffer.concat([gzipSync(data).subarray(0, -4), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    expect(inflatedSize(bogus)).toBe(64 << 20);
    expect(inflatedSize(Buffer.alloc(5))).toBe(16 * 1024);
  });
});
