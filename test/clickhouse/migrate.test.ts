import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import {
  loadMigrations,
  migrate,
  printSchema,
  render,
  type SchemaOptions,
  schemasDir,
} from '../../src/clickhouse/migrate.js';
import { clickhouseSchema } from '../../src/config/schema.js';

// chdb shares the machine's cores with everything else: allow slow inserts and start-up.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const opts: SchemaOptions = {
  database: 'mz',
  retention_days: 90,
  audit_retention_days: 730,
  rollup_retention_days: 400,
  cluster: { enabled: false, name: 'default' },
};

describe('migrations against the embedded engine (chdb)', () => {
  let dir: string;
  let ch: ClickHouse;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mz-migrate-'));
    ch = await openClickHouse(clickhouseSchema.parse({ backend: 'embedded', path: dir, database: 'mz' }));
  });
  afterAll(async () => {
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies every migration once, records it, and is idempotent', async () => {
    const first = await migrate(ch, opts);
    expect(first.dialect.name).toBe('current');
    expect(first.applied.map((m) => m.version)).toEqual(loadMigrations('current').map((m) => m.version));
    const second = await migrate(ch, opts);
    expect(second.applied).toEqual([]);
    expect(second.skipped.length).toBe(first.applied.length);
    const rs = await ch.client.query({
      query: 'SELECT count() AS n, uniqExact(version) AS v FROM mz.schema_migrations',
      format: 'JSONEachRow',
    });
    const [row] = await rs.json<{ n: string; v: string }>();
    expect(Number(row!.n)).toBe(first.applied.length);
    const tables = await ch.client.query({
      query: "SELECT name FROM system.tables WHERE database = 'mz' ORDER BY name",
      format: 'JSONEachRow',
    });
    const names = (await tables.json<{ name: string }>()).map((r) => r.name);
    for (const t of [
      'mail_events',
      'detections',
      'decisions',
      'dead_letters',
      'rollup_source_1m',
      'rollup_source_1m_mv',
      'rollup_recipient_domain_1m',
      'rollup_host_1m',
      'rollup_kind_1m',
    ]) {
      expect(names).toContain(t);
    }
  });

  it('sets merge_selector_base on mail_events (fewer merges per stored event)', async () => {
    const rs = await ch.client.query({
      query: "SELECT engine_full FROM system.tables WHERE database = 'mz' AND name = 'mail_events'",
      format: 'JSONEachRow',
    });
    const [row] = await rs.json<{ engine_full: string }>();
    expect(row!.engine_full).toMatch(/merge_selector_base = 25\b/);
  });

  it('a migration needing a MergeTree setting the server lacks waits, unrecorded; later ones go on', async () => {
    const schemas = mkdtempSync(join(tmpdir(), 'mz-migrate-schemas-'));
    try {
      copyFileSync(
        join(schemasDir(), '001_schema_migrations.sql'),
        join(schemas, '001_schema_migrations.sql'),
      );
      writeFileSync(
        join(schemas, '002_needs_future.sql'),
        '-- requires merge_tree_setting: no_such_setting_in_any_release\n' +
          'CREATE TABLE IF NOT EXISTS {db}.future (x UInt8) ENGINE = MergeTree ORDER BY x;\n',
      );
      writeFileSync(
        join(schemas, '003_plain.sql'),
        '-- requires merge_tree_setting: index_granularity\n' +
          'CREATE TABLE IF NOT EXISTS {db}.plain (x UInt8) ENGINE = MergeTree ORDER BY x;\n',
      );
      await ch.client.command({ query: 'CREATE DATABASE IF NOT EXISTS mz_wait' });
      const o = { ...opts, database: 'mz_wait' };
      const first = await migrate(ch, o, schemas);
      expect(first.waiting.map((m) => m.version)).toEqual([2]);
      expect(first.waiting[0]!.requires).toEqual(['no_such_setting_in_any_release']);
      expect(first.applied.map((m) => m.version)).toEqual([1, 3]);
      const again = await migrate(ch, o, schemas);
      expect(again.waiting.map((m) => m.version)).toEqual([2]);
      expect(again.applied).toEqual([]);
      const rs = await ch.client.query({
        query:
          'SELECT (SELECT groupArray(version) FROM (SELECT version FROM mz_wait.schema_migrations ORDER BY version)) AS v, ' +
          "(SELECT groupArray(name) FROM (SELECT name FROM system.tables WHERE database = 'mz_wait' ORDER BY name)) AS t",
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ v: number[]; t: string[] }>();
      expect(row!.v.map(Number)).toEqual([1, 3]);
      expect(row!.t).toEqual(['plain', 'schema_migrations']);
    } finally {
      rmSync(schemas, { recursive: true, force: true });
      await ch.client.command({ query: 'DROP DATABASE IF EXISTS mz_wait' });
    }
  });

  it('changes the retention TTL in place when the configuration changes', async () => {
    await migrate(ch, { ...opts, retention_days: 30 });
    const rs = await ch.client.query({
      query: "SELECT engine_full FROM system.tables WHERE database = 'mz' AND name = 'mail_events'",
      format: 'JSONEachRow',
    });
    const [row] = await rs.json<{ engine_full: string }>();
    expect(row!.engine_full).toContain('toIntervalDay(30)');
  });
});

describe('rendering', () => {
  it('cluster switch: Replicated engines on _local tables, Distributed tables, ON CLUSTER everywhere', () => {
    const sql = printSchema({ ...opts, cluster: { enabled: true, name: 'mail' } });
    expect(sql).toContain('CREATE TABLE IF NOT EXISTS mz.mail_events_local ON CLUSTER mail');
    expect(sql).toContain('ENGINE = ReplicatedReplacingMergeTree');
    expect(sql).toContain('ENGINE = ReplicatedSummingMergeTree');
    expect(sql).toMatch(
      /CREATE TABLE IF NOT EXISTS mz\.mail_events ON CLUSTER mail AS mz\.mail_events_local\nENGINE = Distributed\(mail, mz, mail_events_local, cityHash64\(id\)\)/,
    );
    expect(sql).toContain('TO mz.rollup_source_1m_local');
    for (const create of sql.match(/^CREATE [^\n]*/gm) ?? []) expect(create).toContain('ON CLUSTER mail');
  });

  it('single node: no cluster words, placeholders all filled', () => {
    const sql = printSchema(opts)
      .split('\n')
      .filter((l) => !l.trim().startsWith('--'))
      .join('\n');
    expect(sql).not.toMatch(/ON CLUSTER|Replicated|Distributed|_local\b/);
    expect(sql).not.toMatch(/\{[a-z_]+(:[a-z0-9_]+)?\}/);
    expect(sql).toContain('toIntervalDay(90)');
  });

  it('refuses an unknown placeholder', () => {
    expect(() => render('CREATE TABLE {nope}.x (a UInt8) ENGINE = Memory', opts)).toThrow(
      /unknown placeholder \{nope\}/,
    );
  });
});
