import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { logger } from '../log/logger.js';
import type { ClickHouse } from './client.js';
import { CURRENT_MIN_MAJOR, type Dialect, type DialectName, detectDialect } from './dialect.js';

// Schema migrations: schemas/clickhouse/NNN_name.sql (current dialect) and
// schemas/clickhouse/legacy/NNN_name.sql (old servers, network path only). Every statement is
// idempotent (IF NOT EXISTS), so a migration interrupted half-way is simply run again. What ran
// is recorded in ${db}.schema_migrations. Placeholders, filled in by render():
//   {db}                  the database
//   {t:NAME}              a storage table: NAME, or NAME_local with the cluster switch on
//   {on_cluster}          '' or ON CLUSTER <name>
//   {replicated}          '' or Replicated (engine prefix; replica path from the server defaults)
//   {retention_days} {audit_retention_days} {rollup_retention_days}
// A line `-- distributed: NAME BY EXPR` adds, with the cluster switch on, a Distributed table
// NAME over NAME_local sharded by EXPR. A line `-- requires merge_tree_setting: NAME` makes the
// migration wait (not applied, not recorded, logged) while the server does not know that
// MergeTree setting; it is applied at the first start after an upgrade.

export interface SchemaOptions {
  database: string;
  retention_days: number;
  audit_retention_days: number;
  rollup_retention_days: number;
  cluster: { enabled: boolean; name: string };
}

export interface Migration {
  version: number;
  name: string;
  /** sha256 of the template (before placeholders), so a changed retention is not a changed migration. */
  checksum: string;
  template: string;
  /** MergeTree settings the server must know for this migration to run. */
  requires: string[];
}

export interface MigrateResult {
  dialect: Dialect;
  applied: Migration[];
  /** Applied before. */
  skipped: Migration[];
  /** Waiting for a server that knows the settings they require. */
  waiting: Migration[];
}

const FILE_RE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** The repository's schemas/clickhouse directory, found from this module (src/ or dist/src/). */
export function schemasDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'schemas', 'clickhouse');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('schemas/clickhouse not found above ' + dirname(fileURLToPath(import.meta.url)));
}

export function loadMigrations(dialect: DialectName, dir = schemasDir()): Migration[] {
  const from = dialect === 'current' ? dir : join(dir, 'legacy');
  const out: Migration[] = [];
  for (const file of readdirSync(from).sort()) {
    const m = FILE_RE.exec(file);
    if (!m) continue;
    const template = readFileSync(join(from, file), 'utf8');
    out.push({
      version: Number(m[1]),
      name: m[2]!,
      checksum: createHash('sha256').update(template).digest('hex'),
      template,
      requires: [...template.matchAll(/^--\s*requires merge_tree_setting:\s*([A-Za-z0-9_]+)\s*$/gm)].map(
        (r) => r[1]!,
      ),
    });
  }
  const versions = out.map((m) => m.version);
  if (new Set(versions).size !== versions.length) throw new Error(`duplicate migration numbers in ${from}`);
  return out;
}

/** A migration as its file names it: `008_merge_selector_base`. */
export function migrationLabel(m: Migration): string {
  return `${String(m.version).padStart(3, '0')}_${m.name}`;
}

/** Fills in the placeholders and splits into statements (comment-only chunks dropped). */
export function render(template: string, opts: SchemaOptions): string[] {
  const c = opts.cluster.enabled;
  const local = (name: string) => (c ? `${name}_local` : name);
  const onCluster = c ? `ON CLUSTER ${quoteIdent(opts.cluster.name)}` : '';
  const values: Record<string, string> = {
    db: opts.database,
    on_cluster: onCluster,
    replicated: c ? 'Replicated' : '',
    retention_days: String(opts.retention_days),
    audit_retention_days: String(opts.audit_retention_days),
    rollup_retention_days: String(opts.rollup_retention_days),
  };
  const sql = template.replace(/\{([a-z_]+)(?::([a-z0-9_]+))?\}/g, (whole, key: string, arg?: string) => {
    if (key === 't' && arg) return local(arg);
    const v = values[key];
    if (v === undefined) throw new Error(`unknown placeholder ${whole} in migration`);
    return v;
  });
  const statements = sql
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('--')));
  if (c) {
    for (const m of sql.matchAll(/^--\s*distributed:\s*([a-z0-9_]+)\s+BY\s+(.+)$/gm)) {
      const [name, key] = [m[1]!, m[2]!.trim()];
      statements.push(
        `CREATE TABLE IF NOT EXISTS ${opts.database}.${name} ${onCluster} AS ${opts.database}.${local(name)}\n` +
          `ENGINE = Distributed(${quoteIdent(opts.cluster.name)}, ${opts.database}, ${local(name)}, ${key})`,
      );
    }
  }
  return statements;
}

function quoteIdent(s: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? s : `\`${s.replace(/`/g, '\\`')}\``;
}

/** The whole schema as SQL text, for `mizugiwa migrate --print`. */
export function printSchema(opts: SchemaOptions, dialect: DialectName = 'current'): string {
  const parts: string[] = [];
  for (const m of loadMigrations(dialect)) {
    parts.push(`-- ${migrationLabel(m)} (${dialect})`);
    for (const s of render(m.template, opts)) parts.push(`${s};\n`);
  }
  return parts.join('\n');
}

