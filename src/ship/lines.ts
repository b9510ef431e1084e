// Splits the bytes of a file into lines at the byte level, so every line knows exactly where it
// starts and where the next one starts. Decoding happens later, per line, in the parser: a
// multi-byte character cut by a read boundary is never damaged and offsets never drift.

export interface Line {
  /** Byte offset of the first byte of the line. */
  offset: number;
  /** Byte offset just after its `\n`: where the next line starts (and what a checkpoint stores). */
  end: number;
  /** The line without `\n` (and without a `\r` before it), cut to `maxLineBytes`. */
  data: Buffer;
  /** The line was longer than `maxLineBytes`; `data` holds its beginning. */
  truncated: boolean;
}

export class LineSplitter {
  /** Offset of the first byte not yet part of an emitted line. */
  private lineStart: number;
  /** Offset of the next byte to be pushed. */
  private pos: number;
  /** Bytes [lineStart, pos) held back (only the first maxLineBytes of an oversized line). */
  private pending: Buffer = Buffer.alloc(0);
  private oversize = false;

  constructor(
    start: number,
    private readonly maxLineBytes: number,
  ) {
    this.lineStart = start;
    this.pos = start;
  }

  /** Where the next read must start. */
  get readPosition(): number {
    return this.pos;
  }

  /** Offset after the last complete line: everything before it has been handed out. */
  get committed(): number {
    return this.lineStart;
  }

  /** Bytes of a partial last line held until its `\n` arrives. */
  get pendingBytes(): number {
    return this.pos - this.lineStart;
  }

  /** Starts over at `start` (a truncated file), forgetting any partial line. */
  reset(start: number): void {
    this.lineStart = start;
    this.pos = start;
    this.pending = Buffer.alloc(0);
    this.oversize = false;
  }

  /**
   * Takes the next bytes of the file (they must start at `readPosition`) and returns the lines they
   * complete. `chunk` may be referenced by the returned lines; it must not be reused by the caller.
   */
  push(chunk: Buffer, out: Line[] = []): Line[] {
    if (chunk.length === 0) return out;
    const chunkStart = this.pos;
    this.pos += chunk.length;
    let from = 0;

    if (this.oversize) {
      const nl = chunk.indexOf(10);
      if (nl < 0) return out;
      out.push({ offset: this.lineStart, end: chunkStart + nl + 1, data: this.pending, truncated: true });
      this.lineStart = chunkStart + nl + 1;
      this.pending = Buffer.alloc(0);
      this.oversize = false;
      from = nl + 1;
    }

    // Lines are cut from `data`, which starts at file offset `base`.
    let data = chunk;
    let base = chunkStart;
    if (this.pending.length > 0) {
      data = Buffer.concat([this.pending, chunk.subarray(from)]);
      base = this.lineStart;
      from = 0;
      this.pending = Buffer.alloc(0);
    }

    let start = from;
    for (;;) {
      const nl = data.indexOf(10, start);
      if (nl < 0) break;
      let stop = nl;
      if (stop > start && data[stop - 1] === 13) stop--;
      const truncated = stop - start > this.maxLineBytes;
      out.push({
        offset: base + start,
        end: base + nl + 1,
        data: data.subarray(start, truncated ? start + this.maxLineBytes : stop),
        truncated,
      });
      start = nl + 1;
    }
    this.lineStart = base + start;
    const rest = data.length - start;
    // +1: a `\r` that may end the line is not part of it.
    if (rest > this.maxLineBytes + 1) {
      // Keep the head of the line; the rest is skipped up to its `\n`.
      this.pending = Buffer.from(data.subarray(start, start + this.maxLineBytes));
      this.oversize = true;
    } else if (rest > 0) {
      this.pending = Buffer.from(data.subarray(start));
    }
    return out;
  }
}
