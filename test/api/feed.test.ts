import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildFeed, type FeedDecision, type FeedFormat, renderFeed } from '../../src/api/feed.js';
import { FeedCache } from '../../src/api/routes/feed.js';
import { respondSafetySchema } from '../../src/respond/config.js';
import { postfixHandKeys } from '../../src/respond/postfix/access-map.js';
import { parseTargets } from '../../src/respond/safety.js';
import { sendmailHandKeys } from '../../src/respond/sendmail/access-db.js';

// The feed on its own: which decisions become entries (the agent's safety rules), and that the
// text is access-map syntax whatever a stored decision holds.

const NOW = Date.parse('2026-11-27T12:00:00Z');
const cfg = respondSafetySchema.parse({ max_ttl_s: 7200, max_entries: 50 });
const whitelist = parseTargets(['192.0.2.0/24'], 'test');
const REPLY = '450 4.7.1 Too many unknown recipients; try later';

function dec(target: string, over: Partial<FeedDecision> = {}): FeedDecision {
  return {
    id: `dec-${target}`,
    target,
    action: 'tempfail',
    reply: REPLY,
    state: 'active',
    detector: 'dha_source',
    created_at: new Date(NOW - 60_000).toISOString(),
    expires_at: new Date(NOW + 3_600_000).toISOString(),
    ...over,
  };
}

const postfixHash: FeedFormat = { kind: 'postfix', type: 'hash' };
const postfixCidr: FeedFormat = { kind: 'postfix', type: 'cidr' };
const sendmail: FeedFormat = { kind: 'sendmail' };

describe('buildFeed', () => {
  it('keeps the sound decisions and says why it skipped the others', () => {
    const input = [
      dec('198.51.100.7'),
      dec('198.51.100.0/24', { id: 'net' }),
      dec('203.0.113.5', { expires_at: new Date(NOW - 1).toISOString() }),
      dec('203.0.113.6', { reply: '550 5.7.1 Rejected' }),
      dec('203.0.113.7', { action: 'reject' as 'tempfail' }),
      dec('192.0.2.9'),
      dec('127.0.0.5'),
      dec('2001:db8::/64'),
      dec('203.0.112.0/20'),
      dec('0.0.0.0/0'),
    ];
    const feed = buildFeed(input, postfixHash, { cfg, whitelist }, NOW);
    expect(feed.entries.map((e) => [e.target, e.key])).toEqual([
      ['198.51.100.7', '198.51.100.7'],
      ['198.51.100.0/24', '198.51.100'],
    ]);
    expect(Object.fromEntries(feed.skipped.map((s) => [s.target, s.rule]))).toEqual({
      '203.0.113.6': 'reply',
      '203.0.113.7': 'action',
      '192.0.2.9': 'whitelisted',
      '127.0.0.5': 'loopback',
      '2001:db8::/64': 'map_cannot_hold',
      '203.0.112.0/20': 'map_cannot_hold',
      '0.0.0.0/0': 'any_prefix',
    });
    const cidr = buildFeed(input, postfixCidr, { cfg, whitelist }, NOW);
    expect(cidr.entries.map((e) => e.key)).toEqual([
      '198.51.100.7',
      '198.51.100.0/24',
      '203.0.112.0/20',
      '2001:db8::/64',
    ]);
  });

  it('one entry per target (the longest), expiry clamped to max_ttl_s from created_at, at most max_entries', () => {
    const created = NOW - 600_000;
    const feed = buildFeed(
      [
        dec('198.51.100.7', { id: 'short', expires_at: new Date(NOW + 60_000).toISOString() }),
        dec('198.51.100.7', {
          id: 'long',
          created_at: new Date(created).toISOString(),
          expires_at: new Date(NOW + 30 * 86_400_000).toISOString(),
        }),
      ],
      sendmail,
      { cfg, whitelist },
      NOW,
    );
    expect(feed.entries).toHaveLength(1);
    expect(feed.entries[0]).toMatchObject({ decision_id: 'long', key: 'Connect:198.51.100.7' });
    expect(Date.parse(feed.entries[0]!.expires_at)).toBe(created + cfg.max_ttl_s * 1000);

    const many = Array.from({ length: cfg.max_entries + 5 }, (_, i) =>
      dec(`10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`),
    );
    const capped = buildFeed(many, sendmail, { cfg, whitelist }, NOW);
    expect(capped.entries).toHaveLength(cfg.max_entries);
    expect(capped.skipped.filter((s) => s.rule === 'max_entries')).toHaveLength(5);
  });

  it('renders Postfix and Sendmail access syntax that their own parsers read back', () => {
    const input = [dec('198.51.100.7'), dec('198.51.100.0/24', { id: 'net' }), dec('2001:db8::1')];
    const pf = buildFeed(input, postfixHash, { cfg, whitelist }, NOW);
    const pfText = renderFeed(pf, { kind: 'postfix', type: 'hash' });
    expect(postfixHandKeys(pfText, 'hash').map((t) => t.text)).toEqual(pf.entries.map((e) => e.target));
    const sm = buildFeed(input, sendmail, { cfg, whitelist }, NOW);
    const smText = renderFeed(sm, { kind: 'sendmail' });
    expect(sendmailHandKeys(smText).map((t) => t.text)).toEqual(sm.entries.map((e) => e.target));
    expect(smText).toContain(`Connect:IPv6:2001:db8::1\tERROR:4.7.1:"${REPLY}"`);
  });
});

