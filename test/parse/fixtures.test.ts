// Table-driven fixtures: every line of testdata/*.ndjson is {line, expect}; the parsed event must
// equal expect plus raw, field by field, with no extra field. Adding a case is adding a line.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MailEvent } from '../../src/event/mail-event.js';
import { LineParser, type ParseOptions } from '../../src/parse/parser.js';

/** The options make-fixtures.mjs uses: fixed year and zone so expectations are stable. */
const FIXTURE_OPTIONS: ParseOptions = { year: 2026, timezone: 'UTC', host: 'mx-exim' };

interface Case {
  line: string;
  expect: Partial<MailEvent>;
}

const dir = join(import.meta.dirname, 'testdata');
const files = readdirSync(dir).filter((f) => f.endsWith('.ndjson'));

function defined(ev: MailEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ev)) if (v !== undefined) out[k] = v;
  return out;
}

describe('parse fixtures', () => {
  const all: Case[] = [];
  for (const file of files) {
    const cases = readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Case);
    all.push(...cases);
    describe(file, () => {
      it.each(cases.map((c, i) => [i + 1, c] as const))('line %i', (_n, c) => {
        const ev = new LineParser(FIXTURE_OPTIONS).parse(c.line);
        expect(defined(ev)).toEqual({ ...c.expect, raw: c.line });
      });
    });
  }

  it('has at least 300 distinct lines across postfix, sendmail and exim', () => {
    const distinct = new Set(all.map((c) => c.line));
    expect(distinct.size).toBeGreaterThanOrEqual(300);
    for (const mta of ['postfix', 'sendmail', 'exim'] as const) {
      expect(all.filter((c) => c.expect.mta === mta).length).toBeGreaterThanOrEqual(50);
    }
  });

  it('covers every reject reason and the main kinds', () => {
    const reasons = new Set(all.filter((c) => c.expect.kind === 'reject').map((c) => c.expect.reason));
    for (const r of [
      'user_unknown',
      'relay_denied',
      'sender_rejected',
      'helo_rejected',
      'client_rejected',
      'rbl',
      'policy',
      'rate_limited',
      'tempfail',
      'other',
    ])
      expect(reasons, r).toContain(r);
    const kinds = new Set(all.map((c) => c.expect.kind));
    for (const k of [
      'connect',
      'disconnect',
      'reject',
      'queued',
      'delivery',
      'bounce_notice',
      'auth_failure',
      'unknown',
    ])
      expect(kinds, k).toContain(k);
  });
});
