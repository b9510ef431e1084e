import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rng } from '../../bench/lib/rng.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { LineParser } from '../../src/parse/parser.js';
import { transcodeEvent } from '../../src/store/json-rowbinary.js';
import { eventRowBinary, RowBinaryWriter, type RowSpan } from '../../src/store/rowbinary.js';
import { harvestEvents, traceEvents } from './fixtures.js';
import { harvestLog, parseLog, sendmailTraceEvents, traceLogEvents } from './parsed.js';

// transcodeEvent against JSON.parse + eventRowBinary: when it takes a record it must write the
// same bytes; when it does not, it must leave the writer as it was.

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0, 250);
const enc = new TextEncoder();

const bytesOf = (r: RowSpan) => Buffer.from(r.chunk.subarray(r.start, r.end));

/** What the slow path writes for `json`, or undefined where it throws. */
function reference(json: Uint8Array, now: number): Buffer | undefined {
  let e: unknown;
  try {
    e = JSON.parse(new TextDecoder().decode(json));
  } catch {
    return undefined;
  }
  try {
    return bytesOf(eventRowBinary(new RowBinaryWriter(1024), e, now));
  } catch {
    return undefined;
  }
}

const PROBE = {
  id: 'probe:1',
  ts: '2026-11-27T10:00:00Z',
  kind: 'connect',
  host: 'mx1',
  client_ip: '192.0.2.1',
  raw: 'probe',
};
const PROBE_ROW = reference(enc.encode(JSON.stringify(PROBE)), NOW)!;

/**
 * transcodeEvent on `json`, checked against the slow path; whether it took it. The writer has a
 * row before and small chunks, so rows also move to a new chunk while being written.
 */
function check(json: Uint8Array | string, now = NOW, start?: number, end?: number): boolean {
  const buf = typeof json === 'string' ? enc.encode(json) : json;
  const w = new RowBinaryWriter(256);
  w.beginRow();
  w.string('a row before');
  const before = w.endRow(null);
  const beforeBytes = bytesOf(before);
  let ok = false;
  expect(() => {
    ok = transcodeEvent(w, buf, now, start, end);
  }).not.toThrow();
  if (ok) {
    const ref = reference(buf.subarray(start ?? 0, end ?? buf.length), now);
    expect(ref, 'the slow path takes what the fast path took').toBeDefined();
    expect(bytesOf(w.endRow(null)).toString('hex')).toBe(ref!.toString('hex'));
  } else {
    const probe = eventRowBinary(w, PROBE, NOW);
    expect(bytesOf(probe)).toEqual(PROBE_ROW);
    if (probe.chunk === before.chunk) expect(probe.start).toBe(before.end);
  }
  expect(bytesOf(before)).toEqual(beforeBytes);
  return ok;
}

const json = (e: unknown) => JSON.stringify(e);
const base: MailEvent = {
  id: 'mx1:mail.log:100',
  ts: '2026-11-27T10:15:00.123456+01:00',
  host: 'mx1',
  program: 'postfix/smtpd',
  pid: 101,
  mta: 'postfix',
  kind: 'connect',
  client_ip: '192.0.2.10',
  client_host: 'out.sender.example.org',
  raw: 'Nov 27 10:15:00 mx1 postfix/smtpd[101]: connect from out.sender.example.org[192.0.2.10]',
};
const withBase = (over: Record<string, unknown>) => json({ ...base, ...over });

/** Every event the parser makes of the fixture logs: Postfix, Sendmail and Exim. */
function parsedEvents(): MailEvent[] {
  const out: MailEvent[] = [];
  const dir = join(import.meta.dirname, '..', 'parse', 'testdata');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ndjson'))) {
    const parser = new LineParser({ year: 2026, timezone: 'UTC', host: 'mx-exim' });
    readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .forEach((l, i) => {
        out.push({ ...parser.parse((JSON.parse(l) as { line: string }).line), id: `${file}:${i}` });
      });
  }
  out.push(...traceLogEvents(), ...sendmailTraceEvents(), ...parseLog(harvestLog([3, 2, 1]), 'harvest.log'));
  out.push(...traceEvents(), ...harvestEvents(2, 3));
  return out;
}