describe('the rendered feed cannot be injected', () => {
  const target = fc.oneof(
    fc.ipV4(),
    fc.ipV6(),
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, p]) => `${a}/${p}`),
    fc.string({ maxLength: 70 }),
  );
  const decision = fc.record({
    id: fc.string({ minLength: 1, maxLength: 80 }),
    target,
    reply: fc.oneof(
      fc.constant(REPLY),
      fc.string({ maxLength: 300 }).map((s) => `450 4.7.1 ${s}`),
      fc.string({ maxLength: 300 }),
    ),
    action: fc.constantFrom('tempfail', 'reject'),
    expires_in: fc.integer({ min: -3_600_000, max: 30 * 86_400_000 }),
  });

  it('every line is a comment or KEY + a 4xx reply; entries and lines agree', () => {
    fc.assert(
      fc.property(
        fc.array(decision, { maxLength: 30 }),
        fc.constantFrom('hash', 'cidr', 'sendmail'),
        (ds, kind) => {
          const input = ds.map((d) =>
            dec(d.target, {
              id: d.id,
              reply: d.reply,
              action: d.action as 'tempfail',
              expires_at: new Date(NOW + d.expires_in).toISOString(),
            }),
          );
          const format: Exclude<FeedFormat, { kind: 'json' }> =
            kind === 'sendmail' ? { kind: 'sendmail' } : { kind: 'postfix', type: kind as 'hash' | 'cidr' };
          const feed = buildFeed(input, format, { cfg, whitelist }, NOW);
          const text = renderFeed(feed, format);
          const lines = text.split('\n').slice(0, -1);
          const data = lines.filter((l) => !l.startsWith('#'));
          expect(data).toHaveLength(feed.entries.length);
          const re =
            kind === 'sendmail'
              ? /^Connect:\S+\tERROR:4\.\d{1,3}\.\d{1,3}:"4\d\d 4\.\d{1,3}\.\d{1,3} [A-Za-z0-9 .,;:()[\]<>/_+=@'!?&*-]+"$/
              : /^\S+ {2}4\d\d 4\.\d{1,3}\.\d{1,3} [A-Za-z0-9 .,;:()[\]<>/_+=@'!?&*-]+$/;
          for (const l of data) expect(l).toMatch(re);
          for (const e of feed.entries) expect(Date.parse(e.expires_at)).toBeGreaterThan(NOW);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('FeedCache', () => {
  const empty = (n: number) => Promise.resolve({ generated_at: String(n), entries: [], skipped: [] });

  it('shares one build (also in flight) within the TTL, builds again after it or after clear()', async () => {
    let builds = 0;
    const cache = new FeedCache(2000);
    const build = () => empty(++builds);
    const [a, b] = await Promise.all([
      cache.get('postfix:hash', 0, build),
      cache.get('postfix:hash', 10, build),
    ]);
    expect([a.generated_at, b.generated_at, builds]).toEqual(['1', '1', 1]);
    expect((await cache.get('sendmail', 20, build)).generated_at).toBe('2');
    expect((await cache.get('postfix:hash', 1999, build)).generated_at).toBe('1');
    expect((await cache.get('postfix:hash', 2000, build)).generated_at).toBe('3');
    cache.clear();
    expect((await cache.get('postfix:hash', 2001, build)).generated_at).toBe('4');
  });

  it('does not keep a failed build; a TTL of 0 never caches', async () => {
    const cache = new FeedCache(2000);
    await expect(cache.get('json', 0, () => Promise.reject(new Error('ClickHouse down')))).rejects.toThrow();
    expect((await cache.get('json', 1, () => empty(7))).generated_at).toBe('7');
    const none = new FeedCache(0);
    let builds = 0;
    await none.get('json', 0, () => empty(++builds));
    await none.get('json', 0, () => empty(++builds));
    expect(builds).toBe(2);
  });
});
