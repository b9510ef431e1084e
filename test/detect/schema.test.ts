import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario } from './run-scenario.js';

// The records the detector emits keep to schemas/decision.schema.json and detection.schema.json:
// required fields present, no field the schema does not know, enums and patterns respected.

interface Schema {
  required: string[];
  properties: Record<
    string,
    {
      enum?: string[];
      const?: string;
      pattern?: string;
      properties?: Record<string, unknown>;
      required?: string[];
    }
  >;
}
const load = (f: string) =>
  JSON.parse(readFileSync(join(import.meta.dirname, '../../schemas', f), 'utf8')) as Schema;

function check(schema: Schema, rec: Record<string, unknown>): void {
  for (const r of schema.required) expect(rec, r).toHaveProperty(r);
  for (const [k, v] of Object.entries(rec)) {
    const p = schema.properties[k];
    expect(p, `unknown field ${k}`).toBeDefined();
    if (p?.enum) expect(p.enum).toContain(v);
    if (p?.const) expect(v).toBe(p.const);
    if (p?.pattern) expect(String(v)).toMatch(new RegExp(p.pattern));
    if (k === 'evidence') {
      const ev = p!;
      for (const r of ev.required ?? []) expect(v).toHaveProperty(r);
      for (const ek of Object.keys(v as object))
        expect(ev.properties, `unknown evidence field ${ek}`).toHaveProperty(ek);
    }
  }
}

describe('output records match their JSON schemas', () => {
  it('decisions and detections of every detector', () => {
    const r = runScenario(
      {
        seed: 9,
        start: '2026-03-02T08:00:00Z',
        duration_s: 5400,
        hosts: [{ name: 'mx1', mta: 'postfix' }],
        legit: { senders: 300, messages_per_hour: 3000, dsn_share: 0.02 },
        attacks: [
          { kind: 'dha_single', actor: 'h', ip: '203.0.113.66', start_s: 3700, unknown: 30 },
          {
            kind: 'dha_prefix',
            actor: 'p',
            net24: '198.51.100',
            sources: 10,
            unknown_each: 4,
            start_s: 3700,
            duration_s: 900,
          },
          {
            kind: 'dha_distributed',
            actor: 'b',
            bots: 120,
            start_s: 3700,
            duration_s: 1200,
            domain: 'example.org',
          },
          { kind: 'bot_flow', actor: 'f', ip: '203.0.113.99', start_s: 3700, duration_s: 600, sessions: 200 },
          { kind: 'bounce_storm', actor: 's', start_s: 4000, duration_s: 300, sources: 50, per_minute: 600 },
        ],
      },
      { bounce_storm: { decide_top_n: 3 }, policy: { whitelist: ['203.0.113.99/32'] } },
    );
    const dec = load('decision.schema.json');
    const det = load('detection.schema.json');
    for (const d of r.decisions) check(dec, d as unknown as Record<string, unknown>);
    for (const d of r.detections) check(det, d as unknown as Record<string, unknown>);
    const seen = new Set(r.detections.map((d) => `${d.detector}/${d.subject_kind}/${d.no_decision ?? ''}`));
    for (const k of [
      'dha_source/ip/',
      'dha_prefix/prefix/',
      'dha_distributed/domain/not_decided',
      'dha_distributed/ip/',
      'bot_flow/ip/whitelisted',
      'bounce_storm/fleet/not_decided',
      'bounce_storm/ip/',
    ]) {
      expect(seen).toContain(k);
    }
  }, 120_000);
});