/**
 * Applies pending migrations in order and records each one. Safe to run concurrently with
 * itself only in the sense that every statement is idempotent; run it from one place.
 */
export async function migrate(
  ch: ClickHouse,
  opts: SchemaOptions,
  dir = schemasDir(),
): Promise<MigrateResult> {
  const log = logger('migrate');
  const dialect = await detectDialect(ch);
  if (dialect.name === 'legacy' && opts.cluster.enabled) {
    throw new Error(
      `cluster DDL needs ClickHouse ${CURRENT_MIN_MAJOR} or later; the server is ${dialect.version}`,
    );
  }
  const migrations = loadMigrations(dialect.name, dir);
  const table = `${opts.database}.schema_migrations`;
  // 001 creates the migrations table; run it unconditionally (it is IF NOT EXISTS).
  const first = migrations[0];
  if (!first) throw new Error('no migrations found');
  for (const s of render(first.template, opts)) await ch.client.command({ query: s });

  const rs = await ch.client.query({
    query: `SELECT version, any(checksum) AS checksum FROM ${table} GROUP BY version`,
    format: 'JSONEachRow',
  });
  const done = new Map(
    (await rs.json<{ version: number; checksum: string }>()).map((r) => [Number(r.version), r.checksum]),
  );

  const applied: Migration[] = [];
  const skipped: Migration[] = [];
  const waiting: Migration[] = [];
  let known: Set<string> | undefined;
  for (const m of migrations) {
    const had = done.get(m.version);
    if (had !== undefined) {
      if (had !== m.checksum) {
        log.warn(
          { version: m.version, name: m.name },
          'migration file changed after it was applied; not re-run',
        );
      }
      skipped.push(m);
      continue;
    }
    if (m.requires.length > 0) {
      known ??= await mergeTreeSettings(ch);
      const missing = m.requires.filter((name) => !known!.has(name));
      if (missing.length > 0) {
        log.info(
          { version: m.version, name: m.name, missing, server: dialect.version },
          'migration waits for a server that knows these MergeTree settings',
        );
        waiting.push(m);
        continue;
      }
    }
    for (const s of render(m.template, opts)) {
      try {
        await ch.client.command({ query: s });
      } catch (err) {
        throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    await ch.client.insert({
      table,
      values: [{ version: m.version, name: m.name, checksum: m.checksum, dialect: dialect.name }],
      format: 'JSONEachRow',
    });
    log.info({ version: m.version, name: m.name, dialect: dialect.name }, 'migration applied');
    applied.push(m);
  }
  if (dialect.name === 'current') await applyRetention(ch, opts);
  return { dialect, applied, skipped, waiting };
}

async function mergeTreeSettings(ch: ClickHouse): Promise<Set<string>> {
  const rs = await ch.client.query({
    query: 'SELECT name FROM system.merge_tree_settings',
    format: 'JSONEachRow',
  });
  return new Set((await rs.json<{ name: string }>()).map((r) => r.name));
}

/** TTLs whose days come from config: changed in place when the config changed. */
const RETENTION: Array<{ table: string; expr: string; key: keyof SchemaOptions }> = [
  { table: 'mail_events', expr: 'toDateTime(ts)', key: 'retention_days' },
  { table: 'dead_letters', expr: 'toDateTime(ts)', key: 'retention_days' },
  { table: 'detections', expr: 'toDateTime(ts)', key: 'audit_retention_days' },
  { table: 'decisions', expr: 'toDateTime(created_at)', key: 'audit_retention_days' },
  { table: 'rollup_source_1m', expr: 'minute', key: 'rollup_retention_days' },
  { table: 'rollup_recipient_domain_1m', expr: 'minute', key: 'rollup_retention_days' },
  { table: 'rollup_host_1m', expr: 'minute', key: 'rollup_retention_days' },
  { table: 'rollup_kind_1m', expr: 'minute', key: 'rollup_retention_days' },
];

async function applyRetention(ch: ClickHouse, opts: SchemaOptions): Promise<void> {
  const suffix = opts.cluster.enabled ? '_local' : '';
  const rs = await ch.client.query({
    query: `SELECT name, engine_full FROM system.tables WHERE database = '${opts.database}'`,
    format: 'JSONEachRow',
  });
  const engines = new Map(
    (await rs.json<{ name: string; engine_full: string }>()).map((r) => [r.name, r.engine_full]),
  );
  const onCluster = opts.cluster.enabled ? ` ON CLUSTER ${quoteIdent(opts.cluster.name)}` : '';
  for (const r of RETENTION) {
    const name = r.table + suffix;
    const engine = engines.get(name);
    const days = opts[r.key] as number;
    if (engine === undefined || engine.includes(`toIntervalDay(${days})`)) continue;
    await ch.client.command({
      query: `ALTER TABLE ${opts.database}.${name}${onCluster} MODIFY TTL ${r.expr} + toIntervalDay(${days})`,
    });
    logger('migrate').info({ table: name, days }, 'retention changed');
  }
}
