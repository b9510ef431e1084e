import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { detectDialect, dialectOf } from '../../src/clickhouse/dialect.js';
import { clickhouseSchema } from '../../src/config/schema.js';

// chdb shares the machine's cores with everything else: allow slow inserts and start-up.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// openClickHouse on the embedded engine (chdb; one data directory per process).

let dir: string;
let ch: ClickHouse;

describe('embedded backend (chdb)', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mz-client-'));
    ch = await openClickHouse(
      clickhouseSchema.parse({ backend: 'embedded', path: join(dir, 'data'), database: 'mz' }),
    );
  });
  afterAll(async () => {
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the data directory and database; a table round-trips with query parameters', async () => {
    expect(ch.backend).toBe('embedded');
    await ch.client.command({
      query: 'CREATE TABLE mz.t (id String, ip IPv6, n UInt32) ENGINE = MergeTree ORDER BY id',
    });
    await ch.client.insert({
      table: 'mz.t',
      values: [
        { id: 'a', ip: '192.0.2.1', n: 1 },
        { id: 'b', ip: '2001:db8::1', n: 2 },
      ],
      format: 'JSONEachRow',
    });
    const rs = await ch.client.query({
      query: 'SELECT id, toString(ip) AS ip FROM mz.t WHERE n >= {min:UInt32} ORDER BY id',
      query_params: { min: 1 },
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([
      { id: 'a', ip: '::ffff:192.0.2.1' },
      { id: 'b', ip: '2001:db8::1' },
    ]);
  });

  it('speaks the current dialect', async () => {
    expect((await detectDialect(ch)).name).toBe('current');
    expect(dialectOf('18.16.1').name).toBe('legacy');
    expect(dialectOf('garbage').name).toBe('legacy');
  });
});