describe('transcodeEvent', () => {
  const events = parsedEvents();

  it('takes the JSON of every parsed event, writing what eventRowBinary writes', () => {
    const mtas = new Set(events.map((e) => e.mta).filter((m) => m !== undefined));
    expect([...mtas].sort()).toEqual(['exim', 'postfix', 'sendmail']);
    expect(events.length).toBeGreaterThan(500);
    for (const e of events) expect(check(json(e)), json(e)).toBe(true);
  });

  it('writes rows one after the other as eventRowBinary does', () => {
    const a = new RowBinaryWriter(4096);
    const b = new RowBinaryWriter(4096);
    const fast: Buffer[] = [];
    const slow: Buffer[] = [];
    for (const e of events) {
      const buf = Buffer.from(json(e));
      expect(transcodeEvent(a, buf, NOW)).toBe(true);
      fast.push(bytesOf(a.endRow(e)));
      slow.push(bytesOf(eventRowBinary(b, JSON.parse(buf.toString('utf8')), NOW)));
    }
    expect(Buffer.concat(fast).equals(Buffer.concat(slow))).toBe(true);
  });

  it('reads a range of a larger buffer', () => {
    const inner = enc.encode(withBase({ text: 'ünïcödé ✓' }));
    const outer = new Uint8Array(inner.length + 20).fill(0x7b);
    outer.set(inner, 10);
    expect(check(outer, NOW, 10, 10 + inner.length)).toBe(true);
    expect(check(outer, NOW, 10, 9 + inner.length)).toBe(false);
    expect(check(outer, NOW, 9, 10 + inner.length)).toBe(false);
    for (const [s, e] of [
      [-1, 5],
      [5, 4],
      [0, outer.length + 1],
      [0.5, 10],
      [Number.NaN, 10],
    ] as const) {
      expect(check(outer, NOW, s, e)).toBe(false);
    }
  });

  it('copies unicode and decodes escapes', () => {
    const strings = [
      'ünïcödé ✓ 日本語 😀 👩‍👩‍👧 \u2028\u2029 \u007f',
      'quote " backslash \\ slash / newline \n tab \t cr \r bs \b ff \f',
      'NUL \u0000 and \u0001 \u001f controls',
      'lone \ud800 high, lone \udc00 low, reversed \ude00\ud83d, pair \ud83d\ude00, end \ud83d',
      '\ud83d',
      '\udfff\ud800\udc00',
      '"',
      '\\',
      '',
    ];
    for (const s of strings) {
      for (const field of ['raw', 'text', 'host', 'id', 'kind', 'sender', 'client_host']) {
        expect(check(withBase({ [field]: s })), `${field}: ${JSON.stringify(s)}`).toBe(
          !(s === '' && (field === 'id' || field === 'kind')),
        );
      }
      expect(check(withBase({ recipients: [s, 'b@example.test', s] }))).toBe(true);
    }
    // Escapes JSON.stringify does not write.
    for (const e of [
      '\\u00e9',
      '\\u00E9',
      '\\u00c3\\u00a9',
      '\\/',
      '\\ud83d\\ude00',
      '\\uD83D\\uDE00',
      '\\u0041',
    ]) {
      expect(check(withBase({ text: 'X' }).replace('"text":"X"', `"text":"a${e}b"`)), e).toBe(true);
    }
  });

  it('leaves invalid strings to JSON.parse', () => {
    const t = withBase({ text: 'X' });
    for (const bad of ['\\x', '\\u12', '\\u12g4', '\\', '\u0001', '\u0000', '\n', '\t']) {
      expect(check(t.replace('"text":"X"', `"text":"${bad}"`)), JSON.stringify(bad)).toBe(false);
    }
  });

  it('takes a 1 MB raw line, with and without escapes', () => {
    const big = 'x'.repeat(1 << 20);
    expect(check(withBase({ raw: big }))).toBe(true);
    expect(check(withBase({ raw: `${big}"é\n${big}` }))).toBe(true);
    expect(check(withBase({ raw: `é\n${'\ud800'.repeat(70_000)}` }))).toBe(true);
    expect(check(withBase({ recipients: Array.from({ length: 300 }, (_, i) => `r${i}@example.test`) }))).toBe(
      true,
    );
  });

  it('finds the end of long strings wherever they lie in their buffer', () => {
    // Long runs are read four bytes at a time from the ArrayBuffer: any alignment, any byte.
    const rnd = rng(99);
    const specials = [
      '"',
      '\\',
      '\u0001',
      '\u001f',
      ' ',
      '!',
      '#',
      '[',
      ']',
      '~',
      '\u007f',
      'é',
      '€',
      '😀',
      '\u0080',
    ];
    for (let n = 0; n < 400; n++) {
      const len = 16 + Math.floor(rnd() * 80);
      const chars = Array.from({ length: len }, () => 'abcdefgh'[Math.floor(rnd() * 8)]!);
      for (let k = Math.floor(rnd() * 3); k >= 0; k--)
        chars[Math.floor(rnd() * len)] = specials[Math.floor(rnd() * specials.length)]!;
      const text = enc.encode(withBase({ raw: chars.join(''), text: chars.slice(5).join('') }));
      const shift = Math.floor(rnd() * 8);
      const ab = new ArrayBuffer(text.length + 16);
      const view = new Uint8Array(ab, shift, text.length);
      view.set(text);
      expect(check(view)).toBe(true);
      // A raw control byte or invalid UTF-8 in place of an ASCII byte of the raw string.
      const bad = new Uint8Array(ab, shift, text.length);
      let at = Buffer.from(text).indexOf('"raw":"') + 7 + Math.floor(rnd() * len);
      while (bad[at]! >= 0x80) at--;
      const was = bad[at]!;
      bad[at] = pick([0x01, 0x1f, 0x0a, 0x80, 0xff, 0xc3]);
      expect(check(bad)).toBe(false);
      bad[at] = was;
      expect(check(new Uint8Array(ab, shift, text.length))).toBe(true);
    }
    function pick<T>(xs: readonly T[]): T {
      return xs[Math.floor(rnd() * xs.length)]!;
    }
  });

  it('leaves invalid UTF-8 to the slow path', () => {
    const head = enc.encode(withBase({ text: 'AB' }));
    const at = Buffer.from(head).indexOf('AB');
    for (const seq of [
      [0x80],
      [0xbf],
      [0xc0, 0x80],
      [0xc1, 0xbf],
      [0xc3],
      [0xe0, 0x80, 0x80],
      [0xe0, 0x9f, 0xbf],
      [0xed, 0xa0, 0x80],
      [0xed, 0xbf, 0xbf],
      [0xe2, 0x82],
      [0xf0, 0x80, 0x80, 0x80],
      [0xf0, 0x8f, 0xbf, 0xbf],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf5, 0x80, 0x80, 0x80],
      [0xf0, 0x9f, 0x98],
      [0xff],
    ]) {
      const buf = new Uint8Array([...head.subarray(0, at), ...seq, ...head.subarray(at + 2)]);
      expect(check(buf), seq.join(',')).toBe(false);
    }
    for (const seq of [
      [0xc2, 0x80],
      [0xdf, 0xbf],
      [0xe0, 0xa0, 0x80],
      [0xed, 0x9f, 0xbf],
      [0xee, 0x80, 0x80],
      [0xef, 0xbf, 0xbf],
      [0xf0, 0x90, 0x80, 0x80],
      [0xf4, 0x8f, 0xbf, 0xbf],
    ]) {
      const buf = new Uint8Array([...head.subarray(0, at), ...seq, ...head.subarray(at + 2)]);
      expect(check(buf), seq.join(',')).toBe(true);
    }
    // A byte order mark, which TextDecoder drops but Buffer.toString() keeps.
    expect(check(new Uint8Array([0xef, 0xbb, 0xbf, ...head]))).toBe(false);
  });

  it('reads numbers as JSON.parse does', () => {
    const take = [
      { pid: 0 },
      { pid: 4294967295 },
      { client_port: 65535, reply_code: 0 },
      { size: 2 ** 53 - 1 },
      { delay: 1.5, count: 0.1 },
      { delay: 0.30000000000000004, count: 1.7976931348623157e308 },
      { delay: 5e-324, count: 123456789.12345679 },
      { delay: 1e-7, count: 1e21 },
      { delay: 3.4028235677973366e38, count: -2.5 },
    ];
    for (const over of take) expect(check(withBase(over)), json(over)).toBe(true);
    const t = withBase({ pid: 7 });
    const put = (field: string, v: string) => t.replace('"pid":7', `"${field}":${v}`);
    for (const v of [
      '0',
      '-0',
      '1e3',
      '1E3',
      '1e+3',
      '10e-1',
      '1.0',
      '0.5e1',
      '4294967295',
      '4294967295.0',
    ]) {
      expect(check(put('pid', v)), v).toBe(true);
    }
    for (const v of [
      '4294967296',
      '-1',
      '1.5',
      '1e-3',
      '1e400',
      '01',
      '1.',
      '.5',
      '+1',
      '-',
      '1e',
      '1e+',
      '0x10',
      'NaN',
    ]) {
      expect(check(put('pid', v)), v).toBe(false);
    }
    expect(check(put('size', '9007199254740991'))).toBe(true);
    expect(check(put('size', '9007199254740992'))).toBe(false);
    expect(check(put('client_port', '65536'))).toBe(false);
    for (const v of [
      '-0',
      '-0.0',
      '0e0',
      '123456789012345678901234567890',
      '1.00000000000000011102230246251565',
      '2.2250738585072011e-308',
      '4.9e-324',
      '1e-400',
      '-1e-400',
      '17976931348623157e292',
      '9007199254740993',
      '0.1e23',
      '1e22',
      '1e23',
    ]) {
      expect(check(put('delay', v)), v).toBe(true);
      expect(check(put('count', v)), v).toBe(true);
    }
    for (const v of ['1e309', '-1e400']) expect(check(put('count', v)), v).toBe(false);
  });

  it('takes null and missing values as eventRowBinary does', () => {
    const { sender: _, ...noSender } = { ...base, sender: 'x' };
    for (const e of [
      noSender,
      { ...base, sender: null },
      { ...base, sender: '' },
      { ...base, recipients: [] },
      { ...base, recipients: null },
      { ...base, recipients: ['a@b.test'] },
      { ...base, command_counts: null },
      { ...base, client_ip: null, client_port: null, pid: null, delay: null, count: null, size: null },
      { ...base, client_ip: '' },
      { ...base, host: null, text: null, truncated: null },
      { ...base, ts: null },
      { id: 'x', kind: 'k', raw: '' },
    ]) {
      expect(check(json(e)), json(e)).toBe(true);
    }
    const { ts: _ts, ...noTs } = base;
    expect(check(json(noTs))).toBe(true);
    expect(check(json(noTs), 1.5)).toBe(true);
    for (const now of [Number.NaN, Number.POSITIVE_INFINITY, -1, 2 ** 60])
      expect(check(json(noTs), now)).toBe(false);
  });

  it('leaves records eventRowBinary refuses, or would give another id, to the slow path', () => {
    const { id: _id, ...noId } = base;
    const { kind: _kind, ...noKind } = base;
    const { raw: _raw, ...noRaw } = base;
    for (const e of [
      noId,
      noKind,
      noRaw,
      { ...base, id: '' },
      { ...base, id: null },
      { ...base, id: 7 },
      { ...base, kind: '' },
      { ...base, kind: null },
      { ...base, raw: null },
      { ...base, raw: 5 },
      { ...base, recipients: [null] },
      { ...base, recipients: ['a', 1] },
      { ...base, recipients: 'a@b.test' },
      { ...base, recipients: [['a']] },
      { ...base, host: { a: 1 } },
      { ...base, text: ['a'] },
      { ...base, host: 5 },
      { ...base, host: true },
      { ...base, pid: '101' },
      { ...base, pid: true },
      { ...base, delay: '0.5' },
      { ...base, client_ip: 'not an address' },
      { ...base, client_ip: 5 },
      { ...base, client_ip: '256.1.1.1' },
      { ...base, ts: 'yesterday' },
      { ...base, ts: true },
      { ...base, future_field: 'x' },
      { ...base, future_field: 0 },
      { ...base, future_field: {} },
    ]) {
      expect(check(json(e)), json(e)).toBe(false);
    }
    for (const text of ['[]', '"x"', '1', 'null', 'true', '', ' ', '{}', '{"kind":"k","raw":"r"}']) {
      expect(check(text), text).toBe(false);
    }
  });

  it('skips unknown keys whose value is null, and a key `extra`', () => {
    expect(check(withBase({ future_field: null, constructor: null, toString: null }))).toBe(true);
    expect(check(withBase({ extra: { a: [1, { b: null }] } }))).toBe(true);
    expect(check(withBase({ extra: 'x' }))).toBe(true);
    const t = withBase({ pid: 7 });
    expect(check(t.replace('"pid":7', '"__proto__":null'))).toBe(true);
    expect(check(t.replace('"pid":7', '"__proto__":{"kind":"x"}'))).toBe(false);
    expect(check(t.replace('"pid":7', '"__proto__":1'))).toBe(false);
    // An escaped key is not matched to its column.
    expect(check(t.replace('"pid":7', '"p\\u0069d":7'))).toBe(false);
  });

  it('leaves duplicate keys to JSON.parse', () => {
    const t = withBase({ pid: 7 });
    for (const dup of [
      '"host":"mx2"',
      '"host":"mx1"',
      '"host":null',
      '"id":"other"',
      '"kind":"x"',
      '"raw":"x"',
      '"ts":null',
    ]) {
      expect(check(t.replace('"pid":7', dup)), dup).toBe(false);
      expect(check(t.replace('"pid":7', `"pid":7,${dup}`)), dup).toBe(false);
    }
    expect(check(t.replace('"pid":7', '"nope":null,"nope":null'))).toBe(true);
  });

  it('reads times as tsMicros does', () => {
    for (const ts of [
      '2026-11-27T10:15:00+01:00',
      '2026-11-27T10:15:00.1Z',
      '2026-11-27T10:15:00.123456789-05:30',
      '2026-11-27T10:15:00,5+0130',
      '2026-11-27T10:15:00.000001+01',
      '2026-11-27 10:15:00',
      '2026-11-27t10:15:00z',
      '2026-11-27T10:15:00.123456789',
      '2026-11-27T23:59:60Z',
      '2026-02-31T00:00:00Z',
      '2299-12-31T23:59:59.999999Z',
      '1970-01-01T00:00:00Z',
      '2026-11-27T10:15:00 Z',
    ]) {
      expect(check(withBase({ ts })), ts).toBe(true);
      // Again, from the cache of the last second.
      expect(check(withBase({ ts })), ts).toBe(true);
    }
    for (const ts of [
      '2026-11-27T10:15:00.1234567890Z',
      '2026-11-27T10:15:00.Z',
      '2026-11-27T10:15:00+1',
      '2026-11-27T10:15:00+01:0',
      '2026-13-27T10:15:00Z',
      '2026-11-27T24:00:00Z',
      '1969-12-31T23:59:59Z',
      '2300-01-01T00:00:00Z',
      '2026-11-27',
      '',
      '２０２６-11-27T10:15:00Z',
    ]) {
      expect(check(withBase({ ts })), ts).toBe(false);
    }
    expect(check(withBase({ ts: 'X' }).replace('"ts":"X"', '"ts":"2026-11-27T10:15:00\\u002b01:00"'))).toBe(
      false,
    );
    // Not even when the same second was just converted (isoSeconds would take it from its cache).
    expect(check(withBase({ ts: '2026-11-27T10:15:00.1Z' }))).toBe(true);
    expect(check(withBase({ ts: '2026-11-27T10:15:00.1234567890Z' }))).toBe(false);
    for (const ts of [0, 1.5, Date.UTC(2026, 10, 27), 9e12])
      expect(check(withBase({ ts })), String(ts)).toBe(true);
    for (const ts of [-1, 1e13, 1e300]) expect(check(withBase({ ts })), String(ts)).toBe(false);
  });

  it('reads times in the second it remembers without a string, exactly as tsMicros does', () => {
    // The first converts the slow way and is remembered; the rest share its 19 bytes.
    const head = '2026-11-27T10:15:00';
    for (const tail of ['Z', '.1Z', '.000001Z', '.123456Z', '.1234567Z', '.123456789Z', '.999999999Z', 'Z']) {
      expect(check(withBase({ ts: `${head}${tail}` })), tail).toBe(true);
    }
    // Tails it does not read itself go the slow way, with the slow way's answer.
    for (const tail of ['+01:00', 'z', ',5Z', '.Z', '.12a4Z', '.1234567890Z', 'ZZ', '.5+01:00']) {
      check(withBase({ ts: `${head}${tail}` }));
      // The remembered second is still the one of the head, not of the odd time.
      expect(check(withBase({ ts: `${head}.5Z` })), tail).toBe(true);
    }
    // The parser's own form: an offset after the fraction, remembered with the second.
    for (const tail of [
      '+00:00',
      '.25+00:00',
      '.123456+00:00',
      '+00:00',
      '+01:00',
      '.5+01:00',
      '.5 +01:00',
      '+0100',
    ]) {
      expect(check(withBase({ ts: `${head}${tail}` })), tail).toBe(true);
    }
    for (const tail of [',5+00:00', ',5+00:00', '.5+00:00'])
      expect(check(withBase({ ts: `${head}${tail}` })), tail).toBe(true);
    // Same digits, another separator or second: another head.
    expect(check(withBase({ ts: '2026-11-27 10:15:00.5Z' }))).toBe(true);
    expect(check(withBase({ ts: '2026-11-27T10:15:01.5Z' }))).toBe(true);
    expect(check(withBase({ ts: '2026-11-27T10:15:00.5Z' }))).toBe(true);
  });

  it('converts random times as tsMicros does, and takes every one it takes', () => {
    const rnd = rng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const dd = (max: number) => String(Math.floor(rnd() * max)).padStart(2, '0');
    const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rnd() * 10)).join('');
    const years = [
      '0000',
      '0026',
      '0099',
      '0100',
      '1899',
      '1900',
      '1969',
      '1970',
      '2026',
      '2255',
      '2299',
      '2300',
      '9999',
    ];
    for (let n = 0; n < 3000; n++) {
      const year = rnd() < 0.7 ? pick(years) : digits(4);
      const frac = pick([
        '',
        '',
        `.${digits(1 + Math.floor(rnd() * 9))}`,
        `,${digits(1 + Math.floor(rnd() * 9))}`,
      ]);
      const off = pick([
        '',
        'Z',
        'z',
        `+${dd(100)}`,
        `-${dd(100)}${dd(100)}`,
        `+${dd(100)}:${dd(100)}`,
        `-${dd(24)}:${dd(60)}`,
      ]);
      const ts = `${year}-${dd(14)}-${dd(33)}${pick(['T', ' ', 't'])}${dd(25)}:${dd(61)}:${dd(62)}${frac}${off}`;
      const text = withBase({ ts });
      expect(check(text), ts).toBe(reference(enc.encode(text), NOW) !== undefined);
    }
  });

  it('reads client_ip as eventRowBinary does', () => {
    for (const ip of [
      '192.0.2.1',
      '0.0.0.0',
      '255.255.255.255',
      '010.001.0.1',
      '2001:db8::25',
      'IPv6:2001:db8::1',
      '::ffff:192.0.2.1',
      '::',
      'ipv6:::1',
    ]) {
      expect(check(withBase({ client_ip: ip })), ip).toBe(true);
    }
    expect(
      check(withBase({ client_ip: 'X' }).replace('"client_ip":"X"', '"client_ip":"10.0.0.\\u0031"')),
    ).toBe(true);
    for (const ip of ['1.2.3', '1.2.3.4.5', '1.2.3.4 ', '1234.1.1.1', 'fe80::1%eth0x'])
      check(withBase({ client_ip: ip }));
  });

  it('writes command_counts as JSON.stringify of its value', () => {
    const t = withBase({ command_counts: 'X' });
    for (const v of [
      '{"ehlo":{"ok":1,"total":1},"rcpt":{"ok":0,"total":1},"commands":{"ok":3,"total":4}}',
      '{}',
      '[]',
      '{ "ehlo" : { "ok" : 1 , "total" : 1 } }',
      '{"2":{"ok":1},"1":{"ok":2},"a":1}',
      '{"a":1,"a":2}',
      '{"a":{"x":1,"x":2},"b":{"x":1}}',
      '{"a":1.50,"b":-0,"c":1e2,"d":12345678901234567890}',
      '{"a":"\\u00e9\\n","b":"é"}',
      '{"__proto__":{"ok":1},"b":2}',
      '{"a":[1,[2,[3,{"b":null,"c":true,"d":false}]]]}',
      '"text"',
      '"te\\"xt"',
      '5',
      '-0',
      'true',
      'false',
      '[1, 2]',
      '{"":1}',
      '{"é😀":{"ok":1}}',
      '{"\\u0061":1,"b":{"\\u0062":2}}',
    ]) {
      expect(check(t.replace('"command_counts":"X"', `"command_counts":${v}`)), v).toBe(true);
    }
    for (const v of [
      '{"a":1,}',
      '{"a"}',
      '[1,]',
      '{"a":01}',
      '{a:1}',
      '{"a":1',
      '[',
      '{"a":"\\x"}',
      'tru',
      'nul',
    ]) {
      expect(check(t.replace('"command_counts":"X"', `"command_counts":${v}`)), v).toBe(false);
    }
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(check(t.replace('"command_counts":"X"', `"command_counts":${deep(10)}`))).toBe(true);
    expect(check(t.replace('"command_counts":"X"', `"command_counts":${deep(5000)}`))).toBe(false);
  });

  it('writes truncated as eventRowBinary does', () => {
    const t = withBase({ truncated: 'X' });
    for (const v of [
      'true',
      'false',
      '1',
      '1.0',
      '1e0',
      '0',
      '2',
      '"true"',
      '"tru\\u0065"',
      '"yes"',
      '""',
      '[]',
      '{"a":1}',
      'null',
    ]) {
      expect(check(t.replace('"truncated":"X"', `"truncated":${v}`)), v).toBe(true);
    }
  });

  it('takes JSON whitespace and refuses garbage', () => {
    const t = withBase({ recipients: ['a', 'b'], command_counts: { a: { ok: 1 } } });
    expect(check(` \t\r\n${t} \n`)).toBe(true);
    expect(check(JSON.stringify(JSON.parse(t), null, 2))).toBe(true);
    expect(check(JSON.stringify(JSON.parse(t), null, '\t'))).toBe(true);
    for (const bad of [
      `${t}x`,
      `${t}}`,
      `${t},`,
      `x${t}`,
      `${t}\u00a0`,
      `\u00a0${t}`,
      `${t}\u000b`,
      `${t}${t}`,
    ]) {
      expect(check(bad), bad.slice(-5)).toBe(false);
    }
    const b = enc.encode(t);
    for (let n = 0; n < b.length; n++) expect(check(b.subarray(0, n))).toBe(false);
    expect(check(b)).toBe(true);
  });

  it('agrees with the slow path on thousands of mutated records, and never throws', () => {
    const rnd = rng(20261127);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const randomString = (): string => {
      const n = Math.floor(rnd() * 12);
      let s = '';
      for (let i = 0; i < n; i++) {
        const r = rnd();
        s +=
          r < 0.5
            ? String.fromCharCode(0x20 + Math.floor(rnd() * 95))
            : r < 0.6
              ? String.fromCharCode(Math.floor(rnd() * 0x20))
              : r < 0.7
                ? pick(['"', '\\', '\u007f', '\u2028', 'é', '日'])
                : r < 0.8
                  ? String.fromCharCode(0xd800 + Math.floor(rnd() * 0x800))
                  : r < 0.9
                    ? String.fromCodePoint(0x10000 + Math.floor(rnd() * 0xfffff))
                    : String.fromCharCode(Math.floor(rnd() * 0x10000));
      }
      return s;
    };
    const randomValue = (depth = 0): unknown => {
      const r = rnd();
      if (r < 0.25) return randomString();
      if (r < 0.4) return pick([0, -0, 1, 65535, 65536, 2 ** 32, 2 ** 53, -1, 1.5, 1e-7, 1e300, rnd() * 1e6]);
      if (r < 0.5) return null;
      if (r < 0.6) return rnd() < 0.5;
      if (r < 0.75 && depth < 3)
        return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(depth + 1));
      if (depth < 3) return { [randomString()]: randomValue(depth + 1), ok: 1 };
      return 'leaf';
    };
    const fields = [
      'id',
      'ts',
      'host',
      'pid',
      'kind',
      'client_ip',
      'sender',
      'recipients',
      'size',
      'delay',
      'count',
      'command_counts',
      'truncated',
      'text',
      'raw',
      'extra',
      'unknown_key',
      '__proto__',
    ];
    let fast = 0;
    const N = 4000;
    for (let n = 0; n < N; n++) {
      const e: Record<string, unknown> = { ...pick(events) };
      const edits = Math.floor(rnd() * 3);
      for (let k = 0; k < edits; k++) {
        const f = rnd() < 0.7 ? pick(fields) : pick(Object.keys(e));
        const r = rnd();
        if (r < 0.25) delete e[f];
        else if (r < 0.5) e[f] = randomString();
        else if (r < 0.6 && f === 'recipients') e[f] = [randomString(), randomString()];
        else Object.defineProperty(e, f, { value: randomValue(), enumerable: true, writable: true });
      }
      let buf = Buffer.from(JSON.stringify(e));
      const r = rnd();
      if (r < 0.2) {
        for (let k = 0, flips = 1 + Math.floor(rnd() * 3); k < flips; k++) {
          buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256);
        }
      } else if (r < 0.3) {
        buf[Math.floor(rnd() * buf.length)] = pick([
          0x22, 0x5c, 0x2c, 0x3a, 0x7b, 0x7d, 0x5b, 0x5d, 0x20, 0x30, 0x2d, 0x65,
        ]);
      } else if (r < 0.35) buf = buf.subarray(0, Math.floor(rnd() * buf.length));
      else if (r < 0.4) {
        const at = Math.floor(rnd() * buf.length);
        buf = Buffer.concat([
          buf.subarray(0, at),
          Buffer.from(pick([' ', '\n', '\t', '\u00a0', ',', '""', 'null'])),
          buf.subarray(at),
        ]);
      }
      if (check(buf, rnd() < 0.9 ? NOW : rnd() * 4e12)) fast++;
    }
    // Most untouched and many edited records still take the fast path.
    expect(fast).toBeGreaterThan(N * 0.3);
    expect(fast).toBeLessThan(N * 0.95);
  });
});
