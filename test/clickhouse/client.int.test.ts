import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { detectDialect } from '../../src/clickhouse/dialect.js';
import { loadMigrations, migrate } from '../../src/clickhouse/migrate.js';
import { clickhouseSchema } from '../../src/config/schema.js';
import { storeSchema } from '../../src/store/config.js';
import { loadServices } from '../services/services.js';

// openClickHouse against the ClickHouse server of scripts/services.sh (Debian 18.16): the
// database is created, a table round-trips, and the legacy-dialect migrations apply once.

const { clickhouse } = loadServices('clickhouse');
const database = `mz_client_${Date.now().toString(36)}${process.pid}`;
let ch: ClickHouse;

describe('ClickHouse server backend', () => {
  beforeAll(async () => {
    ch = await openClickHouse(clickhouseSchema.parse({ backend: 'server', url: clickhouse.url, database }));
  });
  afterAll(async () => {
    await ch?.client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await ch?.close();
  });

  it('creates the database, a table, inserts and selects', async () => {
    expect(ch.backend).toBe('server');
    await ch.client.command({
      query: `CREATE TABLE ${database}.t (id String, n UInt32) ENGINE = MergeTree ORDER BY id`,
    });
    await ch.client.insert({
      table: `${database}.t`,
      values: [
        { id: 'a', n: 1 },
        { id: 'b', n: 2 },
      ],
      format: 'JSONEachRow',
    });
    const rs = await ch.client.query({
      query: `SELECT id, n FROM ${database}.t ORDER BY id`,
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([
      { id: 'a', n: 1 },
      { id: 'b', n: 2 },
    ]);
  });

  it('is recognised as the legacy dialect and takes the legacy migrations once', async () => {
    expect((await detectDialect(ch)).name).toBe('legacy');
    const opts = { database, ...storeSchema.parse({}) };
    const first = await migrate(ch, opts);
    expect(first.applied.map((m) => m.version)).toEqual(loadMigrations('legacy').map((m) => m.version));
    expect((await migrate(ch, opts)).applied).toEqual([]);
    const rs = await ch.client.query({
      query: `SELECT name FROM system.tables WHERE database = '${database}' ORDER BY name`,
      format: 'JSONEachRow',
    });
    expect((await rs.json<{ name: string }>()).map((r) => r.name)).toEqual([
      'dead_letters',
      'decisions',
      'detections',
      'mail_events',
      'schema_migrations',
      't',
    ]);
  });

  it('an unreachable server is an error naming the address, not a hang', async () => {
    await expect(
      openClickHouse(
        clickhouseSchema.parse({
          backend: 'server',
          url: 'http://127.0.0.1:9',
          database,
          request_timeout_ms: 2000,
        }),
      ),
    ).rejects.toThrow(/ECONNREFUSED|127\.0\.0\.1:9/);
  });
});
