import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Bus } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/create.js';
import { partitionForKey } from '../../src/bus/partition.js';
import { type Config, configSchema } from '../../src/config/config.js';
import { KafkaRange } from '../../src/detect/kafka-range.js';
import { DetectService } from '../../src/detect/service.js';
import { generate, type TrafficSpec } from '../../src/traffic/generator.js';
import { loadServices, repoRoot } from '../services/services.js';
import { runScenario } from './run-scenario.js';
import { decisionsByTarget, mixedTraffic, produceEvents, readTopic } from './service-harness.js';

// The detect service against the real Kafka broker: scale-out (one member vs two in one group over
// 4 partitions) and failover (kill -9 of a member mid-attack, compiled CLI in child processes).

const { kafka } = loadServices('kafka');
const run = `${process.pid}-${Date.now()}`;
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => {});
});

function config(tag: string, detect: unknown = {}): Config {
  const t = `test.detect.${tag}.${run}`;
  return configSchema.parse({
    log: { level: 'warn' },
    bus: {
      kind: 'kafka',
      partitions: 4,
      kafka: { brokers: kafka.brokers, client_id: 'mizugiwa-detect-test' },
      topics: {
        events: `${t}.events`,
        detections: `${t}.detections`,
        decisions: `${t}.decisions`,
        dead_letter: `${t}.dlq`,
      },
    },
    detect: { group_id: `${t}.group`, internal_topic: `${t}.by-domain`, ...(detect as object) },
  });
}

const quiet = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function openBus(cfg: Config): Promise<Bus> {
  const bus = await createBus(cfg.bus, {
    kafka: { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, maxWaitTimeMs: 200 },
  });
  cleanup.push(() => bus.close());
  return bus;
}

const spec: TrafficSpec = {
  ...mixedTraffic,
  attacks: [
    ...(mixedTraffic.attacks ?? []),
    { kind: 'bot_flow', actor: 'flooder', ip: '203.0.113.99', start_s: 5000, duration_s: 600, sessions: 300 },
  ],
};

async function runMembers(
  cfg: Config,
  members: number,
  events: ReturnType<typeof generate>['events'],
  backlog = false,
) {
  const services: DetectService[] = [];
  for (let i = 0; i < members; i++) {
    const s = new DetectService(cfg, { bus: await openBus(cfg), log: quiet });
    await s.start();
    services.push(s);
  }
  // Let the group settle before traffic flows, as a long-running group would be.
  await sleep(3000);
  const producerBus = await openBus(cfg);
  const consumed = () => services.reduce((n, s) => n + s.stats.events, 0);
  // backlog: everything at once, far faster than the members consume it (they catch up).
  if (backlog) await produceEvents(producerBus, cfg, events, [], undefined, 5000);
  else await produceEvents(producerBus, cfg, events, [], consumed, 2000);
  while (consumed() < events.length) await sleep(500);
  // Stage 2 drains the re-keyed topic.
  let last = -1;
  for (;;) {
    await sleep(1500);
    const n = services.reduce((a, s) => a + s.stats.signals + s.stats.decisions, 0);
    if (n === last) break;
    last = n;
  }
  const decided = decisionsByTarget(
    await readTopic(producerBus, cfg.bus.topics.decisions, () => false, 4000),
  );
  for (const s of services) await s.close();
  return { decided, services };
}

