import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardText } from '../../dashboards/generate.js';
import { buildDashboards, CLICKHOUSE_PLUGIN } from '../../dashboards/mizugiwa.js';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { migrate } from '../../src/clickhouse/migrate.js';
import { configSchema } from '../../src/config/config.js';
import type { Decision, Detection } from '../../src/decision/decision.js';
import { schemaOptions } from '../../src/store/schema-options.js';
import { StoreWriter } from '../../src/store/writer.js';
import { repoRoot } from '../services/services.js';
import { harvestLog, mailLogEvents, parseLog } from './fixtures.js';
import { decisionFor } from '../store/fixtures.js';

// The dashboards of dashboards/: the committed JSON is what dashboards/mizugiwa.ts builds, and
// every ClickHouse query in it (panels and variables) runs against the real schema
// (schemas/clickhouse/ migrations on the embedded engine) after the Grafana ClickHouse plugin's
// macros are replaced the way the plugin replaces them. A wrong table or column fails here.
// Prometheus queries name only metrics that some component registers.

const DIR = join(repoRoot, 'dashboards');
const FROM = Date.parse('2026-11-27T00:00:00Z') / 1000;
// The fixture events are of 2026-11-27; the decisions are made and lifted now: the range covers both.
const TO = Math.max(Date.parse('2026-11-28T00:00:00Z'), Date.now() + 86_400_000) / 1000;
const HOSTS = ['mx1', 'mbox1'];
const PER_SOURCE = [7, 4, 2];

interface Target {
  refId?: string;
  datasource?: { type?: string };
  rawSql?: string;
  expr?: string;
}
interface Panel {
  title?: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Query {
  where: string;
  kind: 'sql' | 'promql';
  text: string;
}

function queriesOf(d: {
  panels?: Panel[];
  templating?: { list?: Array<Record<string, unknown>> };
  annotations?: { list?: Array<{ name?: string; target?: Target }> };
}): Query[] {
  const out: Query[] = [];
  const walk = (panels: Panel[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) {
        const where = `${p.title} [${t.refId}]`;
        if (t.datasource?.type === CLICKHOUSE_PLUGIN) out.push({ where, kind: 'sql', text: t.rawSql ?? '' });
        else if (t.datasource?.type === 'prometheus') out.push({ where, kind: 'promql', text: t.expr ?? '' });
        else throw new Error(`${where}: unexpected datasource ${JSON.stringify(t.datasource)}`);
      }
      walk(p.panels);
    }
  };
  walk(d.panels);
  for (const a of d.annotations?.list ?? []) {
    if (a.target?.datasource?.type === CLICKHOUSE_PLUGIN) {
      out.push({ where: `annotation ${a.name}`, kind: 'sql', text: a.target.rawSql ?? '' });
    }
  }
  for (const v of d.templating?.list ?? []) {
    const ds = v.datasource as { type?: string } | undefined;
    if (v.type === 'query' && ds?.type === CLICKHOUSE_PLUGIN) {
      out.push({ where: `variable ${v.name}`, kind: 'sql', text: String(v.query) });
    }
  }
  return out;
}

/** What the ClickHouse plugin (v4) sends for its macros and what Grafana sends for the variables. */
function substitute(sql: string, database: string): string {
  const out = sql
    .replace(/\$__timeFilter\(([^()]+)\)/g, `$1 >= toDateTime(${FROM}) AND $1 <= toDateTime(${TO})`)
    .replace(/\$__timeInterval\(([^()]+)\)/g, 'toStartOfInterval(toDateTime($1), INTERVAL 60 second)')
    .replaceAll('$__interval_s', '60')
    .replaceAll('$__fromTime', `toDateTime(${FROM})`)
    .replaceAll('$__toTime', `toDateTime(${TO})`)
    .replaceAll(`\${database}`, database)
    .replaceAll(`\${host:singlequote}`, HOSTS.map((h) => `'${h}'`).join(','));
  if (out.includes('$')) throw new Error(`unsubstituted macro or variable left in:\n${out}`);
  return out;
}

let dir: string;
let ch: ClickHouse;
// Fixture logs are dated 2026-11-27: keep them past the default 90-day TTL whenever the test runs.
const cfg = configSchema.parse({
  clickhouse: { database: 'mz' },
  store: { flush_interval_ms: 20, retention_days: 7300 },
});
const events = [...mailLogEvents(), ...parseLog(harvestLog(PER_SOURCE, 3), 'harvest.log')];
const built = buildDashboards();
const all = Object.values(built).flatMap((d) => queriesOf(d as never));

async function run(sql: string): Promise<Array<Record<string, unknown>>> {
  const rs = await ch.client.query({ query: substitute(sql, 'mz'), format: 'JSONEachRow' });
  return rs.json();
}

/** A decision made a minute ago, in force for an hour. */
function decision(target: string, over: Partial<Decision>): Decision {
  const now = Date.now();
  return decisionFor(target, {
    created_at: new Date(now - 60_000).toISOString(),
    expires_at: new Date(now + 3_600_000).toISOString(),
    ...over,
  });
}

