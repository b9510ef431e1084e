// Property tests: whatever the bytes, parse() returns exactly one event, never throws, and the event
// serializes to valid JSON whose raw is well-formed text without NUL.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventKind, MailEvent } from '../../src/event/mail-event.js';
import { normalizeIp } from '../../src/parse/fields.js';
import { LineParser, RAW_CAP, TRUNCATION_MARKER } from '../../src/parse/parser.js';

const KINDS = new Set<EventKind>([
  'connect',
  'disconnect',
  'client',
  'reject',
  'queued',
  'message_id',
  'delivery',
  'removed',
  'expired',
  'bounce_notice',
  'auth',
  'auth_failure',
  'protocol_error',
  'lost_connection',
  'timeout',
  'no_mail',
  'pregreet',
  'postscreen',
  'dnsbl',
  'rate_limited',
  'filter',
  'milter',
  'tls',
  'warning',
  'error',
  'stats',
  'daemon',
  'unknown',
]);

const parser = new LineParser({ year: 2026, timezone: 'UTC', host: 'mx-exim' });

/** The invariants every event must hold, whatever the input. */
function check(ev: MailEvent): void {
  expect(KINDS.has(ev.kind)).toBe(true);
  expect(typeof ev.raw).toBe('string');
  expect(ev.raw.includes('\0')).toBe(false);
  expect((ev.raw as unknown as { isWellFormed(): boolean }).isWellFormed()).toBe(true);
  expect(ev.raw.length).toBeLessThanOrEqual(RAW_CAP + TRUNCATION_MARKER.length);
  const json = JSON.stringify(ev);
  expect(() => JSON.parse(json)).not.toThrow();
  expect(Buffer.from(json, 'utf8').toString('utf8')).toBe(json);
  if (ev.client_ip !== undefined) expect(normalizeIp(ev.client_ip)).toBe(ev.client_ip);
  if (ev.ts !== undefined) {
    expect(ev.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/);
    expect(Number.isNaN(Date.parse(ev.ts))).toBe(false);
    // the calendar day is real (Date.parse alone rolls 2026-02-30 over to March)
    const d = new Date(`${ev.ts.slice(0, 10)}T00:00:00Z`);
    expect(d.toISOString().slice(0, 10)).toBe(ev.ts.slice(0, 10));
  }
  if (ev.client_port !== undefined) expect(Number.isInteger(ev.client_port)).toBe(true);
  if (ev.reply_code !== undefined) expect(ev.reply_code >= 200 && ev.reply_code < 600).toBe(true);
  if (ev.kind === 'reject') expect(ev.reason).toBeDefined();
}

const fixtureLines: string[] = [
  'doc-postfix.ndjson',
  'doc-sendmail.ndjson',
  'doc-exim.ndjson',
  'real-postfix.ndjson',
]
  .flatMap((f) => readFileSync(join(import.meta.dirname, 'testdata', f), 'utf8').split('\n'))
  .filter((l) => l.length > 0)
  .map((l) => (JSON.parse(l) as { line: string }).line);

