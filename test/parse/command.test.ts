import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { MailEvent } from '../../src/event/mail-event.js';
import { parseStreams } from '../../src/parse/command.js';

/** A slow sink with a tiny buffer, to exercise backpressure. */
function sink(): { out: Writable; text: () => string } {
  const parts: string[] = [];
  const out = new Writable({
    highWaterMark: 64,
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk.toString('utf8'));
      setImmediate(cb);
    },
  });
  return { out, text: () => parts.join('') };
}

const input =
  (s: string | Buffer, chunk = 7) =>
  () => {
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
    const parts: Buffer[] = [];
    for (let i = 0; i < b.length; i += chunk) parts.push(b.subarray(i, i + chunk));
    return Readable.from(parts);
  };

describe('mizugiwa parse output', () => {
  it('writes exactly one JSON object per input line, in input order, across files', async () => {
    const a =
      'Nov 27 10:00:00 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]\r\ngarbage\n\n' +
      'Nov 27 10:00:01 mx1 postfix/smtpd[1]: disconnect from unknown[192.0.2.1] ehlo=1 commands=1\n';
    const b = Buffer.concat([
      Buffer.from('2026-11-27 10:02:00 1TrBfO-0003Wx-Nj Completed\nbad \xff'),
      Buffer.from([0, 0xc3]),
    ]);
    const { out, text } = sink();
    const res = await parseStreams([input(a), input(b, 3)], out, { year: 2026, timezone: 'UTC', host: 'ex' });
    const lines = text().split('\n');
    expect(lines.pop()).toBe('');
    const events = lines.map((l) => JSON.parse(l) as MailEvent);
    expect(events.map((e) => e.kind)).toEqual([
      'connect',
      'unknown',
      'unknown',
      'disconnect',
      'removed',
      'unknown',
    ]);
    expect(events[0]!.raw).toBe('Nov 27 10:00:00 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]');
    expect(events[2]!.raw).toBe('');
    expect(events[4]!.host).toBe('ex');
    expect(events[5]!.raw).toBe('bad \u00ff\uFFFD\uFFFD');
    expect(res).toEqual({ lines: 6, kinds: { connect: 1, unknown: 3, disconnect: 1, removed: 1 } });
  });

  it('keeps a 1 MB line as one capped unknown record', async () => {
    const { out, text } = sink();
    await parseStreams([input(`a\n${'x'.repeat(1 << 20)}\nb\n`, 1 << 16)], out, {});
    const events = text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as MailEvent);
    expect(events).toHaveLength(3);
    expect(events[1]!.truncated).toBe(true);
    expect(events[1]!.raw.length).toBeLessThan(70_000);
  });
});
