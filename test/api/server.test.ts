import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory.js';
import type { Decision } from '../../src/decision/decision.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { postfixHandKeys } from '../../src/respond/postfix/access-map.js';
import { sendmailHandKeys } from '../../src/respond/sendmail/access-db.js';
import { harvestLog, mailLogEvents, parseLog, TRACE_MESSAGE_ID } from './fixtures.js';
import { auth, type Harness, READ_TOKEN, startHarness, until, WRITE_TOKEN } from './helpers.js';

// The API over a real embedded ClickHouse: events stored by the real parser and StoreWriter;
// operator changes published on an in-process bus and stored by a real StoreConsumer.

const PER_SOURCE = [9, 5, 2];
const V6 = 3;
const mail = mailLogEvents();
const harvest = parseLog(harvestLog(PER_SOURCE, V6), 'harvest.log');
const events: MailEvent[] = [...mail, ...harvest];
let h: Harness;

const get = (url: string, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'GET', url, headers });
const post = (url: string, payload?: unknown, token: string | null = WRITE_TOKEN) =>
  h.app.inject({
    method: 'POST',
    url,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    headers: token ? auth(token) : {},
  });

async function active(): Promise<Array<Decision & { changed_at: string }>> {
  const r = await get('/api/v1/decisions');
  expect(r.statusCode).toBe(200);
  return r.json().decisions;
}

function feedLines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

