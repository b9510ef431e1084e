import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { migrate } from '../../src/clickhouse/migrate.js';
import { clickhouseSchema } from '../../src/config/schema.js';
import { storeSchema } from '../../src/store/config.js';
import { StoreWriter } from '../../src/store/writer.js';
import { loadServices } from '../services/services.js';
import { decisionFor, detectionFor } from './fixtures.js';
import { harvestLog, parseLog } from './parsed.js';

// StoreWriter against the Debian ClickHouse server (18.16, legacy dialect): all three record
// kinds are stored, and a value the server refuses goes to dead_letters with its error while
// the rest of the batch is stored.

const { clickhouse } = loadServices('clickhouse');
const database = `mz_srv_${Date.now().toString(36)}${process.pid}`;
const cfg = storeSchema.parse({ flush_interval_ms: 20 });
let ch: ClickHouse;

async function scalar(sql: string): Promise<number> {
  const rs = await ch.client.query({ query: sql, format: 'JSONEachRow' });
  const [row] = await rs.json<Record<string, unknown>>();
  return Number(Object.values(row!)[0]);
}

describe('StoreWriter on the ClickHouse server (legacy dialect)', () => {
  beforeAll(async () => {
    ch = await openClickHouse(clickhouseSchema.parse({ backend: 'server', url: clickhouse.url, database }));
    await migrate(ch, { database, ...cfg });
  });
  afterAll(async () => {
    await ch?.client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await ch?.close();
  });

  it('stores events, detections and decisions; dead-letters a refused value and keeps the rest', async () => {
    const w = await StoreWriter.open(ch, cfg);
    expect(w.dialect.name).toBe('legacy');
    const events = parseLog(harvestLog([30, 20]), 'h.log');
    events[7] = { ...events[7]!, pid: 'not a number' as unknown as number };
    const r = await w.write(
      'events',
      events,
      events.map((_, i) => ({ topic: 't', partition: 1, offset: String(i) })),
    );
    expect(r).toEqual({ stored: events.length - 1, deadLettered: 1 });
    expect(await w.write('detections', [detectionFor('198.51.100.1')])).toEqual({
      stored: 1,
      deadLettered: 0,
    });
    expect(await w.write('decisions', [decisionFor('198.51.100.0/24')])).toEqual({
      stored: 1,
      deadLettered: 0,
    });
    await w.close();
    expect(await scalar(`SELECT count() FROM ${database}.mail_events`)).toBe(events.length - 1);
    expect(
      await scalar(
        `SELECT count() FROM ${database}.mail_events WHERE ingested_at > toDateTime('2020-01-01 00:00:00')`,
      ),
    ).toBe(events.length - 1);
    const rs = await ch.client.query({
      query: `SELECT offset, error FROM ${database}.dead_letters`,
      format: 'JSONEachRow',
    });
    const dl = await rs.json<{ offset: string; error: string }>();
    expect(dl.map((d) => d.offset)).toEqual(['7']);
    expect(dl[0]!.error).toMatch(/27|72|6|parse/i);
    expect(
      await scalar(`SELECT count() FROM ${database}.decisions WHERE target_low = '::ffff:198.51.100.0'`),
    ).toBe(1);
  });
});
