// Line splitting for log files: LF-terminated lines, a trailing CR stripped, invalid UTF-8 replaced.
// A line longer than maxLineBytes is still one line: its head is kept, the rest skipped.
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** Bytes of one line kept in memory; the parser caps raw at 64 KiB characters anyway. */
export const MAX_LINE_BYTES = 256 * 1024;

/** Read size of readFileLines (one buffer, reused for the whole file). */
const READ_SIZE = 256 * 1024;

/**
 * Splits byte chunks into lines. push() does not keep a reference to the chunk it is given (only a
 * copy of an unterminated tail), so a caller may reuse its buffer.
 */
export class LineSplitter {
  private carry: Buffer | undefined; // head of a line not yet terminated
  private skipping = false; // dropping the tail of an over-long line until its newline

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    if (this.carry !== undefined || this.skipping) {
      const nl = chunk.indexOf(10);
      if (nl === -1) {
        if (!this.skipping) {
          const room = this.maxLineBytes - this.carry!.length;
          if (room > 0) this.carry = Buffer.concat([this.carry!, chunk.subarray(0, room)]);
          if (chunk.length >= room) this.skipping = true;
        }
        return lines;
      }
      if (!this.skipping) {
        const room = this.maxLineBytes - this.carry!.length;
        this.carry = Buffer.concat([this.carry!, chunk.subarray(0, Math.min(nl, Math.max(room, 0)))]);
      }
      lines.push(stripCr(this.carry!.toString('utf8')));
      this.carry = undefined;
      this.skipping = false;
      start = nl + 1;
    }
    // Decode line by line, not the chunk at once: substrings of a decoded chunk would keep the whole
    // chunk alive for as long as any field sliced from it lives (a detector window holding recipients).
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      const end = nl > start && chunk[nl - 1] === 13 ? nl - 1 : nl;
      lines.push(chunk.toString('utf8', start, end));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (rest.length > this.maxLineBytes) {
        this.carry = Buffer.from(rest.subarray(0, this.maxLineBytes));
        this.skipping = true;
      } else this.carry = Buffer.from(rest);
    }
    return lines;
  }

  /** The last line when the input did not end with a newline. */
  end(): string[] {
    const c = this.carry;
    this.carry = undefined;
    this.skipping = false;
    return c !== undefined && c.length > 0 ? [stripCr(c.toString('utf8'))] : [];
  }
}

/**
 * Yields arrays of lines (one array per read chunk, to keep per-line overhead low), in input order.
 * A final line without a newline is yielded too.
 */
export async function* readLines(input: Readable, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<string[]> {
  const splitter = new LineSplitter(maxLineBytes);
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const lines = splitter.push(chunk);
    if (lines.length > 0) yield lines;
  }
  const last = splitter.end();
  if (last.length > 0) yield last;
}

/**
 * Like readLines, for a file path: reads into one reused buffer, so a large file does not leave a
 * trail of chunk buffers for the garbage collector (peak memory stays flat).
 */
export async function* readFileLines(path: string, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<string[]> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_SIZE);
    const splitter = new LineSplitter(maxLineBytes);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, READ_SIZE, null);
      if (bytesRead === 0) break;
      const lines = splitter.push(buf.subarray(0, bytesRead));
      if (lines.length > 0) yield lines;
    }
    const last = splitter.end();
    if (last.length > 0) yield last;
  } finally {
    await fh.close();
  }
}

function stripCr(s: string): string {
  return s.charCodeAt(s.length - 1) === 13 ? s.slice(0, -1) : s;
}
