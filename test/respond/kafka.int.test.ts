import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Bus, Consumer, Producer } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/create.js';
import { type Config, configSchema } from '../../src/config/config.js';
import { Responder } from '../../src/respond/agent.js';
import { consumeDecisions, groupIdOf } from '../../src/respond/start.js';
import { loadServices } from '../services/services.js';
import { decision, quiet, run, stateDir, until } from './helpers.js';

// Decisions through the real Kafka broker into two agents (two hosts: two consumer groups), each
// keeping its own map: every agent sees every decision; a tombstone lifts; garbage is refused and
// the agent goes on.

const { kafka, postfix } = loadServices('kafka', 'postfix');
const topic = `test.respond.decisions.${process.pid}.${Date.now()}`;
const cleanup: (() => Promise<void>)[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function agentConfig(host: string, dir: string): Config {
  return configSchema.parse({
    host,
    data_dir: dir,
    bus: {
      kind: 'kafka',
      partitions: 2,
      kafka: { brokers: kafka.brokers, client_id: 'mizugiwa-respond-test' },
      topics: { decisions: topic },
    },
    respond: {
      mta: 'postfix',
      map_path: join(dir, 'access'),
      map_type: 'hash',
      postmap: [postfix.postmap],
      coalesce_ms: 10,
      safety: { whitelist: ['192.0.2.250'] },
    },
  });
}

describe('mizugiwa respond over Kafka', () => {
  it('two hosts each get every decision; tombstones lift; garbage is counted, not fatal', async () => {
    const agents: { cfg: Config; responder: Responder; bus: Bus; consumer: Consumer }[] = [];
    for (const host of ['mx1', 'mx2']) {
      const dir = stateDir(`kafka-${host}`);
      dirs.push(dir);
      const cfg = agentConfig(host, dir);
      const responder = new Responder({ config: cfg.respond, dataDir: cfg.data_dir, log: quiet });
      await responder.start();
      const bus = await createBus(cfg.bus);
      const consumer = await consumeDecisions(bus, responder, cfg);
      cleanup.push(async () => {
        await consumer.close();
        await responder.stop();
        await bus.close();
      });
      agents.push({ cfg, responder, bus, consumer });
    }
    expect(groupIdOf(agents[0]!.cfg)).toBe('respond-mx1');

    const producer: Producer = await agents[0]!.bus.producer();
    cleanup.push(() => producer.close());
    const a = decision('198.51.100.7', 600_000);
    const b = decision('198.51.100.0/24', 600_000, { reply: '451 4.7.1 Prefix slowed down' });
    await producer.send(topic, [
      { key: a.target, value: JSON.stringify(a) },
      { key: 'garbage', value: Buffer.from([0xc3, 0x28, 0x00]) },
      { key: '192.0.2.250', value: JSON.stringify(decision('192.0.2.250', 600_000)) },
      { key: b.target, value: JSON.stringify(b) },
    ]);

    for (const { cfg } of agents) {
      const map = `hash:${cfg.respond.map_path}`;
      await until(
        async () =>
          (await run([postfix.postmap, '-q', '198.51.100.7', map])).stdout.trim() === a.reply &&
          (await run([postfix.postmap, '-q', '198.51.100', map])).stdout.trim() === b.reply,
        60_000,
        `${cfg.host}: both entries in its map`,
      );
      expect((await run([postfix.postmap, '-q', '192.0.2.250', map])).code).toBe(1);
    }

    await producer.send(topic, [{ key: a.target, value: null }]);
    for (const { cfg, responder } of agents) {
      const map = `hash:${cfg.respond.map_path}`;
      await until(
        async () => (await run([postfix.postmap, '-q', '198.51.100.7', map])).code === 1,
        30_000,
        `${cfg.host}: tombstone lifted the entry`,
      );
      expect(responder.list().map((e) => e.target)).toEqual(['198.51.100.0/24']);
    }
  });
});
