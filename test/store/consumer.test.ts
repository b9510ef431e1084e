import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../../src/bus/memory.js';
import type { ClickHouse } from '../../src/clickhouse/client.js';
import { dialectOf } from '../../src/clickhouse/dialect.js';
import { topicsSchema } from '../../src/config/schema.js';
import { storeSchema } from '../../src/store/config.js';
import { StoreConsumer } from '../../src/store/consumer.js';
import { StoreWriter, writerOptions } from '../../src/store/writer.js';
import { scratchEngine } from './engine.js';
import { decisionFor, detectionFor } from './fixtures.js';
import { harvestLog, parseLog } from './parsed.js';

// chdb shares the machine's cores with everything else: allow slow inserts and start-up.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// StoreConsumer over the in-process bus into the embedded engine.

const cfg = storeSchema.parse({ flush_interval_ms: 50, batch_rows: 500 });
const topics = topicsSchema.parse({});
let ch: ClickHouse;

async function count(sql: string): Promise<number> {
  const rs = await ch.client.query({ query: sql, format: 'JSONEachRow' });
  const [row] = await rs.json<Record<string, unknown>>();
  return Number(Object.values(row!)[0]);
}

async function until(cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('StoreConsumer (memory bus -> chdb)', () => {
  beforeAll(async () => {
    ch = await scratchEngine('mz-consumer-', 'mz', cfg);
  });
  afterAll(async () => {
    await ch?.close();
  });

  it('stores what arrives, dead-letters what is not JSON, skips decision tombstones, and commits', async () => {
    const bus = new MemoryBus({ partitions: 4 });
    const events = parseLog(harvestLog([400, 300, 200, 100]), 'h.log');
    const writer = await StoreWriter.open(ch, cfg);
    const consumer = new StoreConsumer(bus, writer, { groupId: 'store', topics });
    await consumer.start();
    const p = await bus.producer();
    await p.send(
      topics.events,
      events.map((e) => ({ key: e.client_ip ?? null, value: JSON.stringify(e) })),
    );
    await p.send(topics.events, [
      { key: 'x', value: 'garbage, not json' },
      { key: 'y', value: Buffer.from([0xff, 0xfe, 0x7b]) },
    ]);
    await p.send(topics.detections, [{ key: 'd', value: JSON.stringify(detectionFor('198.51.100.1')) }]);
    await p.send(topics.decisions, [
      { key: '198.51.100.0/24', value: JSON.stringify(decisionFor('198.51.100.0/24')) },
    ]);
    await until(async () => (await count('SELECT count() FROM mz.decisions')) === 1);
    await p.send(topics.decisions, [{ key: '198.51.100.0/24', value: null }]);
    await until(async () => (await count('SELECT count() FROM mz.mail_events')) === events.length);
    await until(async () => (await count('SELECT count() FROM mz.dead_letters')) === 2);
    await until(async () => (await count('SELECT count() FROM mz.detections')) === 1);
    const rs = await ch.client.query({
      query: 'SELECT topic, error FROM mz.dead_letters ORDER BY error',
      format: 'JSONEachRow',
    });
    const dl = await rs.json<{ topic: string; error: string }>();
    expect(dl.every((d) => d.topic === topics.events && d.error.startsWith('not JSON'))).toBe(true);
    await consumer.stop();
    await writer.close();

    // The same group again: everything was committed, nothing comes twice.
    const writer2 = await StoreWriter.open(ch, cfg);
    const again = new StoreConsumer(bus, writer2, { groupId: 'store', topics });
    await again.start();
    await p.send(
      topics.events,
      events
        .slice(0, 10)
        .map((e) => ({ key: e.client_ip ?? null, value: JSON.stringify({ ...e, id: `${e.id}:new` }) })),
    );
    await until(async () => (await count('SELECT count() FROM mz.mail_events')) === events.length + 10);
    await new Promise((r) => setTimeout(r, 200));
    expect(await count('SELECT count() FROM mz.mail_events')).toBe(events.length + 10);
    expect(await count('SELECT count() FROM mz.decisions')).toBe(1);
    expect(await count('SELECT count() FROM mz.dead_letters')).toBe(2);
    await again.stop();
    await writer2.close();
    await p.close();
    await bus.close();
  });

  it('stop() does not wait for a ClickHouse that is away; nothing is committed, the records come again', async () => {
    const bus = new MemoryBus({ partitions: 2 });
    const down: ClickHouse = {
      ...ch,
      client: new Proxy(ch.client, {
        get(target, prop, receiver) {
          if (prop !== 'exec') return Reflect.get(target, prop, receiver);
          return async () => {
            throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
          };
        },
      }),
    };
    const before = await count('SELECT count() FROM mz.mail_events');
    const events = parseLog(harvestLog([20]), 'stop.log').map((e) => ({ ...e, id: `stop:${e.id}` }));
    const stuck = new StoreWriter(down, dialectOf('26.7'), {
      ...writerOptions(cfg),
      retryInitialMs: 20,
      retryMaxMs: 50,
    });
    const first = new StoreConsumer(bus, stuck, { groupId: 'store-stop', topics });
    await first.start();
    const p = await bus.producer();
    await p.send(
      topics.events,
      events.map((e) => ({ key: e.client_ip ?? null, value: JSON.stringify(e) })),
    );
    await until(async () => stuck.pending() === events.length);
    const t0 = Date.now();
    await first.stop(200);
    expect(Date.now() - t0).toBeLessThan(5000);
    await stuck.close(10);

    const writer = await StoreWriter.open(ch, cfg);
    const second = new StoreConsumer(bus, writer, { groupId: 'store-stop', topics });
    await second.start();
    await until(async () => (await count('SELECT count() FROM mz.mail_events')) === before + events.length);
    await second.stop();
    await writer.close();
    await p.close();
    await bus.close();
  });
});
