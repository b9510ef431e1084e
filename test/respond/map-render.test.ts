import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/respond/entry.js';
import { createPostfixMap, postfixHandKeys, postfixKey } from '../../src/respond/postfix/access-map.js';
import { parseTargets } from '../../src/respond/safety.js';
import { BEGIN, composeText, END, SectionError, splitSection } from '../../src/respond/section.js';
import {
  createSendmailMap,
  sendmailHandKeys,
  sendmailKey,
  sendmailValue,
} from '../../src/respond/sendmail/access-db.js';
import { parseTarget } from '../../src/respond/target.js';

const T = (s: string) => {
  const r = parseTarget(s);
  if (!r.ok) throw new Error(r.error);
  return r.target;
};
const entry = (target: string, over: Partial<Entry> = {}): Entry => ({
  target,
  reply: '450 4.7.1 Too many unknown recipients; try later',
  expires_at: Date.parse('2026-11-27T12:10:00Z'),
  decision_id: `d-${target}`,
  detector: 'dha',
  created_at: '2026-11-27T12:00:00Z',
  ...over,
});

describe('postfix keys', () => {
  it('hash/lmdb: addresses and octet-aligned IPv4 prefixes only', () => {
    expect(postfixKey(T('192.0.2.7'), 'hash')).toEqual({ key: '192.0.2.7' });
    expect(postfixKey(T('192.0.2.0/24'), 'hash')).toEqual({ key: '192.0.2' });
    expect(postfixKey(T('10.20.0.0/16'), 'lmdb')).toEqual({ key: '10.20' });
    expect(postfixKey(T('2001:db8::1'), 'hash')).toEqual({ key: '2001:db8::1' });
    expect(postfixKey(T('192.0.0.0/20'), 'hash')).toMatchObject({
      error: expect.stringMatching(/use respond\.map_type cidr/),
    });
    expect(postfixKey(T('2001:db8::/64'), 'hash')).toMatchObject({
      error: expect.stringMatching(/IPv6 prefix/),
    });
  });

  it('cidr: any prefix', () => {
    expect(postfixKey(T('192.0.2.7'), 'cidr')).toEqual({ key: '192.0.2.7' });
    expect(postfixKey(T('192.0.0.0/20'), 'cidr')).toEqual({ key: '192.0.0.0/20' });
    expect(postfixKey(T('2001:db8::/64'), 'cidr')).toEqual({ key: '2001:db8::/64' });
  });
});

describe('sendmail keys and values', () => {
  it('Connect: tags, IPv6: for v6 addresses, octet prefixes', () => {
    expect(sendmailKey(T('192.0.2.7'))).toEqual({ key: 'Connect:192.0.2.7' });
    expect(sendmailKey(T('192.0.2.0/24'))).toEqual({ key: 'Connect:192.0.2' });
    expect(sendmailKey(T('2001:db8::1'))).toEqual({ key: 'Connect:IPv6:2001:db8::1' });
    expect(sendmailKey(T('192.0.2.0/25'))).toHaveProperty('error');
    expect(sendmailKey(T('2001:db8::/48'))).toHaveProperty('error');
  });
  it('ERROR:dsn:"reply"', () => {
    expect(sendmailValue('450 4.7.1 Too many; try later')).toBe(
      'ERROR:4.7.1:"450 4.7.1 Too many; try later"',
    );
  });
});

describe('administrator keys', () => {
  it('postfix hash: addresses and partial addresses; hostnames ignored', () => {
    const text = [
      '# partners',
      '192.0.2 OK',
      '198.51.100.7 REJECT',
      '  continued line 203.0.113.1',
      'mail.example.com OK',
      '2001:db8::25 OK',
      '10 OK',
    ].join('\n');
    expect(postfixHandKeys(text, 'hash').map((t) => t.text)).toEqual([
      '192.0.2.0/24',
      '198.51.100.7',
      '2001:db8::25',
      '10.0.0.0/8',
    ]);
  });
  it('postfix cidr: patterns, brackets, if/endif skipped', () => {
    const text = 'if 10.0.0.0/8\n10.1.0.0/16 OK\nendif\n[2001:db8::]/48 OK\n192.0.2.7/24 OK\n';
    expect(postfixHandKeys(text, 'cidr').map((t) => t.text)).toEqual([
      '10.1.0.0/16',
      '2001:db8::/48',
      '192.0.2.0/24',
    ]);
  });
  it('sendmail: Connect: and untagged addresses; other tags ignored', () => {
    const text =
      'Connect:192.0.2\tOK\n203.0.113.5\tRELAY\nFrom:spam@example.com\tREJECT\nTo:192.0.2.9\tOK\nConnect:IPv6:2001:db8::1\tOK\nIPv6:2001:db8::2\tOK\n';
    expect(sendmailHandKeys(text).map((t) => t.text)).toEqual([
      '192.0.2.0/24',
      '203.0.113.5',
      '2001:db8::1',
      '2001:db8::2',
    ]);
  });
});

