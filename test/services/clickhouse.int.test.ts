// The ClickHouse server test instance (Debian 18.16, scripts/services.sh up clickhouse) through
// @clickhouse/client over HTTP. 18.16 SQL: no query parameters, no LowCardinality, no TTL.
import { randomInt } from 'node:crypto';
import { createClient } from '@clickhouse/client';
import { afterAll, describe, expect, it } from 'vitest';
import { loadServices } from './services.js';

const { clickhouse } = loadServices('clickhouse');
const client = createClient({ url: clickhouse.url });
const table = `mz_int_${Date.now()}_${randomInt(1e6)}`;

afterAll(async () => {
  await client.command({ query: `DROP TABLE IF EXISTS ${table}` });
  await client.close();
});

describe('clickhouse test server', () => {
  it('answers ping', async () => {
    expect((await client.ping()).success).toBe(true);
  });

  it('creates a MergeTree table, inserts JSONEachRow and aggregates', async () => {
    await client.command({
      query: `CREATE TABLE ${table} (day Date, ts DateTime, client_ip String, kind String, n UInt32)
              ENGINE = MergeTree() PARTITION BY toYYYYMM(day) ORDER BY (client_ip, ts)`,
    });
    const rows = [
      { day: '2026-11-27', ts: '2026-11-27 10:00:00', client_ip: '127.0.0.9', kind: 'unknown_user', n: 1 },
      { day: '2026-11-27', ts: '2026-11-27 10:00:01', client_ip: '127.0.0.9', kind: 'unknown_user', n: 1 },
      { day: '2026-11-27', ts: '2026-11-27 10:00:02', client_ip: '127.0.0.10', kind: 'accepted', n: 1 },
    ];
    await client.insert({ table, values: rows, format: 'JSONEachRow' });
    const result = await client.query({
      query: `SELECT client_ip, kind, sum(n) AS n FROM ${table} GROUP BY client_ip, kind ORDER BY client_ip`,
      format: 'JSONEachRow',
    });
    // UInt64 sums come back as strings in JSON formats
    expect(await result.json()).toEqual([
      { client_ip: '127.0.0.10', kind: 'accepted', n: '1' },
      { client_ip: '127.0.0.9', kind: 'unknown_user', n: '2' },
    ]);
    const version = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
    expect((await version.json<{ v: string }>())[0]!.v).toMatch(/^18\./);
  });
});
