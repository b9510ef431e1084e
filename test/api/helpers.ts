import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/server.js';
import type { Bus, Producer } from '../../src/bus/bus.js';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { migrate } from '../../src/clickhouse/migrate.js';
import { type Config, configSchema } from '../../src/config/config.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { pino } from 'pino';
import { StoreConsumer } from '../../src/store/consumer.js';
import { schemaOptions } from '../../src/store/schema-options.js';
import { StoreWriter } from '../../src/store/writer.js';

// An API over a real embedded ClickHouse (temp dir, migrations applied), with events stored
// through the real StoreWriter and the decisions topic stored by a real StoreConsumer, so what an
// operator publishes shows up in GET /decisions and the feeds as it would in production.

export const WRITE_TOKEN = 'alice-token-0123456789abcdef';
export const READ_TOKEN = 'viewer-token-0123456789abcdef';

export interface Harness {
  dir: string;
  cfg: Config;
  ch: ClickHouse;
  bus: Bus;
  producer: Producer;
  app: FastifyInstance;
  consumer: StoreConsumer;
  writer: StoreWriter;
  close(): Promise<void>;
}

export function testConfig(dir: string, extra: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    host: 'api-test',
    data_dir: join(dir, 'data'),
    clickhouse: { backend: 'embedded', path: join(dir, 'chdb'), database: 'mz' },
    // Fixture logs are dated 2026-11-27: keep them past the default 90-day TTL whenever the tests run.
    store: { flush_interval_ms: 20, idle_flush_ms: 5, retention_days: 7300 },
    respond: { safety: { whitelist: ['192.0.2.0/28'] } },
    detect: { policy: { whitelist: ['127.0.0.0/8', '::1/128'] } },
    api: {
      tokens: [
        { name: 'alice', token: WRITE_TOKEN },
        { name: 'viewer', token: READ_TOKEN, write: false },
      ],
    },
    ...extra,
  });
}

export async function startHarness(opts: {
  bus: Bus;
  events?: MailEvent[];
  cfg?: (dir: string) => Config;
}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'mz-api-'));
  const cfg = (opts.cfg ?? testConfig)(dir);
  const ch = await openClickHouse(cfg.clickhouse);
  await migrate(ch, schemaOptions(cfg));
  const writer = await StoreWriter.open(ch, cfg.store);
  if (opts.events?.length) await writer.write('events', opts.events);
  const consumer = new StoreConsumer(opts.bus, writer, {
    groupId: `store-${dir}`,
    topics: cfg.bus.topics,
  });
  await consumer.start();
  await opts.bus.ensureTopics([{ topic: cfg.api.whitelist_topic, compacted: true }]);
  const producer = await opts.bus.producer({ lingerMs: 0 });
  const app = await buildApi({ cfg, ch, bus: opts.bus, producer, log: pino({ level: 'silent' }) });
  return {
    dir,
    cfg,
    ch,
    bus: opts.bus,
    producer,
    app,
    consumer,
    writer,
    async close() {
      await app.close();
      await consumer.stop();
      await writer.close();
      await producer.close();
      await ch.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function until<T>(fn: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const auth = (token: string) => ({ authorization: `Bearer ${token}` });
