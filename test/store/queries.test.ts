import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ClickHouse } from '../../src/clickhouse/client.js';
import type { Decision } from '../../src/decision/decision.js';
import { storeSchema } from '../../src/store/config.js';
import {
  decisionHistory,
  decisionsInForce,
  searchByIp,
  searchByMessageId,
  searchByQueueId,
  searchByRecipient,
  searchBySender,
  topUnknownRecipientSources,
  traceMessage,
} from '../../src/store/queries.js';
import { StoreWriter } from '../../src/store/writer.js';
import { scratchEngine } from './engine.js';
import { decisionFor } from './fixtures.js';
import { harvestLog, parseLog, sendmailTraceEvents, TRACE_MESSAGE_ID, traceLogEvents } from './parsed.js';

// chdb shares the machine's cores with everything else: allow slow inserts and start-up.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Every named query against the embedded engine, on events the real parser made from
// real-shaped Postfix logs, each stored twice (the shipper's at-least-once redelivery).

const cfg = storeSchema.parse({ flush_interval_ms: 20 });
let ch: ClickHouse;
const trace = traceLogEvents();
const smTrace = sendmailTraceEvents();
const harvest = parseLog(harvestLog([12, 7, 3, 1]), 'harvest.log');

describe('named queries on the embedded engine', () => {
  beforeAll(async () => {
    ch = await scratchEngine('mz-queries-', 'mz', cfg);
    const w = await StoreWriter.open(ch, cfg);
    for (let copy = 0; copy < 2; copy++) {
      expect((await w.write('events', [...trace, ...harvest, ...smTrace])).stored).toBe(
        trace.length + harvest.length + smTrace.length,
      );
    }
    await w.close();
  });
  afterAll(async () => {
    await ch?.close();
  });

  it('stored each event twice, as a redelivery would', async () => {
    const rs = await ch.client.query({
      query: 'SELECT count() AS n, uniqExact(id) AS u FROM mz.mail_events',
      format: 'JSONEachRow',
    });
    const [row] = await rs.json<{ n: number; u: number }>();
    expect([Number(row!.n), Number(row!.u)]).toEqual([
      2 * (trace.length + harvest.length + smTrace.length),
      trace.length + harvest.length + smTrace.length,
    ]);
  });

  it('search by IP: one address, newest first, each event once', async () => {
    const r = await searchByIp(ch, '198.51.100.1');
    expect(r.length).toBe(12);
    expect(new Set(r.map((e) => e.id)).size).toBe(12);
    expect(r.every((e) => e.client_ip === '198.51.100.1' && e.reason === 'user_unknown')).toBe(true);
    expect(r.map((e) => e.ts)).toEqual(
      r
        .map((e) => e.ts)
        .sort()
        .reverse(),
    );
    expect(r[0]!.raw).toContain('NOQUEUE: reject: RCPT from unknown[198.51.100.1]');
  });

  it('search by prefix: /24 for IPv4, /64 for IPv6', async () => {
    expect((await searchByIp(ch, '198.51.100.0/24')).length).toBe(12 + 7 + 3 + 1);
    const v6 = await searchByIp(ch, '2001:db8:1::/64');
    expect(v6.length).toBe(6);
    expect(new Set(v6.map((e) => e.client_ip))).toEqual(new Set(['2001:db8:1::5', '2001:db8:1:0:ffff::6']));
    expect((await searchByIp(ch, '2001:db8:2::/64')).length).toBe(0);
  });

  it('time range and limit', async () => {
    const r = await searchByIp(ch, '198.51.100.1', {
      from: '2026-11-27T09:00:05Z',
      to: '2026-11-27T09:00:08Z',
    });
    expect(r.map((e) => e.ts)).toEqual([
      '2026-11-27T09:00:08.000000Z',
      '2026-11-27T09:00:07.000000Z',
      '2026-11-27T09:00:06.000000Z',
      '2026-11-27T09:00:05.000000Z',
    ]);
    expect((await searchByIp(ch, '198.51.100.0/24', { limit: 5 })).length).toBe(5);
    await expect(searchByIp(ch, '198.51.100.0/24', { limit: 0 })).rejects.toThrow(/limit/);
    await expect(searchByIp(ch, 'no.such/ip')).rejects.toThrow(/not an IP address or prefix/);
  });

  it('search by sender (case-insensitive) and by the null sender', async () => {
    const r = await searchBySender(ch, 'Alice@Sender.Example.org');
    expect(r.map((e) => e.host).sort()).toEqual(['filter1', 'mbox1', 'mx1']);
    expect(r.every((e) => e.kind === 'queued')).toBe(true);
    const bounces = await searchBySender(ch, '<>');
    expect(bounces.map((e) => e.queue_id)).toEqual(['7E8F9A0B1C']);
    expect(bounces[0]!.sender).toBe('');
  });

  it('search by recipient', async () => {
    const r = await searchByRecipient(ch, '<BOB@example.test>');
    expect(r.map((e) => `${e.host} ${e.status}`).sort()).toEqual(['filter1 sent', 'mbox1 sent', 'mx1 sent']);
    expect((await searchByRecipient(ch, 'u0.3@example.test'))[0]!.client_ip).toBe('198.51.100.1');
  });

  it('search by queue id, optionally on one host', async () => {
    const r = await searchByQueueId(ch, '4F1A2B3C4D');
    expect(r.map((e) => e.kind).sort()).toEqual(['client', 'delivery', 'message_id', 'queued', 'removed']);
    expect(await searchByQueueId(ch, '4F1A2B3C4D', { host: 'filter1' })).toEqual([]);
  });

  it('search by message id, with or without angle brackets; fields come back as the parser made them', async () => {
    const r = await searchByMessageId(ch, `<${TRACE_MESSAGE_ID}>`);
    expect(r.map((e) => e.host).sort()).toEqual(['filter1', 'mbox1', 'mx1']);
    const original = trace.find((e) => e.host === 'mx1' && e.kind === 'message_id')!;
    const stored = r.find((e) => e.host === 'mx1')!;
    const { ingested_at, ...rest } = stored;
    expect(ingested_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    const expected = Object.fromEntries(Object.entries(original).filter(([, v]) => v !== undefined));
    expect({ ...rest, ts: rest.ts!.replace('.000000Z', '+00:00') }).toEqual(expected);
  });

  it('keeps command counts and the delivery details', async () => {
    const d = (await searchByIp(ch, '192.0.2.10')).find((e) => e.kind === 'disconnect')!;
    expect(d.command_counts?.rcpt).toEqual({ ok: 1, total: 1 });
  });

  it('trace: MX -> filter -> mailbox, linked by the queue id each next hop answered', async () => {
    const t = await traceMessage(ch, TRACE_MESSAGE_ID);
    expect(t.hops.map((h) => `${h.host}/${h.queue_id}`)).toEqual([
      'mx1/4F1A2B3C4D',
      'filter1/5A6B7C8D9E',
      'mbox1/6C7D8E9F0A',
    ]);
    const [mx, filter, mbox] = t.hops;
    expect(mx!.client_ip).toBe('192.0.2.10');
    expect(mx!.sender).toBe('alice@sender.example.org');
    expect(mx!.deliveries).toMatchObject([
      {
        recipient: 'bob@example.test',
        relay: 'filter1.example.test[10.0.0.2]:10024',
        status: 'sent',
        next_hop: 'filter1/5A6B7C8D9E',
      },
    ]);
    expect(filter!.client_ip).toBe('10.0.0.1');
    expect(filter!.deliveries[0]!.next_hop).toBe('mbox1/6C7D8E9F0A');
    expect(mbox!.deliveries).toMatchObject([
      { relay: 'local', status: 'sent', text: 'delivered to mailbox' },
    ]);
    expect(mbox!.deliveries[0]!.next_hop).toBeUndefined();
    // each event once although stored twice; the unrelated message stays out
    const ids = t.hops.flatMap((h) => h.events.map((e) => e.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(trace.filter((e) => e.queue_id && e.queue_id !== '7E8F9A0B1C').length);
    expect((await traceMessage(ch, 'nope@nowhere')).hops).toEqual([]);
  });

  it('trace across MTAs: a Sendmail MX hands over to a Postfix mailbox server', async () => {
    const t = await traceMessage(ch, '<sm.20261127.1100@partner.example>');
    expect(t.hops.map((h) => `${h.host}/${h.queue_id}`)).toEqual(['mx2/5ARB00A1004001', 'mbox1/9F8E7D6C5B']);
    expect(t.hops[0]!.events[0]!.mta).toBe('sendmail');
    expect(t.hops[0]!.sender).toBe('carol@partner.example');
    expect(t.hops[0]!.deliveries).toMatchObject([
      { recipient: 'dave@example.test', status: 'sent', next_hop: 'mbox1/9F8E7D6C5B' },
    ]);
    expect(t.hops[1]!.deliveries).toMatchObject([{ relay: 'local', status: 'sent' }]);
  });

  it('top sources by unknown recipients: per address and per /24 and /64', async () => {
    const top = await topUnknownRecipientSources(ch, {
      from: '2026-11-27T09:00:00Z',
      to: '2026-11-27T10:00:00Z',
      limit: 3,
    });
    expect(top.map((s) => [s.source, s.unknown_users, s.recipients])).toEqual([
      ['198.51.100.1', 12, 12],
      ['198.51.100.2', 7, 7],
      ['198.51.100.3', 3, 3],
    ]);
    expect(top[0]!.hosts).toEqual(['mx1']);
    const nets = await topUnknownRecipientSources(ch, { v4_prefix: 24, v6_prefix: 64 });
    expect(nets.map((s) => [s.source, s.unknown_users, s.addresses])).toEqual([
      ['198.51.100.0/24', 23, 4],
      ['2001:db8:1::/64', 6, 2],
    ]);
    expect(await topUnknownRecipientSources(ch, { from: '2026-11-28T00:00:00Z' })).toEqual([]);
  });

  describe('decisions', () => {
    const created = decisionFor('198.51.100.0/24', {
      id: 'd1',
      created_at: '2026-11-27T09:10:00Z',
      expires_at: '2026-11-27T10:10:00Z',
    });
    const extended: Decision = {
      ...created,
      expires_at: '2026-11-27T11:10:00Z',
      updated_at: '2026-11-27T10:00:00Z',
    };
    const lifted: Decision = {
      ...extended,
      state: 'lifted',
      origin: 'operator:ana',
      updated_at: '2026-11-27T10:30:00Z',
    };
    const other = decisionFor('2001:db8:1::5', {
      id: 'd2',
      created_at: '2026-11-27T09:20:00Z',
      expires_at: '2026-11-27T09:40:00Z',
    });
    const otherExpired: Decision = { ...other, state: 'expired' };

    beforeAll(async () => {
      const w = await StoreWriter.open(ch, cfg);
      const all = [created, extended, lifted, other, otherExpired];
      for (let copy = 0; copy < 2; copy++)
        await w.write(
          'decisions',
          all,
          all.map((_, i) => ({ timestamp: Date.parse('2026-11-27T12:00:00Z') + i })),
        );
      await w.close();
    });

    it('in force at T', async () => {
      const at = async (t: string, ip?: string) =>
        (await decisionsInForce(ch, t, { ip })).map((d) => `${d.id} ${d.expires_at}`);
      expect(await at('2026-11-27T09:05:00Z')).toEqual([]);
      expect(await at('2026-11-27T09:30:00Z')).toEqual([
        'd1 2026-11-27T10:10:00.000Z',
        'd2 2026-11-27T09:40:00.000Z',
      ]);
      expect(await at('2026-11-27T09:30:00Z', '198.51.100.77')).toEqual(['d1 2026-11-27T10:10:00.000Z']);
      expect(await at('2026-11-27T09:45:00Z')).toEqual(['d1 2026-11-27T10:10:00.000Z']);
      expect(await at('2026-11-27T10:15:00Z')).toEqual(['d1 2026-11-27T11:10:00.000Z']);
      expect(await at('2026-11-27T10:45:00Z')).toEqual([]);
      const [d] = await decisionsInForce(ch, '2026-11-27T09:30:00Z', { ip: '198.51.100.1' });
      expect(d).toMatchObject({
        target: '198.51.100.0/24',
        state: 'active',
        reply: created.reply,
        evidence: created.evidence,
      });
    });

    it('audit trail: created, extended, lifted, with who', async () => {
      const h = await decisionHistory(ch, 'd1');
      expect(h.map((c) => [c.change, c.origin, c.changed_at])).toEqual([
        ['created', 'dha_source', '2026-11-27T09:10:00.000Z'],
        ['extended', 'dha_source', '2026-11-27T10:00:00.000Z'],
        ['lifted', 'operator:ana', '2026-11-27T10:30:00.000Z'],
      ]);
      expect((await decisionHistory(ch, 'd2')).map((c) => c.change)).toEqual(['created', 'expired']);
    });
  });
});
