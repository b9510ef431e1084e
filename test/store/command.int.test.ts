import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/create.js';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { clickhouseSchema } from '../../src/config/schema.js';
import { kafkaBusConfig } from '../bus/kafka-config.js';
import { loadServices, repoRoot } from '../services/services.js';
import { harvestLog, parseLog } from './parsed.js';

// The compiled CLI as deployed: `mizugiwa store --config FILE` against the real Kafka and the
// ClickHouse server; `mizugiwa migrate`; a bad store section.

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const { clickhouse, kafka } = loadServices('clickhouse', 'kafka');
const run = `${Date.now().toString(36)}${process.pid}`;
const database = `mz_cmd_${run}`;
const topics = {
  events: `mz.cmd.events.${run}`,
  detections: `mz.cmd.det.${run}`,
  decisions: `mz.cmd.dec.${run}`,
};
let dir: string;
let cfgFile: string;
let ch: ClickHouse;
let bus: Bus;
let child: ChildProcess | undefined;

async function scalar(sql: string): Promise<number> {
  const rs = await ch.client.query({ query: sql, format: 'JSONEachRow' });
  const [row] = await rs.json<Record<string, unknown>>();
  return Number(Object.values(row!)[0]);
}

describe('mizugiwa store / migrate (compiled CLI)', () => {
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build first`);
    dir = mkdtempSync(join(tmpdir(), 'mz-store-cmd-'));
    cfgFile = join(dir, 'mizugiwa.yaml');
    writeFileSync(
      cfgFile,
      [
        'bus:',
        '  kind: kafka',
        `  kafka: { brokers: [${kafka.brokers.map((b) => `'${b}'`).join(', ')}] }`,
        `  topics: { events: ${topics.events}, detections: ${topics.detections}, decisions: ${topics.decisions} }`,
        'clickhouse:',
        '  backend: server',
        `  url: ${clickhouse.url}`,
        `  database: ${database}`,
        'store:',
        `  group_id: mz-cmd-${run}`,
        '  flush_interval_ms: 100',
        '',
      ].join('\n'),
    );
    ch = await openClickHouse(clickhouseSchema.parse({ backend: 'server', url: clickhouse.url, database }));
    bus = await createBus(kafkaBusConfig());
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await bus?.close();
    await ch?.client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates at start-up, stores what arrives, dead-letters garbage, stops cleanly on SIGTERM', async () => {
    let stderr = '';
    child = spawn(process.execPath, [CLI, 'store', '--config', cfgFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    await expect.poll(() => stderr.includes('store consuming'), { timeout: 60_000 }).toBe(true);
    const events = parseLog(harvestLog([700, 500, 300]), 'cmd.log');
    const p = await bus.producer();
    await p.send(
      topics.events,
      events.map((e) => ({ key: e.client_ip ?? null, value: JSON.stringify(e) })),
    );
    await p.send(topics.events, [{ key: null, value: '{"half a record' }]);
    await p.close();
    await expect
      .poll(() => scalar(`SELECT count() FROM ${database}.mail_events`), { timeout: 60_000 })
      .toBe(events.length);
    await expect
      .poll(() => scalar(`SELECT count() FROM ${database}.dead_letters`), { timeout: 30_000 })
      .toBe(1);
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    child = undefined;
    expect(stderr).toContain('store stopping');
  });

  it('migrate: nothing left to apply after store ran; --print --cluster shows the cluster DDL', () => {
    const out = execFileSync(process.execPath, [CLI, 'migrate', '--config', cfgFile], { encoding: 'utf8' });
    expect(out).toMatch(/server ClickHouse 18\.[\d.]+ \(legacy dialect\): 0 applied, 5 already there/);
    const sql = execFileSync(process.execPath, [CLI, 'migrate', '--print', '--cluster', 'mail'], {
      encoding: 'utf8',
    });
    expect(sql).toContain('CREATE TABLE IF NOT EXISTS mizugiwa.mail_events_local ON CLUSTER mail');
    expect(sql).toContain('ENGINE = Distributed(mail, mizugiwa, mail_events_local, cityHash64(id))');
  });

  it('a bad store section is refused with the key named, exit 2', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'store:\n  batch_rows: 0\n  retention: 30\n');
    const r = spawnSync(process.execPath, [CLI, 'store', '--config', bad], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('store.batch_rows');
    expect(r.stderr).toContain('store.retention: unknown key');
  });
});
