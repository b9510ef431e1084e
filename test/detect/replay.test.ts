import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { defaultDetectConfig } from '../../src/detect/config.js';
import { type ReplayRecord, replay } from '../../src/detect/replay.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { LineParser } from '../../src/parse/parser.js';
import { generate, type TrafficSpec, toLogFiles } from '../../src/traffic/generator.js';
import { runScenario } from './run-scenario.js';

const spec: TrafficSpec = {
  seed: 42,
  start: '2026-03-02T08:00:00Z',
  duration_s: 3600,
  render: true,
  legit: { senders: 300, messages_per_hour: 4000, typo_rate: 0.02, lists: 3, dsn_share: 0.02 },
  attacks: [
    { kind: 'dha_single', actor: 'harvester', ip: '203.0.113.66', start_s: 900, unknown: 40 },
    {
      kind: 'bot_flow',
      actor: 'flooder',
      ip: '203.0.113.99',
      start_s: 1200,
      duration_s: 600,
      sessions: 300,
      pregreet_share: 0.3,
    },
    {
      kind: 'dha_prefix',
      actor: 'subnet',
      net24: '198.51.100',
      sources: 10,
      unknown_each: 4,
      start_s: 600,
      duration_s: 1200,
    },
  ],
};

const FIELDS = [
  'kind',
  'reason',
  'client_ip',
  'host',
  'sender',
  'recipient',
  'nrcpt',
  'mta',
  'queue_id',
  'helo',
] as const satisfies readonly (keyof MailEvent)[];

describe('traffic generator ↔ parser', () => {
  it('every generated line parses back into the event the generator made (detection-relevant fields)', () => {
    const t = generate(spec);
    const parser = new LineParser({});
    const kinds = new Set<string>();
    for (const ev of t.events) {
      const p = parser.parse(ev.raw);
      kinds.add(ev.kind);
      for (const f of FIELDS) expect([ev.raw, f, p[f]]).toEqual([ev.raw, f, ev[f]]);
      expect(Date.parse(p.ts!)).toBe(Date.parse(ev.ts!));
      if (ev.command_counts !== undefined) expect(p.command_counts).toEqual(ev.command_counts);
    }
    // The spec exercises every shape the detectors read.
    for (const k of [
      'connect',
      'reject',
      'client',
      'queued',
      'disconnect',
      'pregreet',
      'no_mail',
      'lost_connection',
    ]) {
      expect(kinds).toContain(k);
    }
  }, 120_000);
});

describe('replay', () => {
  it('log files of several MTAs, merged by time, give the decisions the events give', async () => {
    const direct = runScenario({ ...spec, render: false });
    const files = toLogFiles(generate(spec));
    expect(files.size).toBe(3);
    const records: ReplayRecord[] = [];
    const stats = await replay(
      [...files].map(([host, text]) => ({ name: `${host}.log`, stream: Readable.from([Buffer.from(text)]) })),
      defaultDetectConfig(),
      {},
      (r) => {
        records.push(r);
      },
    );
    expect(stats.lines).toBe(direct.traffic.events.length);
    expect(stats.no_time).toBe(0);
    const decisions = records.filter((r) => r.type === 'decision');
    const key = (d: { target: string; detector: string }) => `${d.detector} ${d.target}`;
    expect(new Set(decisions.map(key))).toEqual(new Set(direct.decisions.map(key)));
    expect(new Set(decisions.map((d) => d.target))).toEqual(
      new Set(['203.0.113.66', '203.0.113.99', '198.51.100.0/24']),
    );
    // Every time in the output is log time, and evidence points at FILE:LINE.
    for (const d of decisions) {
      const created = Date.parse(d.created_at);
      expect(created).toBeGreaterThanOrEqual(direct.traffic.startMs);
      expect(created).toBeLessThanOrEqual(direct.traffic.endMs + 60_000);
      for (const id of d.evidence.sample_event_ids) expect(id).toMatch(/^mx\d\.log:\d+$/);
    }
    const dets = records.filter((r) => r.type === 'detection');
    expect(dets.length).toBeGreaterThanOrEqual(decisions.length);
    expect(records.every((r) => r.type === 'detection' || r.type === 'decision')).toBe(true);
  }, 120_000);

  it('garbage, NUL, invalid UTF-8 and over-long lines are counted, never fatal', async () => {
    const junk = Buffer.concat([
      Buffer.from('not a log line\n\0\0\0\n'),
      Buffer.from([0xff, 0xfe, 0x0a]),
      Buffer.from(`${'x'.repeat(1_000_000)}\n`),
      Buffer.from('2026-03-02T08:00:00Z mx1 postfix/smtpd[1]: connect from unknown[203.0.113.5]\n'),
    ]);
    const records: ReplayRecord[] = [];
    const stats = await replay(
      [{ name: 'junk.log', stream: Readable.from([junk]) }],
      defaultDetectConfig(),
      {},
      (r) => {
        records.push(r);
      },
    );
    expect(stats.lines).toBe(5);
    expect(stats.events).toBe(1);
    expect(stats.no_time).toBe(4);
    expect(records).toEqual([]);
  }, 60_000);
});
