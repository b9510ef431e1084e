import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory.js';
import { configSchema } from '../../src/config/config.js';
import { Responder } from '../../src/respond/agent.js';
import { consumeDecisions, groupIdOf } from '../../src/respond/start.js';
import { FakeMap } from './fake-map.js';
import { decision } from './helpers.js';

// The path `mizugiwa run` takes: decisions over the in-process bus into the responder.

let bus: MemoryBus | undefined;
afterEach(async () => {
  await bus?.close();
  bus = undefined;
});

describe('consumeDecisions over the memory bus', () => {
  it('every record applied in order; tombstones lift; garbage refused; a late agent replays the topic', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mizugiwa-consume-'));
    const cfg = configSchema.parse({ host: 'mx1', data_dir: dir, respond: { coalesce_ms: 5 } });
    expect(groupIdOf(cfg)).toBe('respond-mx1');
    bus = new MemoryBus({ partitions: 2 });
    const topic = cfg.bus.topics.decisions;
    await bus.ensureTopics([{ topic, compacted: true }]);
    const producer = await bus.producer();
    const a = decision('198.51.100.7', 600_000);
    const b = decision('198.51.100.0/24', 600_000);
    await producer.send(topic, [
      { key: a.target, value: JSON.stringify(a) },
      { key: b.target, value: JSON.stringify(b) },
      { key: 'junk', value: '{"not":"a decision"' },
      { key: a.target, value: JSON.stringify({ ...a, reply: '451 4.7.1 updated' }) },
    ]);

    const agent = async (host: string) => {
      const map = new FakeMap();
      const c = configSchema.parse({ host, data_dir: join(dir, host), respond: { coalesce_ms: 5 } });
      const r = new Responder({
        config: c.respond,
        dataDir: c.data_dir,
        map,
        log: pino({ level: 'silent' }),
        registry: new Registry(),
        ownAddresses: [],
      });
      await r.start();
      const consumer = await consumeDecisions(bus!, r, c);
      return { r, map, consumer };
    };
    const one = await agent('mx1');
    const settle = async (r: Responder, want: string[]) => {
      for (let i = 0; i < 200; i++) {
        if (
          JSON.stringify(
            r
              .list()
              .map((e) => e.target)
              .sort(),
          ) === JSON.stringify(want)
        )
          return;
        await new Promise((res) => setTimeout(res, 10));
      }
      throw new Error(
        `entries ${JSON.stringify(r.list().map((e) => e.target))}, want ${JSON.stringify(want)}`,
      );
    };
    await settle(one.r, ['198.51.100.0/24', '198.51.100.7']);
    expect(one.r.list().find((e) => e.target === a.target)?.reply).toBe('451 4.7.1 updated');

    await producer.send(topic, [{ key: a.target, value: null }]);
    await settle(one.r, ['198.51.100.0/24']);

    // Another host's agent, started later, sees the current state of the compacted topic.
    const two = await agent('mx2');
    await settle(two.r, ['198.51.100.0/24']);
    expect(await two.r.flush()).toBe(true);
    expect(two.map.last).toEqual(['198.51.100.0/24']);

    for (const x of [one, two]) {
      await x.consumer.close();
      await x.r.stop();
    }
    await producer.close();
  });
});
