import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory.js';
import { validate } from '../../src/config/load.js';
import { DetectService } from '../../src/detect/service.js';
import { registry } from '../../src/metrics/registry.js';
import type { TrafficSpec } from '../../src/traffic/generator.js';
import { runScenario } from './run-scenario.js';
import { decisionsByTarget, mixedTraffic, produceEvents, readTopic, settle } from './service-harness.js';

// The detect service on the in-process bus: the same code path as with Kafka (two stages joined by
// the re-keyed topic, dead letters, decisions read back), minus the Kafka-only partition rebuild.

const spec: TrafficSpec = mixedTraffic;

function quietLog() {
  const lines: string[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(c, _e, cb) {
        lines.push(String(c));
        cb();
      },
    }),
  );
  return { log, lines };
}

let bus: Bus | undefined;
afterEach(async () => {
  await bus?.close();
  bus = undefined;
});

describe('detect service on the memory bus', () => {
  it('two members in one group decide the same targets as the in-process engine; invalid messages go to the DLQ', async () => {
    const cfg = validate({}, 'test');
    const direct = runScenario(spec, cfg.detect);
    const expected = new Set(direct.decisions.map((d) => d.target));
    expect(expected.has('203.0.113.66')).toBe(true);
    expect(expected.has('198.51.100.0/24')).toBe(true);
    expect(direct.decisions.filter((d) => d.detector === 'dha_distributed').length).toBeGreaterThan(100);

    bus = new MemoryBus({ partitions: 4 });
    const a = quietLog();
    const b = quietLog();
    const s1 = new DetectService(cfg, { bus, log: a.log });
    const s2 = new DetectService(cfg, { bus, log: b.log });
    await s1.start();
    await s2.start();
    const junk = [
      { key: 'x', value: 'not json' },
      { key: 'x', value: '{"kind":"connect"}' },
      { key: 'x', value: '{"kind":"connect","raw":"","ts":"yesterday"}' },
      { key: 'x', value: '{"kind":"connect","raw":"","ts":"2026-03-02T08:00:00Z","client_ip":"999.1.1.1"}' },
      { key: 'x', value: '[1,2]' },
      { key: 'x', value: 'not json either' },
    ];
    await produceEvents(bus, cfg, direct.traffic.events, junk, () => s1.stats.events + s2.stats.events);
    const total = direct.traffic.events.length + junk.length;
    await settle(
      () => [
        s1.stats.events + s2.stats.events + s1.stats.invalid + s2.stats.invalid,
        s1.stats.signals + s2.stats.signals,
      ],
      ([n]) => n === total,
    );
    // Both members took part.
    expect(s1.stats.events).toBeGreaterThan(0);
    expect(s2.stats.events).toBeGreaterThan(0);

    const decided = decisionsByTarget(await readTopic(bus, cfg.bus.topics.decisions, () => false, 1500));
    expect(new Set(decided.keys())).toEqual(expected);
    for (const d of decided.values()) {
      expect(d.reply).toMatch(/^4\d\d /);
      expect(d.state).toBe('active');
    }

    const dead = await readTopic(bus, cfg.bus.topics.dead_letter, (m) => m.length >= junk.length, 10_000);
    expect(dead.map((m) => m.headers.fault).sort()).toEqual([
      'client_ip',
      'json',
      'json',
      'not_object',
      'raw',
      'ts',
    ]);
    expect(dead.every((m) => m.headers.source_topic === cfg.bus.topics.events)).toBe(true);
    // Logged once per kind of fault (json twice in the input, once in the log).
    const logged = [...a.lines, ...b.lines]
      .filter((l) => l.includes('dead-letter'))
      .map((l) => JSON.parse(l).fault);
    expect(logged.sort()).toEqual(['client_ip', 'json', 'not_object', 'raw', 'ts']);
    const m = await registry.getSingleMetric('mizugiwa_detect_invalid_messages_total')?.get();
    expect(m?.values.find((v) => v.labels.fault === 'json')?.value).toBeGreaterThanOrEqual(2);

    await s1.close();
    await s2.close();
  }, 180_000);

  it('one member catching up a backlog aligns its partitions in event time: same targets as the engine', async () => {
    const cfg = validate({}, 'test');
    const direct = runScenario(spec, cfg.detect);
    bus = new MemoryBus({ partitions: 4 });
    const s1 = new DetectService(cfg, { bus, log: quietLog().log });
    // The whole two hours are on the topic before the member starts.
    await produceEvents(bus, cfg, direct.traffic.events);
    await s1.start();
    await settle(
      () => [s1.stats.events, s1.stats.signals],
      ([n]) => n === direct.traffic.events.length,
    );
    const decided = decisionsByTarget(await readTopic(bus, cfg.bus.topics.decisions, () => false, 1500));
    expect(new Set(decided.keys())).toEqual(new Set(direct.decisions.map((d) => d.target)));
    await s1.close();
  }, 180_000);

  it('two members catching up a backlog align with each other through their published watermarks', async () => {
    const cfg = validate({}, 'test');
    const direct = runScenario(spec, cfg.detect);
    bus = new MemoryBus({ partitions: 4 });
    await produceEvents(bus, cfg, direct.traffic.events);
    const s1 = new DetectService(cfg, { bus, log: quietLog().log });
    // The second member is slow (every batch takes 40 ms more): alone, the first would run hours
    // ahead in event time and stage 2 would see the fleet out of order.
    const s2 = new DetectService(cfg, { bus: slowed(bus, 40), log: quietLog().log });
    await Promise.all([s1.start(), s2.start()]);
    await settle(
      () => [s1.stats.events + s2.stats.events, s1.stats.signals + s2.stats.signals],
      ([n]) => n === direct.traffic.events.length,
      3000,
    );
    expect(s1.stats.events).toBeGreaterThan(0);
    expect(s2.stats.events).toBeGreaterThan(0);
    const decided = decisionsByTarget(await readTopic(bus, cfg.bus.topics.decisions, () => false, 1500));
    // Every target the in-process engine decides is decided; anything more can only be an attacker
    // (stage-2 may take a harvest episode at a slightly different signal), never an innocent.
    const want = new Set(direct.decisions.map((d) => d.target));
    expect([...want].filter((t) => !decided.has(t))).toEqual([]);
    const innocent = [...decided.keys()].filter(
      (t) => !want.has(t) && direct.traffic.truth.get(t)?.role !== 'attacker',
    );
    expect(innocent).toEqual([]);
    await s1.close();
    await s2.close();
  }, 180_000);

  it('a restarted member reads the decisions topic back and does not decide an active target again', async () => {
    const cfg = validate({}, 'test');
    const attack: TrafficSpec = {
      seed: 5,
      start: '2026-03-02T08:00:00Z',
      duration_s: 1800,
      attacks: [
        { kind: 'dha_single', actor: 'h', ip: '203.0.113.66', start_s: 60, unknown: 30, interval_s: 5 },
      ],
    };
    const events = runScenario(attack).traffic.events;
    bus = new MemoryBus({ partitions: 4 });
    const first = new DetectService(cfg, { bus, log: quietLog().log });
    await first.start();
    await produceEvents(bus, cfg, events.slice(0, Math.floor(events.length / 2)));
    await settle(
      () => first.stats.events,
      (n) => n === Math.floor(events.length / 2),
    );
    expect(first.stats.decisions).toBe(1);
    await first.close();

    // A new member of the same group (state lost) sees the rest of the attack.
    const second = new DetectService(cfg, { bus, log: quietLog().log });
    await second.start();
    expect(second.engine.policy.activeFor('203.0.113.66')).toBeDefined();
    await produceEvents(bus, cfg, events.slice(Math.floor(events.length / 2)));
    await settle(
      () => second.stats.events,
      (n) => n === events.length - Math.floor(events.length / 2),
    );
    const all = await readTopic(bus, cfg.bus.topics.decisions, () => false, 1500);
    expect(new Set(all.map((m) => JSON.parse(m.value!.toString()).id)).size).toBe(1);
    await second.close();
  }, 120_000);
});

/** The same bus, but every batch handed to this member's handlers is delayed by `ms`. */
function slowed(inner: Bus, ms: number): Bus {
  return {
    kind: inner.kind,
    ensureTopics: (t) => inner.ensureTopics(t),
    producer: (o) => inner.producer(o),
    close: () => Promise.resolve(),
    consumer: async (opts) => {
      const c = await inner.consumer(opts);
      return {
        run: (handler) =>
          c.run(async (msgs, ctx) => {
            await new Promise((r) => setTimeout(r, ms));
            await handler(msgs, ctx);
          }),
        assignment: () => c.assignment(),
        close: () => c.close(),
      };
    },
  };
}
