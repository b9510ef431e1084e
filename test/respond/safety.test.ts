import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { respondSafetySchema } from '../../src/respond/config.js';
import { postfixKey } from '../../src/respond/postfix/access-map.js';
import {
  check,
  parseTargets,
  RULES,
  ruleReply,
  type SafetyContext,
  type Verdict,
} from '../../src/respond/safety.js';

const NOW = Date.parse('2026-11-27T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function decision(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'd-1',
    target: '192.0.2.7',
    action: 'tempfail',
    reply: '450 4.7.1 Too many unknown recipients; try later',
    detector: 'dha',
    reason: 'user unknown',
    confidence: 0.9,
    evidence: { counts: {}, window_s: 60, sample_event_ids: [] },
    created_at: iso(NOW - 1000),
    expires_at: iso(NOW + 600_000),
    state: 'active',
    ...over,
  };
}

function ctx(over: Partial<SafetyContext> & { safety?: Record<string, unknown> } = {}): SafetyContext {
  const { safety, ...rest } = over;
  return {
    cfg: respondSafetySchema.parse(safety ?? {}),
    whitelist: [],
    ownAddresses: parseTargets(['198.51.100.1'], 'own'),
    mapCannotHold: () => null,
    handManaged: [],
    entryCount: 0,
    has: () => false,
    now: NOW,
    ...rest,
  };
}

function rule(v: Verdict): string {
  return v.kind === 'refuse' ? v.rule : v.kind;
}

