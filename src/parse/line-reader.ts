// Streaming line splitter for log files: LF-terminated lines, a trailing CR stripped, invalid UTF-8
// replaced. A line longer than maxLineBytes is still one line: its head is kept, the rest skipped.
import type { Readable } from 'node:stream';

/** Bytes of one line kept in memory; the parser caps raw at 64 KiB characters anyway. */
export const MAX_LINE_BYTES = 256 * 1024;

/**
 * Yields arrays of lines (one array per read chunk, to keep per-line overhead low), in input order.
 * A final line without a newline is yielded too.
 */
export async function* readLines(input: Readable, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<string[]> {
  let carry: Buffer | undefined; // head of a line not yet terminated
  let skipping = false; // dropping the tail of an over-long line until its newline
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const lines: string[] = [];
    let start = 0;
    if (carry !== undefined || skipping) {
      const nl = chunk.indexOf(10);
      if (nl === -1) {
        if (!skipping) {
          const room = maxLineBytes - carry!.length;
          if (room > 0) carry = Buffer.concat([carry!, chunk.subarray(0, room)]);
          if (chunk.length >= room) skipping = true;
        }
        continue;
      }
      if (!skipping) {
        const room = maxLineBytes - carry!.length;
        carry = Buffer.concat([carry!, chunk.subarray(0, Math.min(nl, Math.max(room, 0)))]);
      }
      lines.push(stripCr(carry!.toString('utf8')));
      carry = undefined;
      skipping = false;
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(10);
    if (last >= start) {
      // one decode for all complete lines of the chunk: a newline byte never sits inside a UTF-8 sequence
      const text = chunk.toString('utf8', start, last);
      let p = 0;
      for (;;) {
        const nl = text.indexOf('\n', p);
        if (nl === -1) {
          lines.push(stripCr(text.slice(p)));
          break;
        }
        lines.push(stripCr(text.slice(p, nl)));
        p = nl + 1;
      }
      start = last + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (rest.length > maxLineBytes) {
        carry = Buffer.from(rest.subarray(0, maxLineBytes));
        skipping = true;
      } else carry = Buffer.from(rest);
    }
    if (lines.length > 0) yield lines;
  }
  if (carry !== undefined && carry.length > 0) yield [stripCr(carry.toString('utf8'))];
}

function stripCr(s: string): string {
  return s.charCodeAt(s.length - 1) === 13 ? s.slice(0, -1) : s;
}
