import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Decision } from '../../src/decision/decision.js';
import { parseNet } from '../../src/detect/policy/whitelist.js';
import { registry } from '../../src/metrics/registry.js';
import type { Role, TrafficSpec } from '../../src/traffic/generator.js';
import { runScenario } from './run-scenario.js';

// Data-driven detector cases: each testdata/*.yaml is a traffic scenario (generator spec with
// ground truth), detect config overrides and the expected outcome. Adding a case is adding a file.

interface Expect {
  decided?: {
    actor: string;
    detector?: string;
    share?: number;
    count?: number;
    before_nth_unknown?: number;
  }[];
  never_decided_roles?: Role[];
  detected?: {
    detector: string;
    subject?: string;
    no_decision?: string;
    within_s_of_mark?: { mark: string; s: number };
  }[];
  decided_targets?: string[];
  max_decisions?: number;
  decisions_count?: number;
  log_contains?: string;
  metric?: { name: string; min: number };
  decision_durations?: { target: string; seconds: number[] };
}

interface Case {
  description: string;
  traffic: TrafficSpec;
  config?: unknown;
  expect: Expect;
}

const dir = join(import.meta.dirname, 'testdata');
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

describe('detector scenarios (test/detect/testdata)', () => {
  it('has cases', () => {
    expect(files.length).toBeGreaterThan(5);
  });

  for (const file of files) {
    const c = parseYaml(readFileSync(join(dir, file), 'utf8')) as Case;
    it(`${file}: ${c.description.trim().split('\n')[0]}`, async () => {
      const { traffic, detections, decisions, log } = runScenario(c.traffic, c.config ?? {});
      const e = c.expect;
      const targets = new Set(decisions.map((d) => d.target));
      const firstOf = new Map<string, Decision>();
      for (const d of decisions) if (!firstOf.has(d.id)) firstOf.set(d.id, d);

      // One active decision per target at any time: a target's decisions never overlap.
      const byTarget = new Map<string, Decision[]>();
      for (const d of firstOf.values()) byTarget.set(d.target, [...(byTarget.get(d.target) ?? []), d]);
      for (const ds of byTarget.values()) {
        for (let i = 1; i < ds.length; i++) {
          const prevLast = decisions.filter((x) => x.id === ds[i - 1]!.id).at(-1)!;
          expect(Date.parse(ds[i]!.created_at)).toBeGreaterThanOrEqual(Date.parse(prevLast.expires_at));
        }
      }
      for (const d of decisions) {
        expect(d.reply).toMatch(/^4\d\d 4\.\d+\.\d+ /);
        expect(Date.parse(d.expires_at)).toBeGreaterThan(Date.parse(d.created_at));
        expect(d.action).toBe('tempfail');
      }

      for (const want of e.decided ?? []) {
        const actorIps = [...traffic.truth].filter(([, t]) => t.actor === want.actor).map(([ip]) => ip);
        expect(actorIps.length).toBeGreaterThan(0);
        const hit = actorIps.filter((ip) =>
          decisions.some(
            (d) => d.target === ip && (want.detector === undefined || d.detector === want.detector),
          ),
        );
        if (want.share !== undefined) expect(hit.length / actorIps.length).toBeGreaterThanOrEqual(want.share);
        if (want.count !== undefined) expect(hit.length).toBe(want.count);
        if (want.before_nth_unknown !== undefined) {
          for (const ip of actorIps) {
            const unknowns = traffic.events.filter(
              (ev) => ev.client_ip === ip && ev.kind === 'reject' && ev.reason === 'user_unknown',
            );
            const nth = unknowns[want.before_nth_unknown - 1];
            expect(nth).toBeDefined();
            const first = decisions.find((d) => d.target === ip);
            expect(first).toBeDefined();
            expect(Date.parse(first!.created_at)).toBeLessThan(Date.parse(nth!.ts!));
          }
        }
      }

      if (e.never_decided_roles !== undefined) {
        const roles = new Set(e.never_decided_roles);
        const innocent = [...traffic.truth].filter(([, t]) => roles.has(t.role)).map(([ip]) => ip);
        const wrong = innocent.filter((ip) => targets.has(ip) || [...targets].some((t) => coversIp(t, ip)));
        expect(wrong).toEqual([]);
      }

      for (const want of e.detected ?? []) {
        const found = detections.filter(
          (d) =>
            d.detector === want.detector &&
            (want.subject === undefined || d.subject === want.subject) &&
            (want.no_decision === undefined || d.no_decision === want.no_decision),
        );
        expect(found.length, `${want.detector} ${want.subject ?? ''}`).toBeGreaterThan(0);
        if (want.within_s_of_mark !== undefined) {
          const mark = traffic.marks[want.within_s_of_mark.mark];
          expect(mark).toBeDefined();
          const first = Math.min(...found.map((d) => Date.parse(d.ts)));
          expect(first).toBeGreaterThanOrEqual(mark!);
          expect(first - mark!).toBeLessThanOrEqual(want.within_s_of_mark.s * 1000);
        }
      }

      for (const t of e.decided_targets ?? []) expect([...targets]).toContain(t);
      if (e.max_decisions !== undefined) expect(firstOf.size).toBeLessThanOrEqual(e.max_decisions);
      if (e.decisions_count !== undefined) expect(firstOf.size).toBe(e.decisions_count);
      if (e.log_contains !== undefined) expect(log.join('')).toContain(e.log_contains);
      if (e.metric !== undefined) {
        const m = await registry.getSingleMetric(e.metric.name)?.get();
        const total = (m?.values ?? []).reduce((a, v) => a + v.value, 0);
        expect(total).toBeGreaterThanOrEqual(e.metric.min);
      }
      if (e.decision_durations !== undefined) {
        const ds = [...firstOf.values()].filter((d) => d.target === e.decision_durations!.target);
        const secs = ds.map((d) => (Date.parse(d.expires_at) - Date.parse(d.created_at)) / 1000);
        expect(secs).toEqual(e.decision_durations.seconds);
      }
    }, 120_000);
  }
});

function coversIp(target: string, ip: string): boolean {
  if (!target.includes('/')) return false;
  const [net, len] = parseNet(target);
  const [addr] = parseNet(ip);
  return net.kind() === addr.kind() && addr.match(net as never, len);
}