describe('safety: one test per rule', () => {
  it('accepts a good decision', () => {
    const v = check(decision(), ctx());
    expect(v.kind).toBe('add');
    if (v.kind === 'add') {
      expect(v.entry).toMatchObject({ target: '192.0.2.7', decision_id: 'd-1', expires_at: NOW + 600_000 });
      expect(v.clamped_from).toBeUndefined();
    }
  });

  it('malformed: not an object, no id, bad target, bad times, unknown state', () => {
    for (const input of [null, 'x', 42, [], {}, decision({ id: '' }), decision({ id: 'x'.repeat(201) })]) {
      expect(rule(check(input, ctx()))).toBe('malformed');
    }
    expect(rule(check(decision({ target: '192.0.2.7/24' }), ctx()))).toBe('malformed');
    expect(rule(check(decision({ target: 'spam.example' }), ctx()))).toBe('malformed');
    expect(rule(check(decision({ expires_at: 'tomorrow' }), ctx()))).toBe('malformed');
    expect(rule(check(decision({ created_at: 17 }), ctx()))).toBe('malformed');
    expect(rule(check(decision({ state: 'paused' }), ctx()))).toBe('malformed');
  });

  it('action: only tempfail', () => {
    expect(rule(check(decision({ action: 'reject' }), ctx()))).toBe('action');
    expect(rule(check(decision({ action: undefined }), ctx()))).toBe('action');
  });

  it('no_expiry: every entry must lift by itself', () => {
    expect(rule(check(decision({ expires_at: undefined }), ctx()))).toBe('no_expiry');
    expect(rule(check(decision({ expires_at: null }), ctx()))).toBe('no_expiry');
    expect(rule(check(decision({ expires_at: '' }), ctx()))).toBe('no_expiry');
  });

  it('any_prefix: 0.0.0.0/0 and ::/0 always, whatever the configured width', () => {
    const loose = ctx({ safety: { min_prefix_v4: 1, min_prefix_v6: 1 } });
    expect(rule(check(decision({ target: '0.0.0.0/0' }), loose))).toBe('any_prefix');
    expect(rule(check(decision({ target: '::/0' }), loose))).toBe('any_prefix');
  });

  it('prefix_too_wide: below /16 (IPv4) and /48 (IPv6) by default, configurable', () => {
    expect(rule(check(decision({ target: '10.0.0.0/15' }), ctx()))).toBe('prefix_too_wide');
    expect(rule(check(decision({ target: '10.0.0.0/16' }), ctx()))).toBe('add');
    expect(rule(check(decision({ target: '2001:db8::/47' }), ctx()))).toBe('prefix_too_wide');
    expect(rule(check(decision({ target: '2001:db8::/48' }), ctx()))).toBe('add');
    expect(rule(check(decision({ target: '10.0.0.0/16' }), ctx({ safety: { min_prefix_v4: 24 } })))).toBe(
      'prefix_too_wide',
    );
  });

  it('not_unicast: unspecified, broadcast, multicast', () => {
    for (const t of ['0.0.0.0', '255.255.255.255', '224.0.0.1', 'ff02::1', '::']) {
      expect(rule(check(decision({ target: t }), ctx()))).toBe('not_unicast');
    }
  });

  it('loopback: refused unless allowed', () => {
    expect(rule(check(decision({ target: '127.0.0.7' }), ctx()))).toBe('loopback');
    expect(rule(check(decision({ target: '::1' }), ctx()))).toBe('loopback');
    expect(rule(check(decision({ target: '127.0.0.7' }), ctx({ safety: { allow_loopback: true } })))).toBe(
      'add',
    );
  });

  it('own_address: addresses of this host and prefixes covering them', () => {
    expect(rule(check(decision({ target: '198.51.100.1' }), ctx()))).toBe('own_address');
    expect(rule(check(decision({ target: '198.51.100.0/24' }), ctx()))).toBe('own_address');
    expect(rule(check(decision({ target: '198.51.100.2' }), ctx()))).toBe('add');
    expect(
      rule(check(decision({ target: '198.51.100.1' }), ctx({ safety: { protect_own_addresses: false } }))),
    ).toBe('add');
  });

  it('whitelisted: any overlap with a whitelisted range', () => {
    const c = ctx({ whitelist: parseTargets(['203.0.113.0/24', '2001:db8:1::/48'], 'wl') });
    expect(rule(check(decision({ target: '203.0.113.9' }), c))).toBe('whitelisted');
    expect(rule(check(decision({ target: '203.0.0.0/16' }), c))).toBe('whitelisted');
    expect(rule(check(decision({ target: '2001:db8:1::5' }), c))).toBe('whitelisted');
    expect(rule(check(decision({ target: '203.0.114.9' }), c))).toBe('add');
  });

  it('reply: 4NN with a 4.X.Y enhanced code and plain text', () => {
    const bad = [
      '550 5.7.1 go away',
      '450 5.7.1 mismatched class',
      '450 Too many',
      '4.7.1 Too many',
      '450 4.7.1',
      '450 4.7.1 ',
      '450 4.7.1 text\nDATA',
      '450 4.7.1 with "quotes"',
      '450 4.7.1 percent %1 substitution',
      '450 4.7.1 trailing ',
      '450 4.7.1 caf\u00e9',
      `450 4.7.1 ${'x'.repeat(300)}`,
      42,
    ];
    for (const reply of bad) expect(rule(check(decision({ reply }), ctx())), String(reply)).toBe('reply');
    for (const reply of ['421 4.7.0 slow down', '451 4.7.1 Try later (DHA) see <https://x.test/why?id=1>']) {
      expect(rule(check(decision({ reply }), ctx()))).toBe('add');
    }
  });

  it('map_cannot_hold: what the access map type cannot express', () => {
    const hash = ctx({ mapCannotHold: (t) => ('error' in postfixKey(t, 'hash') ? 'no' : null) });
    expect(rule(check(decision({ target: '192.0.2.0/24' }), hash))).toBe('add');
    expect(rule(check(decision({ target: '192.0.0.0/20' }), hash))).toBe('map_cannot_hold');
    expect(rule(check(decision({ target: '2001:db8::/48' }), hash))).toBe('map_cannot_hold');
  });

  it('hand_managed: an overlap with the administrator lines', () => {
    const c = ctx({ handManaged: parseTargets(['192.0.2.0/24'], 'hand') });
    expect(rule(check(decision({ target: '192.0.2.7' }), c))).toBe('hand_managed');
    expect(rule(check(decision({ target: '192.0.3.7' }), c))).toBe('add');
  });

  it('max_entries: a new target beyond the limit; updating one in force is fine', () => {
    const full = ctx({ safety: { max_entries: 2 }, entryCount: 2, has: (t) => t === '192.0.2.7' });
    expect(rule(check(decision({ target: '192.0.2.8' }), full))).toBe('max_entries');
    expect(rule(check(decision({ target: '192.0.2.7' }), full))).toBe('add');
  });

  it('max_ttl: a longer life is clamped to created_at + max_ttl_s, not refused', () => {
    const v = check(decision({ expires_at: iso(NOW + 7 * 86400_000) }), ctx({ safety: { max_ttl_s: 3600 } }));
    expect(v.kind).toBe('add');
    if (v.kind === 'add') {
      expect(v.entry.expires_at).toBe(NOW - 1000 + 3600_000);
      expect(v.clamped_from).toBe(iso(NOW + 7 * 86400_000));
    }
    // An extension (updated_at) counts from its own time.
    const extended = check(
      decision({
        created_at: iso(NOW - 7200_000),
        updated_at: iso(NOW - 60_000),
        expires_at: iso(NOW + 86400_000),
      }),
      ctx({ safety: { max_ttl_s: 3600 } }),
    );
    expect(extended.kind === 'add' && extended.entry.expires_at).toBe(NOW - 60_000 + 3600_000);
    // Replayed after the clamp would have run out: gone, not renewed.
    const old = check(
      decision({ created_at: iso(NOW - 7200_000), expires_at: iso(NOW + 86400_000) }),
      ctx({ safety: { max_ttl_s: 3600 } }),
    );
    expect(old).toMatchObject({ kind: 'remove', why: 'past_expiry' });
  });

  it('lifted, expired and past decisions remove their target', () => {
    expect(check(decision({ state: 'lifted' }), ctx())).toMatchObject({ kind: 'remove', why: 'lifted' });
    expect(check(decision({ state: 'expired' }), ctx())).toMatchObject({ kind: 'remove', why: 'expired' });
    expect(check(decision({ expires_at: iso(NOW - 1) }), ctx())).toMatchObject({
      kind: 'remove',
      why: 'past_expiry',
    });
    // A lift of a whitelisted or loopback target must still be able to remove it.
    expect(check(decision({ target: '127.0.0.7', state: 'lifted' }), ctx()).kind).toBe('remove');
  });

  it('every rule has its own test in this file', () => {
    const src = readFileSync(import.meta.filename, 'utf8');
    for (const r of RULES) expect(src, `a test named '${r}: ...'`).toContain(`it('${r}:`);
  });

  it('never throws, and adds only what passes every rule', () => {
    const c = ctx({ whitelist: parseTargets(['203.0.113.0/24'], 'wl') });
    fc.assert(
      fc.property(
        fc.record(
          {
            id: fc.oneof(fc.string(), fc.constant('d')),
            target: fc.oneof(
              fc.ipV4(),
              fc.ipV6(),
              fc.string(),
              fc.ipV4().map((a) => `${a}/${a.length % 33}`),
            ),
            action: fc.constantFrom('tempfail', 'reject', undefined),
            reply: fc.oneof(fc.string(), fc.constantFrom('450 4.7.1 ok', '550 5.1.1 no')),
            created_at: fc.constantFrom(iso(NOW), 'x', undefined),
            expires_at: fc.constantFrom(iso(NOW + 1000), iso(NOW - 1000), undefined, null, 'x'),
            state: fc.constantFrom('active', 'lifted', 'nope', undefined),
          },
          { requiredKeys: [] },
        ),
        (d) => {
          const v = check(d, c);
          if (v.kind === 'add') {
            expect(v.entry.reply).toMatch(/^4\d\d 4\.\d+\.\d+ \S/);
            expect(v.entry.expires_at).toBeGreaterThan(NOW);
            expect(d.action).toBe('tempfail');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('ruleReply alone', () => {
  it('names the problem', () => {
    const cfg = respondSafetySchema.parse({});
    expect(ruleReply({ reply: '550 5.1.1 no' }, cfg)?.message).toMatch(/4NN 4\.X\.Y text/);
    expect(ruleReply({ reply: '450 4.7.1 ok' }, cfg)).toBeNull();
  });
});
