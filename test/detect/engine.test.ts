import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision/decision.js';
import { defaultDetectConfig } from '../../src/detect/config.js';
import { DetectEngine } from '../../src/detect/engine.js';
import type { MailEvent } from '../../src/event/mail-event.js';

const silent = pino({ level: 'silent' });
const T0 = Date.parse('2026-03-02T08:00:00Z');

function unknown(ip: string, ms: number, host = 'mx1'): MailEvent {
  return {
    kind: 'reject',
    reason: 'user_unknown',
    client_ip: ip,
    host,
    sender: 'x@y.example',
    recipient: `u${ms}@example.net`,
    ts: new Date(ms).toISOString(),
    raw: '',
  };
}

function engine(cfg: unknown = {}) {
  const decisions: Decision[] = [];
  const e = new DetectEngine(
    defaultDetectConfig(cfg),
    { detection: () => {}, decision: (d) => decisions.push(d) },
    { log: silent },
  );
  return { e, decisions };
}

describe('DetectEngine event time', () => {
  it('a partition running two hours behind another is not blinded: its harvest is still decided, at log time', () => {
    const { e, decisions } = engine();
    for (let i = 0; i < 100; i++)
      e.onEvent(unknown(`198.18.0.${i}`, T0 + 2 * 3_600_000 + i * 1000), undefined, 0);
    for (let i = 0; i < 10; i++)
      expect(e.onEvent(unknown('203.0.113.5', T0 + i * 10_000), undefined, 1)).toBe(true);
    const d = decisions.find((x) => x.target === '203.0.113.5');
    expect(d?.created_at).toBe(new Date(T0 + 90_000).toISOString());
    expect(e.late).toBe(0);
    expect(e.lateSignals).toBe(0);
  });

  it('within one partition, an event older than every window is dropped and counted; a late one inside is counted', () => {
    const { e } = engine();
    e.onEvent(unknown('198.18.0.1', T0 + 3 * 3_600_000));
    expect(e.onEvent(unknown('198.18.0.2', T0))).toBe(false);
    expect(e.dropped).toBe(1);
    expect(e.onEvent(unknown('198.18.0.3', T0 + 3 * 3_600_000 - 600_000))).toBe(true);
    expect(e.late).toBe(2);
  });

  it('per-host clock skew is corrected before windows see the event', () => {
    const { e, decisions } = engine({ window: { host_skew_s: { mx9: 7200 } } });
    for (let i = 0; i < 10; i++) e.onEvent(unknown('203.0.113.6', T0 + 7_200_000 + i * 1000, 'mx9'));
    expect(decisions[0]?.created_at).toBe(new Date(T0 + 9000).toISOString());
  });

  it('an event stamped far ahead of the wall clock is clamped, so it cannot push the watermark into the future', () => {
    const { e } = engine({ window: { max_future_s: 60 } });
    const wall = T0;
    e.onEvent(unknown('198.18.0.1', T0 + 365 * 86_400_000), wall);
    expect(e.newestMs).toBe(T0 + 60_000);
  });

  it('events without a usable time are counted, not fatal', () => {
    const { e } = engine();
    expect(e.onEvent({ kind: 'connect', raw: 'x' })).toBe(false);
    expect(e.onEvent({ kind: 'connect', raw: 'x', ts: 'garbage' })).toBe(false);
    expect(e.noTime).toBe(2);
  });

  it('muted (state rebuild): state is updated, nothing is emitted, and the attack resumes where it was', () => {
    const { e, decisions } = engine();
    e.muted = true;
    for (let i = 0; i < 7; i++) e.onEvent(unknown('203.0.113.7', T0 + i * 1000));
    e.muted = false;
    expect(decisions).toEqual([]);
    for (let i = 7; i < 10; i++) e.onEvent(unknown('203.0.113.7', T0 + i * 1000));
    expect(decisions.map((d) => d.target)).toEqual(['203.0.113.7']);
  });
});

describe('prefixOf', () => {
  it('gives the /24 and /64 (or configured) network of an address', async () => {
    const { prefixOf } = await import('../../src/detect/source-stage.js');
    expect(prefixOf('203.0.113.7', 24, 64)).toBe('203.0.113.0/24');
    expect(prefixOf('203.0.113.7', 16, 64)).toBe('203.0.0.0/16');
    expect(prefixOf('2001:db8:1:2:3:4:5:6', 24, 64)).toBe('2001:db8:1:2::/64');
    expect(prefixOf('::ffff:198.51.100.9', 24, 64)).toBe('198.51.100.0/24');
    expect(prefixOf('garbage', 24, 64)).toBeUndefined();
  });
});