describe('detect over Kafka', () => {
  it('two members in one group over 4 partitions decide the same targets as one member', async () => {
    const direct = runScenario(spec);
    const expected = new Set(direct.decisions.map((d) => d.target));
    expect(expected.size).toBeGreaterThan(100);

    const one = await runMembers(config('one'), 1, direct.traffic.events);
    const two = await runMembers(config('two'), 2, direct.traffic.events);
    expect(two.services.every((s) => s.stats.events > 0)).toBe(true);
    expect(new Set(one.decided.keys())).toEqual(expected);
    expect(new Set(two.decided.keys())).toEqual(expected);
    // Stage-1 decisions depend on one source's events only: their ids are identical. (Stage-2 ones
    // may be taken at a different signal of the same harvest when partitions interleave differently.)
    for (const [target, d] of two.decided) {
      if (d.detector === 'dha_source' || d.detector === 'bot_flow')
        expect(d.id).toBe(one.decided.get(target)!.id);
    }
  }, 600_000);

  it('two members catching up a two-hour backlog (produced at once) decide every target the engine decides, and no innocent', async () => {
    const direct = runScenario(spec);
    const want = new Set(direct.decisions.map((d) => d.target));
    const two = await runMembers(config('backlog'), 2, direct.traffic.events, true);
    expect(two.services.every((s) => s.stats.events > 0)).toBe(true);
    expect([...want].filter((t) => !two.decided.has(t))).toEqual([]);
    const innocent = [...two.decided.keys()].filter(
      (t) => !want.has(t) && direct.traffic.truth.get(t)?.role !== 'attacker',
    );
    expect(innocent).toEqual([]);
  }, 600_000);

  it('kill -9 of a member mid-attack: the survivor rebuilds its state and the attack is still decided', async () => {
    const cfg = config('kill');
    const dir = mkdtempSync(join(tmpdir(), 'mizugiwa-detect-kill-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, stringify({ ...cfg, log: { level: 'info', pretty: false } }));

    // Four harvesters, one per partition, each probing 14 unknown recipients: 7 before the kill and
    // 7 after. Without the rebuild the partitions of the killed member would restart from zero and
    // never reach 10.
    const attackers: string[] = [];
    for (let i = 1; attackers.length < 4 && i < 255; i++) {
      const ip = `203.0.113.${i}`;
      if (!attackers.some((a) => partitionForKey(a, 4) === partitionForKey(ip, 4))) attackers.push(ip);
    }
    const traffic = generate({
      seed: 3,
      start: '2026-03-02T08:00:00Z',
      duration_s: 1200,
      legit: { senders: 200, messages_per_hour: 3000 },
      attacks: attackers.map((ip, i) => ({
        kind: 'dha_single' as const,
        actor: `h${i}`,
        ip,
        start_s: 300,
        unknown: 14,
        per_session: 1,
        interval_s: 60,
      })),
    });
    const cut = Date.parse('2026-03-02T08:00:00Z') + 300_000 + 6.5 * 60_000;
    const before = traffic.events.filter((e) => Date.parse(e.ts!) < cut);
    const after = traffic.events.filter((e) => Date.parse(e.ts!) >= cut);

    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repoRoot, stdio: 'ignore' });
    const logs: string[][] = [];
    const children: ChildProcess[] = [];
    for (let i = 0; i < 2; i++) {
      const lines: string[] = [];
      logs.push(lines);
      const child = spawn(process.execPath, ['dist/src/cli/main.js', 'detect', '--config', file], {
        cwd: repoRoot,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr!.pipe(
        new Writable({
          write(c, _e, cb) {
            lines.push(...String(c).split('\n').filter(Boolean));
            cb();
          },
        }),
      );
      children.push(child);
      cleanup.push(() => {
        child.kill('SIGKILL');
      });
    }
    const until = async (what: string, ok: () => boolean | Promise<boolean>, ms: number) => {
      const end = Date.now() + ms;
      while (!(await ok())) {
        if (Date.now() > end)
          throw new Error(`timed out waiting for ${what}\n${logs.map((l) => l.join('\n')).join('\n---\n')}`);
        await sleep(250);
      }
    };
    await until(
      'both members running',
      () => logs.every((l) => l.some((x) => x.includes('detect running'))),
      60_000,
    );
    await sleep(3000);

    const bus = await openBus(cfg);
    const range = new KafkaRange(cfg.bus);
    await range.connect();
    cleanup.push(() => range.close());
    const consumedAll = async () => {
      const ends = await range.endOffsets(cfg.bus.topics.events);
      const done = await range.committed(cfg.detect.group_id, cfg.bus.topics.events);
      return [...ends].every(([p, end]) => (done.get(p) ?? -1n) >= end);
    };
    await produceEvents(bus, cfg, before);
    await until('the first half consumed', consumedAll, 60_000);
    const noDecisions = decisionsByTarget(await readTopic(bus, cfg.bus.topics.decisions, () => false, 2000));
    expect([...noDecisions.keys()].filter((t) => attackers.includes(t))).toEqual([]);

    children[0]!.kill('SIGKILL');
    await produceEvents(bus, cfg, after);
    await until('the survivor to take over and consume everything', consumedAll, 120_000);
    await until(
      'every harvester decided',
      async () => {
        const d = decisionsByTarget(await readTopic(bus, cfg.bus.topics.decisions, () => false, 1500));
        return attackers.every((a) => d.has(a));
      },
      60_000,
    );
    const all = await readTopic(bus, cfg.bus.topics.decisions, () => false, 2000);
    for (const a of attackers) {
      const ids = new Set(all.filter((m) => m.key === a).map((m) => JSON.parse(m.value!.toString()).id));
      expect(ids.size).toBe(1);
    }
    // The survivor took over partitions it had not held and rebuilt them from Kafka.
    const rebuilt = logs[1]!
      .filter((l) => l.includes('state rebuilt for partition'))
      .map((l) => JSON.parse(l));
    expect(rebuilt.some((r) => r.records > 0)).toBe(true);
    children[1]!.kill('SIGTERM');
  }, 600_000);
});