describe('administrator keys from any text', () => {
  it('never throw, and every key they return is a valid target', () => {
    const text = fc
      .array(
        fc.oneof(
          fc.string(),
          fc.ipV4(),
          fc.ipV6(),
          fc
            .tuple(
              fc.constantFrom('Connect:', 'IPv6:', 'connect:IPv6:', '[', ''),
              fc.oneof(fc.ipV4(), fc.ipV6()),
              fc.constantFrom('', '/24', '/64', ']/48', ' OK'),
            )
            .map((p) => p.join('')),
        ),
      )
      .map((ls) => ls.join('\n'));
    fc.assert(
      fc.property(text, (t) => {
        for (const k of [
          ...postfixHandKeys(t, 'hash'),
          ...postfixHandKeys(t, 'cidr'),
          ...sendmailHandKeys(t),
        ]) {
          expect(parseTarget(k.text).ok).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('section', () => {
  it('a file without a section keeps every byte and gets one at the end', () => {
    const admin = '# mine\n192.0.2 OK\n\xff\xfe raw bytes';
    const s = splitSection(admin);
    expect(s.hasSection).toBe(false);
    const text = composeText(s, [': test'], ['1.2.3.4  450 4.7.1 x']);
    expect(text.startsWith(`${admin}\n${BEGIN}: test\n`)).toBe(true);
    expect(text.endsWith(`1.2.3.4  450 4.7.1 x\n${END}\n`)).toBe(true);
  });

  it('replacing the section keeps what is before and after it exactly', () => {
    const before = 'a OK\r\n# note\n';
    const after = 'z OK\n\n# tail\n';
    const text = `${before}${BEGIN}: old\nold line\n${END}\n${after}`;
    const s = splitSection(text);
    expect(s).toMatchObject({ before, after, hasSection: true });
    const again = composeText(s, [': new'], ['new line']);
    expect(again).toBe(`${before}${BEGIN}: new\nnew line\n${END}\n${after}`);
    expect(splitSection(again)).toMatchObject({ before, after });
  });

  it('any administrator text survives any number of rewrites byte for byte (property)', () => {
    const line = fc
      .string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) })
      .filter((l) => !l.includes('\n') && !l.startsWith(BEGIN) && !l.startsWith(END));
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 12 }),
        fc.array(fc.array(line, { maxLength: 5 }), { maxLength: 4 }),
        (admin, bodies) => {
          const text = admin.join('\n');
          let current = text;
          for (const body of bodies) current = composeText(splitSection(current), [': x'], body);
          const s = splitSection(current);
          const expected = text.length === 0 || text.endsWith('\n') ? text : `${text}\n`;
          expect(bodies.length === 0 ? current : s.before + s.after).toBe(
            bodies.length === 0 ? text : expected,
          );
        },
      ),
      {
        numRuns: 2000,
        examples: [
          [['', ''], [[]]],
          [
            ['', 'a', ''],
            [['x'], []],
          ],
        ],
      },
    );
  });

  it('text before and after an existing section is kept byte for byte (property)', () => {
    const line = fc
      .string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) })
      .filter((l) => !l.includes('\n') && !l.startsWith(BEGIN) && !l.startsWith(END));
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 8 }),
        fc.array(line, { maxLength: 8 }),
        fc.array(line, { maxLength: 4 }),
        (a, b, body) => {
          const before = a.map((l) => `${l}\n`).join('');
          const after = b.join('\n');
          const text = `${before}${BEGIN}: old\nold\n${END}\n${after}`;
          const again = composeText(splitSection(text), [': new'], body);
          expect(again).toBe(`${before}${[`${BEGIN}: new`, ...body, END].join('\n')}\n${after}`);
          expect(splitSection(again)).toMatchObject({ before, after, hasSection: true });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('refuses broken markers rather than guess what is whose', () => {
    expect(() => splitSection(`${BEGIN}\nx\n`)).toThrow(SectionError);
    expect(() => splitSection(`${END}\n${BEGIN}\n`)).toThrow(/wrong order/);
    expect(() => splitSection(`${BEGIN}\n${END}\n${BEGIN}\n${END}\n`)).toThrow(/found 2 and 2/);
  });
});

describe('rendered sections', () => {
  it('postfix hash: specific first, a comment with decision and expiry, skipping what cannot be held', () => {
    const map = createPostfixMap({
      path: '/x/m',
      type: 'hash',
      postmap: ['postmap'],
      reload: null,
      timeoutMs: 1000,
    });
    const lines = map.render([
      entry('192.0.2.0/24'),
      entry('192.0.2.7'),
      entry('10.0.0.0/20'),
      entry('2001:db8::1'),
    ]);
    expect(lines).toEqual([
      '# 192.0.2.7 decision=d-192.0.2.7 expires=2026-11-27T12:10:00.000Z',
      '192.0.2.7  450 4.7.1 Too many unknown recipients; try later',
      '# 192.0.2.0/24 decision=d-192.0.2.0/24 expires=2026-11-27T12:10:00.000Z',
      '192.0.2  450 4.7.1 Too many unknown recipients; try later',
      '# 2001:db8::1 decision=d-2001:db8::1 expires=2026-11-27T12:10:00.000Z',
      '2001:db8::1  450 4.7.1 Too many unknown recipients; try later',
    ]);
  });

  it('sendmail: tab-separated Connect: lines; a decision id cannot break the comment line', () => {
    const map = createSendmailMap({
      path: '/x/access',
      type: 'hash',
      makemap: ['makemap'],
      sendmailCf: null,
      timeoutMs: 1000,
    });
    const lines = map.render([entry('192.0.2.7', { decision_id: 'evil\nConnect:1.2.3.4 OK' })]);
    expect(lines).toEqual([
      '# 192.0.2.7 decision=evil?Connect:1.2.3.4?OK expires=2026-11-27T12:10:00.000Z',
      'Connect:192.0.2.7\tERROR:4.7.1:"450 4.7.1 Too many unknown recipients; try later"',
    ]);
  });

  it('hand keys parse back what they name', () => {
    expect(parseTargets(['192.0.2.0/24'], 'x')[0]!.text).toBe('192.0.2.0/24');
  });
});
