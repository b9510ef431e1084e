import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningApi, startApi } from '../../src/api/start.js';
import type { Bus, BusMessage, Consumer } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/create.js';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { type Config, configSchema } from '../../src/config/config.js';
import type { Decision } from '../../src/decision/decision.js';
import { StoreConsumer } from '../../src/store/consumer.js';
import { StoreWriter } from '../../src/store/writer.js';
import { loadServices, repoRoot } from '../services/services.js';
import { until } from './helpers.js';

// `startApi` as `mizugiwa api` runs it, over real HTTP, with the real Kafka of
// scripts/services.sh as its bus (fresh topics per run) and an embedded ClickHouse: an operator
// add reaches a consumer of the decisions topic keyed by its target; the store (a StoreConsumer
// over Kafka) records it; the feeds it then serves are accepted by the real postmap and makemap;
// a lift reaches the consumer as the same decision in state `lifted`.

const services = loadServices('kafka', 'postfix', 'sendmail');
const exec = promisify(execFile);
const TOKEN = 'integration-token-0123456789';
const run = randomUUID().slice(0, 8);

let dir: string;
let cfg: Config;
let api: RunningApi;
let ch: ClickHouse;
let bus: Bus;
let reader: Consumer;
let store: StoreConsumer;
let writer: StoreWriter;
const seen: BusMessage[] = [];

// Response bodies, read by the assertions below (shape checked by toMatchObject/toEqual).
// biome-ignore lint/suspicious/noExplicitAny: test-only JSON access
type Json = any;

async function http(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Json; text: string }> {
  const r = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text };
}

describe('api over Kafka', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mz-api-int-'));
    cfg = configSchema.parse({
      host: 'api-int',
      data_dir: join(dir, 'data'),
      bus: {
        kind: 'kafka',
        partitions: 2,
        kafka: { brokers: services.kafka.brokers, client_id: `mz-api-int-${run}` },
        topics: {
          events: `mz-api-${run}.events`,
          detections: `mz-api-${run}.detections`,
          decisions: `mz-api-${run}.decisions`,
          dead_letter: `mz-api-${run}.dlq`,
        },
      },
      clickhouse: { backend: 'embedded', path: join(dir, 'chdb'), database: 'mz' },
      store: { flush_interval_ms: 20, idle_flush_ms: 5 },
      api: {
        listen: '127.0.0.1:0',
        tokens: [{ name: 'oncall', token: TOKEN }],
        whitelist_topic: `mz-api-${run}.whitelist`,
      },
    });
    ch = await openClickHouse(cfg.clickhouse);
    api = await startApi(cfg, { ch, log: pino({ level: 'silent' }) });

    bus = await createBus(cfg.bus);
    reader = await bus.consumer({
      groupId: `reader-${run}`,
      topics: [cfg.bus.topics.decisions],
      fromBeginning: true,
    });
    await reader.run(async (msgs) => {
      seen.push(...msgs);
    });
    writer = await StoreWriter.open(ch, cfg.store);
    store = new StoreConsumer(bus, writer, { groupId: `store-${run}`, topics: cfg.bus.topics });
    await store.start();
  }, 180_000);

  afterAll(async () => {
    await reader?.close();
    await store?.stop();
    await writer?.close();
    await api?.close();
    await bus?.close();
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/health sees ClickHouse and Kafka', async () => {
    const r = await http('GET', '/health');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      status: 'ok',
      bus: { kind: 'kafka', ok: true },
      clickhouse: { ok: true },
    });
  });

  it('an operator add reaches the decisions topic, the store, and feeds that postmap and makemap accept; a lift follows', async () => {
    const add = await http('POST', '/api/v1/decisions', {
      target: '198.51.100.77',
      reason: 'harvest reported by the helpdesk',
      ttl_s: 1800,
      reply: '450 4.7.1 Too many unknown recipients; try later',
    });
    expect(add.status).toBe(201);
    const d: Decision = add.json.decision;

    const msg = await until(async () => seen.find((m) => m.key === '198.51.100.77'));
    const onBus = JSON.parse(msg.value!.toString('utf8')) as Decision;
    expect(onBus).toEqual(d);
    expect(onBus).toMatchObject({ state: 'active', action: 'tempfail', origin: 'operator:oncall' });

    await until(async () =>
      (await http('GET', '/api/v1/decisions')).json.decisions.find((x: Decision) => x.id === d.id),
    );

    // Postfix: the feed becomes a hash table that answers the reply for the address.
    const work = join(repoRoot, 'var', `api-int-${run}`);
    mkdirSync(work, { recursive: true, mode: 0o755 });
    try {
      const pf = await http('GET', '/api/v1/feed/postfix?type=hash');
      expect(pf.status).toBe(200);
      const pfFile = join(work, 'mizugiwa_feed');
      writeFileSync(pfFile, pf.text);
      await exec(services.postfix.postmap, [`hash:${pfFile}`]);
      const q = await exec(services.postfix.postmap, ['-q', '198.51.100.77', `hash:${pfFile}`]);
      expect(q.stdout.trim()).toBe(d.reply);

      // Sendmail: makemap builds the access db; dumping it gives the entry back.
      const sm = await http('GET', '/api/v1/feed/sendmail');
      const smFile = join(work, 'access');
      writeFileSync(smFile, sm.text, { mode: 0o644 });
      await exec('sh', ['-c', `${services.sendmail.makemap} hash ${smFile} < ${smFile}`]);
      const dump = await exec(services.sendmail.makemap, ['-u', 'hash', smFile]);
      expect(dump.stdout.trim().split('\n')).toEqual([`connect:198.51.100.77\tERROR:4.7.1:"${d.reply}"`]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }

    const lift = await http('POST', '/api/v1/decisions/198.51.100.77/lift', {
      reason: 'customer relay, cleaned up',
    });
    expect(lift.status).toBe(200);
    const liftedMsg = await until(async () =>
      seen.find((m) => m.key === '198.51.100.77' && JSON.parse(m.value!.toString('utf8')).state === 'lifted'),
    );
    expect(JSON.parse(liftedMsg.value!.toString('utf8'))).toMatchObject({
      id: d.id,
      state: 'lifted',
      origin: 'operator:oncall',
      reason: 'lifted: customer relay, cleaned up',
    });
    await until(async () => (await http('GET', '/api/v1/decisions')).json.count === 0);
    const feed = await http('GET', '/api/v1/feed.json');
    expect(feed.json.entries).toEqual([]);
  });

  it('whitelist changes are published on their compacted topic', async () => {
    const w = await http('POST', '/api/v1/whitelist', { target: '203.0.113.0/24', reason: 'partner relay' });
    expect(w.status).toBe(201);
    const wl = await bus.consumer({
      groupId: `wl-${run}`,
      topics: [cfg.api.whitelist_topic],
      fromBeginning: true,
    });
    const got: BusMessage[] = [];
    await wl.run(async (msgs) => {
      got.push(...msgs);
    });
    const m = await until(async () => got.find((x) => x.key === '203.0.113.0/24'));
    await wl.close();
    expect(JSON.parse(m.value!.toString('utf8'))).toMatchObject({
      target: '203.0.113.0/24',
      added_by: 'operator:oncall',
    });
    expect(
      (await http('POST', '/api/v1/decisions', { target: '203.0.113.9', reason: 'x', ttl_s: 600 })).status,
    ).toBe(409);
  });
});