describe('api over embedded ClickHouse', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    h = await startHarness({ bus: new MemoryBus({ partitions: 2 }), events });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
    await h?.bus.close();
  });

  describe('search', () => {
    it('by ip: that source only, newest first, each event once', async () => {
      const r = await get('/api/v1/events?ip=198.51.100.1');
      expect(r.statusCode).toBe(200);
      const body = r.json();
      const want = events.filter((e) => e.client_ip === '198.51.100.1');
      expect(body.count).toBe(want.length);
      expect(new Set(body.events.map((e: MailEvent) => e.id))).toEqual(new Set(want.map((e) => e.id)));
      const ts = body.events.map((e: MailEvent) => e.ts);
      expect(ts).toEqual([...ts].sort().reverse());
    });

    it('by prefix, IPv4 and IPv6, host bits cleared', async () => {
      const v4 = (await get('/api/v1/events?prefix=198.51.100.77/24')).json();
      expect(v4.count).toBe(events.filter((e) => e.client_ip?.startsWith('198.51.100.')).length);
      const v6 = (await get(`/api/v1/events?prefix=${encodeURIComponent('2001:db8:5::/64')}`)).json();
      expect(v6.count).toBe(V6);
    });

    it('by sender (null sender as <>), recipient, queue id on a host, message id', async () => {
      const nul = (await get(`/api/v1/events?sender=${encodeURIComponent('<>')}`)).json();
      expect(nul.count).toBe(events.filter((e) => e.sender === '').length);
      expect(nul.count).toBeGreaterThan(0);
      const rcpt = (await get('/api/v1/events?recipient=BOB@example.test')).json();
      expect(rcpt.count).toBe(events.filter((e) => e.recipient === 'bob@example.test').length);
      const q = (await get('/api/v1/events?queue_id=6C7D8E9F0A&host=mbox1')).json();
      expect(q.count).toBe(events.filter((e) => e.queue_id === '6C7D8E9F0A' && e.host === 'mbox1').length);
      const m = (
        await get(`/api/v1/events?message_id=${encodeURIComponent(`<${TRACE_MESSAGE_ID}>`)}`)
      ).json();
      expect(m.events.map((e: MailEvent) => e.host).sort()).toEqual(['mbox1', 'mx1']);
    });

    it('time range and limit', async () => {
      const all = events.filter((e) => e.client_ip === '198.51.100.1');
      const r = (
        await get('/api/v1/events?ip=198.51.100.1&from=2026-11-27T09:00:03Z&to=2026-11-27T09:00:05Z')
      ).json();
      const [lo, hi] = [Date.parse('2026-11-27T09:00:03Z'), Date.parse('2026-11-27T09:00:05Z')];
      expect(r.count).toBe(all.filter((e) => Date.parse(e.ts!) >= lo && Date.parse(e.ts!) <= hi).length);
      const lim = (await get('/api/v1/events?ip=198.51.100.1&limit=2')).json();
      expect([lim.count, lim.truncated]).toEqual([2, true]);
    });

    it('a window of one host, and lines holding a text (case-insensitive), across hosts or on one', async () => {
      const win = 'from=2026-11-27T10:00:00Z&to=2026-11-27T11:00:00Z';
      const inWin = (e: MailEvent) =>
        Date.parse(e.ts!) >= Date.parse('2026-11-27T10:00:00Z') &&
        Date.parse(e.ts!) <= Date.parse('2026-11-27T11:00:00Z');
      const mbox = (await get(`/api/v1/events?host=mbox1&${win}`)).json();
      expect(mbox.count).toBe(events.filter((e) => e.host === 'mbox1' && inWin(e)).length);
      const relay = (
        await get(`/api/v1/events?contains=${encodeURIComponent('RELAY ACCESS')}&${win}`)
      ).json();
      expect(relay.events.map((e: MailEvent) => e.client_ip)).toEqual(['203.0.113.9']);
      const queuedAs = (
        await get(`/api/v1/events?host=mx1&contains=${encodeURIComponent('queued as')}&${win}`)
      ).json();
      expect(queuedAs.count).toBe(
        events.filter((e) => e.host === 'mx1' && e.raw?.includes('queued as') && inWin(e)).length,
      );
      expect(queuedAs.count).toBeGreaterThan(0);
    });

    it('trace follows the message from mx1 to mbox1', async () => {
      const r = await get(`/api/v1/trace/${encodeURIComponent(TRACE_MESSAGE_ID)}`);
      expect(r.statusCode).toBe(200);
      const t = r.json();
      expect(t.hops.map((x: { host: string }) => x.host)).toEqual(['mx1', 'mbox1']);
      expect(t.hops[0].deliveries[0].next_hop).toBe('mbox1/6C7D8E9F0A');
      expect((await get('/api/v1/trace/nosuch@example.test')).statusCode).toBe(404);
    });

    it('top unknown-recipient sources, per address and per /24', async () => {
      const r = await get('/api/v1/top/unknown-recipients?from=2026-11-27T00:00:00Z&to=2026-11-28T00:00:00Z');
      expect(r.statusCode).toBe(200);
      const top = r.json().sources;
      expect(top.map((s: { source: string }) => s.source).slice(0, 3)).toEqual([
        '198.51.100.1',
        '198.51.100.2',
        '2001:db8:5::7',
      ]);
      expect(top[0].unknown_users).toBe(PER_SOURCE[0]);
      const net = (
        await get(
          '/api/v1/top/unknown-recipients?from=2026-11-27T00:00:00Z&to=2026-11-28T00:00:00Z&v4_prefix=24',
        )
      ).json().sources;
      expect(net[0]).toMatchObject({
        source: '198.51.100.0/24',
        unknown_users: PER_SOURCE.reduce((a, b) => a + b, 0),
        addresses: PER_SOURCE.length,
      });
    });
  });

  describe('malformed requests are 400 with a message, never 500', () => {
    const cases: Array<[string, RegExp]> = [
      ['/api/v1/events', /one of ip, prefix/],
      ['/api/v1/events?ip=198.51.100.1&sender=a@b.test', /not ip and sender/],
      ['/api/v1/events?ip=1.2.3', /ip: not an IPv4/],
      ['/api/v1/events?ip=010.0.0.1', /ip: not an IPv4/],
      ['/api/v1/events?ip=198.51.100.0/24', /must match pattern|use prefix/],
      ['/api/v1/events?prefix=198.51.100.0/40', /prefix/],
      ['/api/v1/events?client_ip=198.51.100.1', /additional properties|client_ip/],
      ['/api/v1/events?ip=198.51.100.1&limit=0', /limit/],
      ['/api/v1/events?ip=198.51.100.1&limit=many', /limit/],
      ['/api/v1/events?ip=198.51.100.1&from=yesterday', /from: expected an ISO 8601/],
      [
        '/api/v1/events?ip=198.51.100.1&from=2026-11-28T00:00:00Z&to=2026-11-27T00:00:00Z',
        /from is after to/,
      ],
      ['/api/v1/events?sender=a@b.test&host=mx1', /host narrows a queue_id/],
      ['/api/v1/events?host=mx1&from=2026-11-01T00:00:00Z&to=2026-11-28T00:00:00Z', /at most 86400 s/],
      ['/api/v1/events?ip=198.51.100.1&contains=User', /contains= goes with host=/],
      ['/api/v1/events?contains=ab', /contains/],
      ['/api/v1/events?queue_id=abc%00def', /queue_id/],
      ['/api/v1/top/unknown-recipients?window=1fortnight', /window/],
      ['/api/v1/top/unknown-recipients?v4_prefix=4', /v4_prefix/],
      ['/api/v1/decisions?at=soon', /at: expected/],
      ['/api/v1/decisions?state=lifted', /state/],
      ['/api/v1/decisions?state=any&at=now', /at goes with state=active/],
      ['/api/v1/decisions?from=-1h', /from and to go with state=any/],
      ['/api/v1/feed/postfix?type=btree', /type/],
    ];
    for (const [url, message] of cases) {
      it(url, async () => {
        const r = await get(url);
        expect(r.statusCode).toBe(400);
        expect(r.json().message).toMatch(message);
      });
    }

    it('bodies: not JSON, wrong type, unknown field, missing field, too large', async () => {
      const bad = await h.app.inject({
        method: 'POST',
        url: '/api/v1/decisions',
        headers: { ...auth(WRITE_TOKEN), 'content-type': 'application/json' },
        payload: '{"target": "198.51.100.5",',
      });
      expect(bad.statusCode).toBe(400);
      const cases: Array<[unknown, RegExp]> = [
        [{ target: '198.51.100.5', reason: 'x', ttl_s: 'long' }, /ttl_s/],
        [{ target: '198.51.100.5', reason: 'x', ttl_s: 600, colour: 'red' }, /additional properties/],
        [{ target: '198.51.100.5', ttl_s: 600 }, /reason/],
        [{ target: '198.51.100.5', reason: 'x'.repeat(501), ttl_s: 600 }, /reason/],
        [['198.51.100.5'], /object/],
      ];
      for (const [body, msg] of cases) {
        const r = await post('/api/v1/decisions', body);
        expect(r.statusCode).toBe(400);
        expect(r.json().message).toMatch(msg);
      }
      const big = await h.app.inject({
        method: 'POST',
        url: '/api/v1/decisions',
        headers: { ...auth(WRITE_TOKEN), 'content-type': 'application/json' },
        payload: JSON.stringify({ target: '198.51.100.5', reason: 'x'.repeat(h.cfg.api.body_limit) }),
      });
      expect([big.statusCode, big.body]).toEqual([413, big.body]);
      const text = await h.app.inject({
        method: 'POST',
        url: '/api/v1/decisions',
        headers: { ...auth(WRITE_TOKEN), 'content-type': 'text/plain' },
        payload: 'block 198.51.100.5',
      });
      expect(text.statusCode).toBe(415);
    });

    it('unknown routes are 404 naming the prefix', async () => {
      const r = await get('/events?ip=198.51.100.1');
      expect(r.statusCode).toBe(404);
      expect(r.json().message).toMatch(/\/api\/v1/);
    });
  });

  describe('operator decisions', () => {
    it('writes need a write token', async () => {
      const body = { target: '198.51.100.5', reason: 'harvest', ttl_s: 600 };
      expect((await post('/api/v1/decisions', body, null)).statusCode).toBe(401);
      expect((await post('/api/v1/decisions', body, 'not-a-known-token-at-all')).statusCode).toBe(401);
      const ro = await post('/api/v1/decisions', body, READ_TOKEN);
      expect(ro.statusCode).toBe(403);
      expect(ro.json().message).toMatch(/read-only/);
    });

    it('refuses what an agent would refuse: 5xx replies, no expiry, /0, too wide, loopback, whitelisted', async () => {
      const cases: Array<[Record<string, unknown>, number, string]> = [
        [{ target: '198.51.100.5', reason: 'x', ttl_s: 600, reply: '550 5.7.1 Go away' }, 400, 'reply'],
        [{ target: '198.51.100.5', reason: 'x', ttl_s: 600, reply: '450 5.7.1 mixed classes' }, 400, 'reply'],
        [{ target: '198.51.100.5', reason: 'x', ttl_s: 600, reply: '450 4.7.1 "quoted" %1' }, 400, 'reply'],
        [{ target: '198.51.100.5', reason: 'x' }, 400, 'expiry'],
        [{ target: '198.51.100.5', reason: 'x', expires_at: '2001-01-01T00:00:00Z' }, 400, 'expiry'],
        [{ target: '0.0.0.0/0', reason: 'x', ttl_s: 600 }, 400, 'any_prefix'],
        [{ target: '10.0.0.0/8', reason: 'x', ttl_s: 600 }, 400, 'prefix_too_wide'],
        [{ target: '198.51.100.5/24', reason: 'x', ttl_s: 600 }, 400, 'malformed'],
        [{ target: '127.0.0.2', reason: 'x', ttl_s: 600 }, 400, 'loopback'],
        [{ target: '192.0.2.3', reason: 'x', ttl_s: 600 }, 409, 'whitelisted'],
      ];
      for (const [body, status, rule] of cases) {
        const r = await post('/api/v1/decisions', body);
        expect([body, r.statusCode]).toEqual([body, status]);
        expect(r.json().rule).toBe(rule);
      }
      expect(await active()).toEqual([]);
    });

    it('add: published, stored, in force, in the feeds with its 4xx reply; lift removes it', async () => {
      const r = await post('/api/v1/decisions', {
        target: '198.51.100.1',
        reason: 'harvest seen in the logs',
        ttl_s: 3600,
        reply: '451 4.7.1 Too many unknown recipients; try later',
      });
      expect(r.statusCode).toBe(201);
      const d: Decision = r.json().decision;
      expect(d).toMatchObject({
        target: '198.51.100.1',
        action: 'tempfail',
        state: 'active',
        origin: 'operator:alice',
      });
      expect(Date.parse(d.expires_at) - Date.parse(d.created_at)).toBe(3600_000);

      const stored = await until(async () => (await active()).find((x) => x.id === d.id));
      expect(stored.reply).toBe(d.reply);

      const pf = await get('/api/v1/feed/postfix');
      expect(pf.statusCode).toBe(200);
      expect(pf.headers['content-type']).toMatch(/^text\/plain/);
      const pfLines = feedLines(pf.body);
      expect(pfLines).toEqual([`198.51.100.1  ${d.reply}`]);
      for (const line of pfLines) expect(line).toMatch(/^\S+ {2}4\d\d 4\.\d{1,3}\.\d{1,3} \S/);
      expect(postfixHandKeys(pf.body, 'hash').map((t) => t.text)).toEqual(['198.51.100.1']);

      const sm = await get('/api/v1/feed/sendmail');
      const smLines = feedLines(sm.body);
      expect(smLines).toEqual([`Connect:198.51.100.1\tERROR:4.7.1:"${d.reply}"`]);
      expect(sendmailHandKeys(sm.body).map((t) => t.text)).toEqual(['198.51.100.1']);

      const js = (await get('/api/v1/feed.json')).json();
      expect(js.entries).toMatchObject([{ target: '198.51.100.1', decision_id: d.id, reply: d.reply }]);

      // Covering lookups: the address is blocked, its neighbour is not.
      expect((await get('/api/v1/decisions?ip=198.51.100.1')).json().count).toBe(1);
      expect((await get('/api/v1/decisions?ip=198.51.100.2')).json().count).toBe(0);

      const lift = await post('/api/v1/decisions/198.51.100.1/lift', { reason: 'false positive' });
      expect(lift.statusCode).toBe(200);
      expect(lift.json().lifted.map((x: Decision) => [x.id, x.state])).toEqual([[d.id, 'lifted']]);
      await until(async () => (await active()).every((x) => x.id !== d.id));
      expect(feedLines((await get('/api/v1/feed/postfix')).body)).toEqual([]);

      const hist = (await get(`/api/v1/decisions/${d.id}`)).json();
      expect(hist.in_force).toBeNull();
      expect(hist.history.map((c: { change: string; origin: string }) => [c.change, c.origin])).toEqual([
        ['created', 'operator:alice'],
        ['lifted', 'operator:alice'],
      ]);
      expect((await post('/api/v1/decisions/198.51.100.1/lift', {})).statusCode).toBe(404);

      // The forensic list: made in the last hour, how it ended, who lifted it and why.
      const made = (await get('/api/v1/decisions?state=any&from=now-1h&ip=198.51.100.1')).json().decisions;
      expect(made).toMatchObject([
        {
          id: d.id,
          state: 'lifted',
          reason: 'harvest seen in the logs',
          last_origin: 'operator:alice',
          last_reason: 'lifted: false positive',
          changes: 2,
        },
      ]);
      expect((await get('/api/v1/decisions?state=any&from=now-1h&ip=198.51.100.2')).json().count).toBe(0);
    });

    it('a prefix (URL-encoded) with an over-long ttl is clamped; a second add changes it; DELETE lifts', async () => {
      const max = h.cfg.api.max_operator_ttl_s;
      const r = await post('/api/v1/decisions', {
        target: '203.0.113.0/24',
        reason: 'bot net',
        ttl_s: max * 2,
      });
      expect(r.statusCode).toBe(201);
      const first = r.json();
      expect(first.clamped_from).toBeDefined();
      expect(Date.parse(first.decision.expires_at) - Date.parse(first.decision.created_at)).toBe(max * 1000);
      await until(async () => (await active()).find((x) => x.id === first.decision.id));

      const second = await post('/api/v1/decisions', {
        target: '203.0.113.0/24',
        reason: 'longer reply',
        ttl_s: 600,
      });
      expect(second.json().replaced).toMatchObject({ id: first.decision.id, origin: 'operator:alice' });
      expect(second.json().decision.id).toBe(first.decision.id);
      const now = await until(async () => {
        const a = await active();
        return a.length === 1 && a[0]!.reason === 'longer reply' ? a : undefined;
      });
      expect(Date.parse(now[0]!.expires_at) - Date.parse(now[0]!.created_at)).toBe(600_000);
      expect(now[0]!.target).toBe('203.0.113.0/24');
      expect(feedLines((await get('/api/v1/feed/postfix')).body)).toEqual([`203.0.113  ${now[0]!.reply}`]);
      expect(feedLines((await get('/api/v1/feed/postfix?type=cidr')).body)).toEqual([
        `203.0.113.0/24  ${now[0]!.reply}`,
      ]);

      const del = await h.app.inject({
        method: 'DELETE',
        url: `/api/v1/decisions/${encodeURIComponent('203.0.113.0/24')}?reason=done`,
        headers: auth(WRITE_TOKEN),
      });
      expect(del.statusCode).toBe(200);
      await until(async () => (await active()).length === 0);
      const hist = (await get(`/api/v1/decisions/${first.decision.id}`)).json().history;
      expect(hist.map((c: { change: string }) => c.change)).toEqual(['created', 'changed', 'lifted']);
      expect(hist[2].reason).toBe('lifted: done');
    });

    it('IPv6 prefixes: refused by hash maps (skipped with the reason), carried by cidr feeds', async () => {
      const r = await post('/api/v1/decisions', {
        target: '2001:db8:5::/64',
        reason: 'v6 harvest',
        ttl_s: 900,
      });
      expect(r.statusCode).toBe(201);
      expect(r.json().warnings.length).toBe(2);
      await until(async () => (await active()).length === 1);
      const hash = (await get('/api/v1/feed/postfix?type=hash')).body;
      expect(feedLines(hash)).toEqual([]);
      expect(hash).toMatch(/# skipped 2001:db8:5::\/64 \(map_cannot_hold\)/);
      expect(feedLines((await get('/api/v1/feed/postfix?type=cidr')).body)).toEqual([
        `2001:db8:5::/64  ${r.json().decision.reply}`,
      ]);
      expect((await post(`/api/v1/decisions/${encodeURIComponent('2001:db8:5::/64')}/lift`)).statusCode).toBe(
        200,
      );
      await until(async () => (await active()).length === 0);
    });
  });

  describe('whitelist', () => {
    it('adding lifts overlapping decisions and blocks later adds; removing allows them again', async () => {
      // Every change is published on the compacted whitelist topic (value, then a tombstone).
      const seen: Array<{ key: string | null; value: string | null }> = [];
      const reader = await h.bus.consumer({
        groupId: 'wl-reader',
        topics: [h.cfg.api.whitelist_topic],
        fromBeginning: true,
      });
      await reader.run(async (msgs) => {
        for (const m of msgs) seen.push({ key: m.key, value: m.value?.toString('utf8') ?? null });
      });
      const d = (await post('/api/v1/decisions', { target: '198.51.100.9', reason: 'x', ttl_s: 600 })).json()
        .decision;
      await until(async () => (await active()).find((x) => x.id === d.id));

      const w = await post('/api/v1/whitelist', { target: '198.51.100.0/24', reason: 'partner relay' });
      expect(w.statusCode).toBe(201);
      expect(w.json().lifted.map((x: Decision) => x.id)).toEqual([d.id]);
      await until(async () => (await active()).length === 0);

      const blocked = await post('/api/v1/decisions', { target: '198.51.100.10', reason: 'x', ttl_s: 600 });
      expect(blocked.statusCode).toBe(409);
      expect(blocked.json().message).toMatch(/198\.51\.100\.0\/24/);

      const list = (await get('/api/v1/whitelist')).json().entries;
      expect(list.map((e: { target: string; source: string }) => [e.target, e.source])).toEqual([
        ['192.0.2.0/28', 'config'],
        ['127.0.0.0/8', 'config'],
        ['::1', 'config'],
        ['198.51.100.0/24', 'api'],
      ]);
      const file = join(h.cfg.data_dir, 'api', 'whitelist.json');
      expect(existsSync(file)).toBe(true);
      expect(JSON.parse(readFileSync(file, 'utf8')).entries[0].added_by).toBe('operator:alice');

      const conf = await h.app.inject({
        method: 'DELETE',
        url: `/api/v1/whitelist/${encodeURIComponent('192.0.2.0/28')}`,
        headers: auth(WRITE_TOKEN),
      });
      expect(conf.statusCode).toBe(409);
      const del = await h.app.inject({
        method: 'DELETE',
        url: `/api/v1/whitelist/${encodeURIComponent('198.51.100.0/24')}`,
        headers: auth(WRITE_TOKEN),
      });
      expect(del.statusCode).toBe(200);
      const again = await post('/api/v1/decisions', { target: '198.51.100.10', reason: 'x', ttl_s: 600 });
      expect(again.statusCode).toBe(201);
      await until(async () => (await active()).find((x) => x.target === '198.51.100.10'));
      expect((await post('/api/v1/decisions/198.51.100.10/lift')).statusCode).toBe(200);
      await until(async () => (await active()).length === 0);

      await until(async () => seen.length >= 2);
      await reader.close();
      expect(seen[0]!.key).toBe('198.51.100.0/24');
      expect(JSON.parse(seen[0]!.value!)).toMatchObject({
        target: '198.51.100.0/24',
        reason: 'partner relay',
      });
      expect(seen[1]).toEqual({ key: '198.51.100.0/24', value: null });
    });
  });

  describe('sources', () => {
    it('one address at a glance: traffic, detections about it or its prefix, decisions, whitelist', async () => {
      const det = (id: string, subject: string, kind: 'ip' | 'prefix') => ({
        id,
        detector: kind === 'ip' ? 'dha_source' : 'dha_prefix',
        subject,
        subject_kind: kind,
        reason: 'test',
        confidence: 0.9,
        evidence: { counts: { user_unknown: 9 }, window_s: 600, sample_event_ids: [] },
        ts: '2026-11-27T09:05:00Z',
      });
      await h.writer.write('detections', [
        det('det-a', '198.51.100.1', 'ip'),
        det('det-b', '198.51.100.0/24', 'prefix'),
        det('det-c', '198.51.100.2', 'ip'),
        det('det-d', '2001:db8::/64', 'prefix'),
        det('det-e', '198.51.100.0/40', 'prefix'),
        det('det-f', 'garbage/24', 'prefix'),
        det('det-g', '198.51.100.1/32', 'prefix'),
      ]);
      const r = await get('/api/v1/sources/198.51.100.1?from=2026-11-27T00:00:00Z');
      expect(r.statusCode).toBe(200);
      const s = r.json();
      expect(s.activity.user_unknown).toBe(PER_SOURCE[0]);
      expect(s.activity.rejects).toBe(PER_SOURCE[0]);
      expect(s.activity.first_seen).toBe('2026-11-27T09:00:00Z');
      expect(s.detections.map((d: { id: string }) => d.id).sort()).toEqual(['det-a', 'det-b', 'det-g']);
      expect(
        s.decisions.map((d: { state: string; last_origin: string }) => [d.state, d.last_origin]),
      ).toEqual([['lifted', 'operator:alice']]);
      expect(s.in_force).toEqual([]);
      expect(s.whitelisted).toBeNull();
      const wl = (await get('/api/v1/sources/192.0.2.5')).json();
      expect(wl.whitelisted).toMatchObject({ target: '192.0.2.0/28', source: 'config' });
      expect(wl.activity).toMatchObject({ events: 0, first_seen: null });
      expect((await get('/api/v1/sources/198.51.100.0%2F24')).statusCode).toBe(400);
      expect((await get('/api/v1/sources/198.51.100.1?window=1h&from=-2h')).statusCode).toBe(400);
    });
  });

  describe('fuzz: no input makes a 5xx', () => {
    const value = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.ipV4(),
      fc.ipV6(),
      fc.constantFrom(
        '%FF%FE',
        '%00',
        '<>',
        '198.51.100.0%2F24',
        'now-1h',
        '-1',
        '1e400',
        '[]',
        '{}',
        'any',
        'active',
        'cidr',
        '1h',
        '24',
      ),
    );
    const param = fc.constantFrom(
      'ip',
      'prefix',
      'sender',
      'recipient',
      'queue_id',
      'message_id',
      'host',
      'from',
      'to',
      'limit',
      'window',
      'at',
      'state',
      'type',
      'v4_prefix',
      'contains',
      'x',
    );
    const path = fc.constantFrom(
      '/api/v1/sources/198.51.100.1',
      '/api/v1/events',
      '/api/v1/top/unknown-recipients',
      '/api/v1/decisions',
      '/api/v1/feed/postfix',
      '/api/v1/trace/x',
      '/api/v1/decisions/x',
    );

    it('random query strings', async () => {
      await fc.assert(
        fc.asyncProperty(path, fc.array(fc.tuple(param, value), { maxLength: 4 }), async (p, qs) => {
          const q = qs
            .map(([k, v]) => `${k}=${/%[0-9A-F]{2}/.test(v) ? v : encodeURIComponent(v)}`)
            .join('&');
          const r = await get(`${p}?${q}`);
          expect([p, q, r.statusCode < 500 ? 'ok' : r.body]).toEqual([p, q, 'ok']);
        }),
        { numRuns: 150 },
      );
    });

    it('random bodies for operator adds and whitelist changes', async () => {
      const body = fc.oneof(
        fc.jsonValue(),
        fc.record(
          {
            target: value,
            reason: fc.string({ maxLength: 40 }),
            ttl_s: fc.oneof(fc.integer(), fc.double(), fc.string()),
            reply: fc.string({ maxLength: 60 }),
            expires_at: value,
          },
          { requiredKeys: [] },
        ),
      );
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('/api/v1/decisions', '/api/v1/whitelist'), body, async (url, b) => {
          const r = await h.app.inject({
            method: 'POST',
            url,
            headers: { ...auth(WRITE_TOKEN), 'content-type': 'application/json' },
            payload: JSON.stringify(b) ?? 'null',
          });
          expect([url, b, r.statusCode < 500 ? 'ok' : r.body]).toEqual([url, b, 'ok']);
        }),
        { numRuns: 150 },
      );
      // Whatever the fuzz got through is lifted again, so later tests start clean.
      for (const d of await until(async () => active())) {
        await post(`/api/v1/decisions/${encodeURIComponent(d.id)}/lift`);
      }
      for (const e of (await get('/api/v1/whitelist')).json().entries) {
        if (e.source === 'api') {
          await h.app.inject({
            method: 'DELETE',
            url: `/api/v1/whitelist/${encodeURIComponent(e.target)}`,
            headers: auth(WRITE_TOKEN),
          });
        }
      }
    });
  });

  describe('health and metrics', () => {
    it('/health reports ClickHouse and the bus', async () => {
      const r = await get('/health');
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({
        status: 'ok',
        clickhouse: { ok: true, backend: 'embedded' },
        bus: { configured: true, kind: 'memory', ok: true },
        writes: true,
      });
    });

    it('/api/v1/openapi.json documents every route', async () => {
      const r = await get('/api/v1/openapi.json');
      expect(r.statusCode).toBe(200);
      const doc = r.json();
      expect(doc.openapi).toMatch(/^3\./);
      for (const path of [
        '/api/v1/events',
        '/api/v1/decisions',
        '/api/v1/feed/postfix',
        '/api/v1/whitelist',
        '/health',
      ]) {
        expect(Object.keys(doc.paths)).toContain(path);
      }
      expect(doc.paths['/api/v1/decisions'].post.requestBody).toBeDefined();
      expect(doc.paths['/api/v1/events'].get.parameters.map((p: { name: string }) => p.name)).toContain(
        'prefix',
      );
    });

    it('/metrics counts requests by route and status', async () => {
      const r = await get('/metrics');
      expect(r.statusCode).toBe(200);
      expect(r.body).toMatch(
        /mizugiwa_api_requests_total\{route="\/api\/v1\/events",method="GET",status="400"\} \d+/,
      );
      expect(r.body).toMatch(
        /mizugiwa_api_operator_actions_total\{action="decision_add",outcome="published"\} \d+/,
      );
    });
  });
});
