import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/decision/decision.js';
import { defaultDetectConfig } from '../../src/detect/config.js';
import { DecisionPolicy, type DecisionRequest } from '../../src/detect/policy/policy.js';
import { Whitelist } from '../../src/detect/policy/whitelist.js';
import { decodeSignal } from '../../src/detect/signal.js';
import { decodeMailEvent } from '../../src/detect/validate.js';
import { validate } from '../../src/config/load.js';

const T0 = Date.parse('2026-03-02T08:00:00Z');
const silent = pino({ level: 'silent' });

function req(target: string, atMs: number, over: Partial<DecisionRequest> = {}): DecisionRequest {
  return {
    detector: 'dha_source',
    target,
    reason: 'test',
    confidence: 0.9,
    evidence: { counts: { user_unknown: 10 }, window_s: 3600, sample_event_ids: [] },
    reply: '450 4.7.1 Try later',
    atMs,
    windowStartMs: Math.floor(atMs / 3_600_000) * 3_600_000,
    detectionId: 'det-x',
    ...over,
  };
}

function policy(over: unknown = {}) {
  return new DecisionPolicy(defaultDetectConfig({ policy: over }).policy, silent);
}

describe('DecisionPolicy', () => {
  it('one active decision per target: a repeat inside extend_min is unchanged, later it is extended under the same id', () => {
    const p = policy();
    const a = p.decide(req('192.0.2.1', T0));
    expect(a.kind).toBe('new');
    const first = (a as { decision: Decision }).decision;
    expect(first.expires_at).toBe(new Date(T0 + 3_600_000).toISOString());
    expect(first.created_at).toBe(new Date(T0).toISOString());
    expect(p.decide(req('192.0.2.1', T0 + 60_000)).kind).toBe('unchanged');
    const ext = p.decide(req('192.0.2.1', T0 + 600_000));
    expect(ext.kind).toBe('extended');
    const d = (ext as { decision: Decision }).decision;
    expect(d.id).toBe(first.id);
    expect(d.created_at).toBe(first.created_at);
    expect(d.expires_at).toBe(new Date(T0 + 600_000 + 3_600_000).toISOString());
  });

  it('repeat offenders get factor × longer decisions, up to the ceiling', () => {
    const p = policy({ duration_s: 3600, repeat_factor: 3, max_duration_s: 20000 });
    const lengths: number[] = [];
    let t = T0;
    for (let i = 0; i < 4; i++) {
      const out = p.decide(req('192.0.2.7', t));
      expect(out.kind).toBe('new');
      const d = (out as { decision: Decision }).decision;
      lengths.push((Date.parse(d.expires_at) - Date.parse(d.created_at)) / 1000);
      t = Date.parse(d.expires_at) + 60_000;
    }
    expect(lengths).toEqual([3600, 10800, 20000, 20000]);
  });

  it('an offender forgotten after repeat_memory_s starts again at the base duration', () => {
    const p = policy({ repeat_memory_s: 7200 });
    p.decide(req('192.0.2.8', T0));
    const later = p.decide(req('192.0.2.8', T0 + 4 * 3_600_000));
    const d = (later as { decision: Decision }).decision;
    expect(d.offense).toBe(1);
  });

  it('whitelist (both directions of overlap) and dry run refuse; refusals name why', () => {
    const p = policy({ whitelist: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.128/25'] });
    expect(p.decide(req('10.1.2.3', T0))).toEqual({ kind: 'refused', refusal: 'whitelisted' });
    expect(p.decide(req('2001:db8::1', T0))).toEqual({ kind: 'refused', refusal: 'whitelisted' });
    expect(p.decide(req('192.0.2.0/24', T0))).toEqual({ kind: 'refused', refusal: 'whitelisted' });
    expect(p.decide(req('::ffff:10.9.9.9', T0))).toEqual({ kind: 'refused', refusal: 'whitelisted' });
    expect(p.decide(req('192.0.2.1', T0)).kind).toBe('new');
    expect(policy({ dry_run: true }).decide(req('192.0.2.1', T0))).toEqual({
      kind: 'refused',
      refusal: 'dry_run',
    });
  });

  it('caps: new per minute and active; decisions that expired free room', () => {
    const p = policy({ max_new_per_minute: 2, max_active: 3 });
    expect(p.decide(req('192.0.2.1', T0)).kind).toBe('new');
    expect(p.decide(req('192.0.2.2', T0)).kind).toBe('new');
    expect(p.decide(req('192.0.2.3', T0))).toEqual({ kind: 'refused', refusal: 'cap_rate' });
    expect(p.decide(req('192.0.2.3', T0 + 60_000)).kind).toBe('new');
    expect(p.decide(req('192.0.2.4', T0 + 120_000))).toEqual({ kind: 'refused', refusal: 'cap_active' });
    expect(p.decide(req('192.0.2.4', T0 + 3_700_000)).kind).toBe('new');
  });

  it('decisions read back from the topic block duplicates; a lift or tombstone frees the target', () => {
    const p = policy();
    const other = (p.decide(req('192.0.2.9', T0)) as { decision: Decision }).decision;
    const q = policy();
    q.observe(other);
    expect(q.decide(req('192.0.2.9', T0 + 1000)).kind).toBe('unchanged');
    q.observe({ ...other, state: 'lifted' });
    expect(q.decide(req('192.0.2.9', T0 + 2000)).kind).toBe('new');
    q.forget('192.0.2.9');
    expect(q.activeFor('192.0.2.9')).toBeUndefined();
  });
});

describe('Whitelist', () => {
  it('rejects garbage entries with the entry named', () => {
    expect(() => new Whitelist(['10.0.0.0/8', 'not-an-ip'])).toThrow(/not-an-ip/);
  });
});

describe('config', () => {
  it('rejects a 5xx reply and a window longer than the counters keep, naming the key', () => {
    expect(() => validate({ detect: { dha_source: { reply: '550 5.7.1 go away' } } }, 'cfg')).toThrow(
      /detect\.dha_source\.reply/,
    );
    expect(() => validate({ detect: { bot_flow: { window_s: 7200 } } }, 'cfg')).toThrow(
      /detect\.bot_flow\.window_s/,
    );
    expect(() => validate({ detect: { thresholds: 1 } }, 'cfg')).toThrow(/thresholds: unknown key/);
    expect(() =>
      validate({ detect: { policy: { whitelist: ['10.0.0.0/8', '10.0.0.0/99'] } } }, 'cfg'),
    ).toThrow(/detect\.policy\.whitelist\.1: not an IP address or CIDR/);
  });
});

describe('message validation (dead-letter faults)', () => {
  it('names each fault and accepts a valid event', () => {
    expect(decodeMailEvent(null)).toBe('tombstone');
    expect(decodeMailEvent('{')).toBe('json');
    expect(decodeMailEvent('"x"')).toBe('not_object');
    expect(decodeMailEvent('{"kind":"Connect!","raw":""}')).toBe('kind');
    expect(decodeMailEvent('{"kind":"connect"}')).toBe('raw');
    expect(decodeMailEvent('{"kind":"connect","raw":"","ts":"soon"}')).toBe('ts');
    expect(decodeMailEvent('{"kind":"connect","raw":"","ts":"2026-03-02T08:00:00Z","host":5}')).toBe(
      'field_host',
    );
    expect(
      decodeMailEvent('{"kind":"connect","raw":"","ts":"2026-03-02T08:00:00Z","client_ip":"1.2.3"}'),
    ).toBe('client_ip');
    const ok = decodeMailEvent(
      Buffer.from('{"kind":"connect","raw":"x","ts":"2026-03-02T08:00:00Z","client_ip":"::1","sender":null}'),
    );
    expect(typeof ok).toBe('object');
    expect(ok).not.toHaveProperty('sender');
    expect(decodeSignal('{"k":"x:1","t":"u","ms":1,"h":"a"}')).toBe('signal_key');
    expect(decodeSignal('{"k":"d:example.net","t":"u","ms":1,"h":"a"}')).toMatchObject({
      k: 'd:example.net',
    });
  });
});