describe('dashboards', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mz-dash-'));
    ch = await openClickHouse(configSchema.parse({ clickhouse: { path: dir, database: 'mz' } }).clickhouse);
    await migrate(ch, schemaOptions(cfg));
    const w = await StoreWriter.open(ch, cfg.store);
    await w.write('events', events);
    const lifted = decision('198.51.100.2', { id: 'dec-lifted' });
    await w.write('decisions', [
      decision('198.51.100.1', {}),
      decision('203.0.113.0/24', { id: 'op-1', detector: 'operator', origin: 'operator:alice' }),
      lifted,
      { ...lifted, state: 'lifted', updated_at: new Date().toISOString(), origin: 'operator:alice' },
    ]);
    const det: Detection = {
      id: 'det-1',
      detector: 'dha_source',
      subject: '198.51.100.1',
      subject_kind: 'ip',
      reason: 'test',
      confidence: 0.9,
      evidence: { counts: { user_unknown: 7 }, window_s: 600, sample_event_ids: [] },
      ts: '2026-11-27T09:10:00Z',
      decision_id: 'dec-198.51.100.1',
    };
    await w.write('detections', [
      det,
      { ...det, id: 'det-2', subject: '192.0.2.1', no_decision: 'whitelisted' },
    ]);
    await w.close();
  }, 120_000);
  afterAll(async () => {
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the committed JSON is what dashboards/mizugiwa.ts builds (run `npm run dashboards`)', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(Object.keys(built).sort());
    for (const [file, d] of Object.entries(built)) {
      // Compared as JSON: a formatter may lay the committed file out differently.
      expect(JSON.parse(readFileSync(join(DIR, file), 'utf8')), file).toEqual(JSON.parse(dashboardText(d)));
    }
  });

  it('has ClickHouse and Prometheus queries, each with a unique refId per panel', () => {
    expect(all.filter((q) => q.kind === 'sql').length).toBeGreaterThan(10);
    expect(all.filter((q) => q.kind === 'promql').length).toBeGreaterThan(5);
    const where = all.filter((q) => !/^(variable|annotation) /.test(q.where)).map((q) => q.where);
    expect(new Set(where).size).toBe(where.length);
  });

  it('every ClickHouse query runs against the migrated schema', async () => {
    const failures: string[] = [];
    for (const q of all.filter((x) => x.kind === 'sql')) {
      try {
        await run(q.text);
      } catch (err) {
        failures.push(`${q.where}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('a query naming a column that does not exist fails (the check is not vacuous)', async () => {
    const q = all.find((x) => x.kind === 'sql' && x.text.includes('sum(user_unknown)'))!;
    await expect(run(q.text.replace('sum(user_unknown)', 'sum(user_unknwn)'))).rejects.toThrow(/user_unknwn/);
  });

  it('the panels answer what the stored data says', async () => {
    const byTitle = (title: string) => {
      const q = all.find((x) => x.where.startsWith(`${title} [`));
      if (!q) throw new Error(`no panel ${title}`);
      return run(q.text);
    };
    const unknown = events.filter((e) => e.reason === 'user_unknown');
    expect(Number((await byTitle('Unknown-user rejects (range)'))[0]!.unknown_users)).toBe(unknown.length);
    const top = await byTitle('Top sources by unknown recipients');
    expect(top[0]).toMatchObject({ source: '198.51.100.1' });
    expect(Number(top[0]!.unknown_users)).toBe(PER_SOURCE[0]);
    const nets = await byTitle('Top networks by unknown recipients (/24, /64)');
    expect(nets[0]).toMatchObject({ network: '198.51.100.0/24' });
    expect(Number(nets[0]!.addresses)).toBe(PER_SOURCE.length);
    expect(Number((await byTitle('Decisions in force'))[0]!.decisions)).toBe(2);
    expect(Number((await byTitle('Operator decisions in force'))[0]!.operator_decisions)).toBe(1);
    const inForce = await byTitle('Decisions in force: targets');
    expect(inForce.map((r) => r.target).sort()).toEqual(['198.51.100.1', '203.0.113.0/24']);
    const health = await byTitle('Server health');
    expect(health.map((r) => r.host).sort()).toEqual([...HOSTS].sort());
    const nulls = await byTitle('Top null-sender sources');
    expect(nulls.map((r) => r.source)).toEqual(['203.0.113.50']);
    const det = await byTitle('Detections and why some got no decision');
    expect(det.map((r) => r.outcome).sort()).toEqual(['decided', 'whitelisted']);
    const ops = await run(all.find((q) => q.where === 'annotation Operator actions')!.text);
    expect(ops.map((r) => r.tags)).toEqual(['active', 'lifted']);
    // The variable lists the hosts of the last 7 days; the fixture events are of 2026-11-27, so it
    // is asked as of the day after them (now() would make this test fail a week after that date).
    const hostsQuery = all.find((q) => q.where === 'variable host')!.text;
    expect(hostsQuery).toContain('now()');
    const hosts = await run(hostsQuery.replaceAll('now()', `toDateTime(${FROM + 86_400}, 'UTC')`));
    expect(hosts.map((r) => r.host).sort()).toEqual([...HOSTS].sort());
  });

  it('Prometheus queries name metrics that a component registers', () => {
    const sources = readdirSync(join(repoRoot, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(join(repoRoot, 'src', f), 'utf8'))
      .join('\n');
    for (const q of all.filter((x) => x.kind === 'promql')) {
      const names = q.text.match(/mizugiwa_[a-z0-9_]+/g) ?? [];
      expect(names.length, q.where).toBeGreaterThan(0);
      for (const n of names) expect(sources, `${q.where}: ${n}`).toContain(`'${n}'`);
    }
  });
});