// Generous timeouts: these are thousands of runs, and CI machines are shared. No timing is asserted.
describe('parse() robustness', { timeout: 120_000 }, () => {
  it('random bytes: one event, no throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const ev = parser.parse(Buffer.from(bytes));
        check(ev);
      }),
      { numRuns: 3000 },
    );
  });

  it('random strings (lone surrogates, control characters): one event, no throw', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => {
        check(parser.parse(s));
      }),
      { numRuns: 3000 },
    );
  });

  it('real lines with random bytes spliced in: one event, no throw', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...fixtureLines),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 12 }),
        (line, pos, junk) => {
          const b = Buffer.from(line);
          const at = pos % (b.length + 1);
          check(parser.parse(Buffer.concat([b.subarray(0, at), Buffer.from(junk), b.subarray(at)])));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('structured noise around MTA prefixes: one event, no throw', () => {
    const prefix = fc.constantFrom(
      'Nov 27 10:00:00 mx postfix/smtpd[1]: ',
      'Nov 27 10:00:00 mx postfix/postscreen[1]: ',
      'Nov 27 10:00:00 mx postfix/smtp[1]: 3F1A22C0A1B: ',
      '2026-11-27T10:00:00.1+00:00 mx sm-mta[1]: 5ARA10aB004321: ',
      '2026-11-27 10:00:00 ',
      '2026-11-27 10:00:00 1TrBfO-0003Wx-Ni ',
      '<13>1 2026-11-27T10:00:00Z h app 1 - [x a="]\\"]"] ',
    );
    const word = fc.constantFrom(
      'reject: ',
      'RCPT from ',
      'unknown[',
      ']',
      ':',
      '; from=<',
      '>',
      ' to=<',
      'helo=<',
      'to=<',
      ', relay=',
      'status=',
      ' (',
      ')',
      '<= ',
      '=> ',
      '** ',
      'H=',
      '(',
      '[IPv6:',
      '2001:db8::1',
      '192.0.2.1',
      ':25',
      'ruleset=check_rcpt, ',
      'arg1=',
      'reject=',
      '550 5.1.1 ',
      'User unknown',
      '... ',
      ' ',
      ', ',
      '=',
      'x',
      '"',
      '\\',
    );
    fc.assert(
      fc.property(prefix, fc.array(word, { maxLength: 40 }), (pre, words) => {
        check(parser.parse(pre + words.join('')));
      }),
      { numRuns: 5000 },
    );
  });

  it('every real line cut at every position: one event each, no throw', () => {
    let n = 0;
    for (const line of fixtureLines.slice(0, 60)) {
      for (let i = 0; i <= line.length; i++) {
        check(parser.parse(line.slice(0, i)));
        n++;
      }
    }
    expect(n).toBeGreaterThan(1000);
  });

  it('NUL bytes and invalid UTF-8 become U+FFFD; the line is still parsed', () => {
    const ev = parser.parse(
      Buffer.concat([
        Buffer.from('Nov 27 10:00:00 mx postfix/smtpd[1]: connect from bad\0'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('[192.0.2.1]'),
      ]),
    );
    check(ev);
    expect(ev.kind).toBe('connect');
    expect(ev.client_ip).toBe('192.0.2.1');
    expect(ev.raw).toContain('\uFFFD');
  });

  it('impossible timestamps give no ts (and the line no envelope)', () => {
    for (const line of [
      'Feb 30 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]',
      'Nov 27 25:61:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]',
      '2026-13-01T10:00:00+00:00 mx sm-mta[1]: 5ARA10aB004342: <a@example.org>... User unknown',
      '2026-02-29 10:00:00 1TrBfO-0003Wx-Nj Completed',
      '<13>1 2026-04-31T10:00:00Z h postfix/smtpd 1 - - connect from unknown[192.0.2.1]',
    ]) {
      const ev = parser.parse(line);
      check(ev);
      expect(ev.ts, line).toBeUndefined();
    }
    expect(
      new LineParser({ year: 2028, timezone: 'UTC' }).parse(
        'Feb 29 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]',
      ).ts,
    ).toBe('2028-02-29T10:00:00+00:00');
  });

  it('random timestamps in every envelope: any ts given is a real instant', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 0, max: 39 }),
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 0, max: 99 }),
        (a, b, c, d) => {
          const p2 = (n: number) => String(n).padStart(2, '0');
          for (const line of [
            `Jan ${p2(b)} ${p2(a)}:${p2(c)}:${p2(d)} mx postfix/smtpd[1]: connect from unknown[192.0.2.1]`,
            `2026-${p2(a)}-${p2(b)}T${p2(c)}:${p2(d)}:00+${p2(a)}:${p2(d)} mx sm-mta[1]: x`,
            `2026-${p2(a)}-${p2(b)} ${p2(c)}:${p2(d)}:00 1TrBfO-0003Wx-Nj Completed`,
            `<1>1 2026-${p2(a)}-${p2(b)}T${p2(c)}:00:00Z h app 1 - - x`,
          ])
            check(parser.parse(line));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a 1 MB line is one unknown event with a capped raw and the truncation marker', () => {
    const big = `Nov 27 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1] ${'A'.repeat(1 << 20)}`;
    const ev = parser.parse(big);
    check(ev);
    expect(ev.kind).toBe('unknown');
    expect(ev.truncated).toBe(true);
    expect(ev.raw.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(ev.raw.length).toBe(RAW_CAP + TRUNCATION_MARKER.length);
    const bytes = parser.parse(Buffer.alloc(1 << 20, 0xff));
    check(bytes);
    expect(bytes.kind).toBe('unknown');
  });

  // A regex with catastrophic backtracking would not finish on these inputs: the test would hang into
  // vitest's timeout. No timing figure is asserted (speed is measured in bench/parse).
  it('pathological repetition: one event each, no throw', () => {
    const shapes = [
      `Nov 27 10:00:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from ${'['.repeat(20000)}`,
      `Nov 27 10:00:00 mx postfix/smtpd[1]: warning: ${'a['.repeat(20000)}`,
      `Nov 27 10:00:00 mx postfix/anvil[1]: statistics: max connection rate ${'1 '.repeat(20000)}`,
      `2026-11-27T10:00:00Z mx sm-mta[1]: 5ARA10aB004321: ${'<'.repeat(20000)}... User unknown`,
      `2026-11-27T10:00:00Z mx sm-mta[1]: 5ARA10aB004321: to=${'<a>,'.repeat(10000)}, stat=Sent`,
      `2026-11-27 10:00:00 H=${'('.repeat(20000)} rejected RCPT <a>: x`,
      `2026-11-27 10:00:00 1TrBfO-0003Wx-Ni => a ${'X="'.repeat(10000)}`,
      `<13>1 2026-11-27T10:00:00Z h app 1 - ${'['.repeat(20000)}`,
      `${'Nov 27 '.repeat(5000)}`,
    ];
    for (const s of shapes) check(parser.parse(s));
  });
});
