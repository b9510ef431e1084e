import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/create.js';
import kafkajs from '../../src/bus/kafkajs.js';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { migrate } from '../../src/clickhouse/migrate.js';
import { clickhouseSchema, topicsSchema } from '../../src/config/schema.js';
import { storeSchema } from '../../src/store/config.js';
import { StoreConsumer } from '../../src/store/consumer.js';
import { StoreWriter } from '../../src/store/writer.js';
import { kafkaBusConfig } from '../bus/kafka-config.js';
import { loadServices, repoRoot } from '../services/services.js';
import { parseLog } from './parsed.js';

// The network path: 100,000 events through the real Kafka bus into Debian's ClickHouse server
// (18.16, legacy dialect: the version-neutral tables of schemas/clickhouse/legacy/). The server
// is killed (SIGKILL) in the middle of the stream and started again. Checked:
//  - every event is stored, exactly once after dedup (FINAL), none missing;
//  - at every moment the committed offsets were sampled (every 100 ms, also during the outage),
//    every event below them had already been stored (its first ingested_at, stamped per insert
//    attempt, is not later than the sample).

const N = 100_000;
const { clickhouse } = loadServices('clickhouse', 'kafka');
const run = `${Date.now().toString(36)}${process.pid}`;
const database = `mz_net_${run}`;
const topics = topicsSchema.parse({
  events: `mz.store.events.${run}`,
  detections: `mz.store.detections.${run}`,
  decisions: `mz.store.decisions.${run}`,
});
const groupId = `mz-store-${run}`;
const cfg = storeSchema.parse({
  batch_rows: 5000,
  flush_interval_ms: 200,
  retry_initial_ms: 100,
  retry_max_ms: 1000,
});

const chPidFile = join(repoRoot, 'var', 'services', 'clickhouse', 'clickhouse.pid');
function killClickHouse(): void {
  process.kill(Number(readFileSync(chPidFile, 'utf8').trim()), 'SIGKILL');
}
function startClickHouse(): void {
  execFileSync('bash', [join(repoRoot, 'scripts', 'services.sh'), 'up', 'clickhouse'], {
    stdio: 'ignore',
    timeout: 120_000,
  });
}

function eventsLog(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const s = i % 3600;
    const t = `10:${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
    lines.push(
      `Nov 27 ${t} mx${i % 3} postfix/smtpd[${1000 + (i % 500)}]: NOQUEUE: reject: RCPT from unknown[${ip}]: 550 5.1.1 ` +
        `<u${i}@example.test>: Recipient address rejected: User unknown in local recipient table; from=<s@x.example> to=<u${i}@example.test> proto=ESMTP helo=<h>`,
    );
  }
  return lines.join('\n');
}

interface Sample {
  at: number;
  committed: Map<number, number>;
  outage: boolean;
}

describe('store over the network: Kafka -> ClickHouse server killed mid-stream', () => {
  let ch: ClickHouse;
  let bus: Bus;
  let admin: Admin;

  beforeAll(async () => {
    ch = await openClickHouse(
      clickhouseSchema.parse({ backend: 'server', url: clickhouse.url, database, request_timeout_ms: 5000 }),
    );
    const m = await migrate(ch, { database, ...cfg });
    expect(m.dialect.name).toBe('legacy');
    bus = await createBus(kafkaBusConfig(), {
      kafka: { heartbeatIntervalMs: 1000, sessionTimeoutMs: 30_000, maxWaitTimeMs: 200 },
    });
    admin = new kafkajs.Kafka({
      brokers: kafkaBusConfig().kafka.brokers,
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.disconnect();
    await bus?.close();
    try {
      startClickHouse();
      await ch?.client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    } finally {
      await ch?.close();
    }
  });

  it('stores 100,000 events exactly once and never commits past an unstored one', async () => {
    const events = parseLog(eventsLog(N), 'net.log');
    expect(new Set(events.map((e) => e.id)).size).toBe(N);

    const writer = await StoreWriter.open(ch, cfg);
    expect(writer.dialect.name).toBe('legacy');
    const consumer = new StoreConsumer(bus, writer, { groupId, topics, concurrency: 4, heartbeatMs: 1000 });
    await consumer.start();

    const samples: Sample[] = [];
    let outage = false;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const at = Date.now();
        const [res] = await admin.fetchOffsets({ groupId, topics: [topics.events] });
        const committed = new Map<number, number>();
        for (const p of res?.partitions ?? []) committed.set(p.partition, Number(p.offset));
        samples.push({ at, committed, outage });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const stored = async () => {
      const rs = await ch.client.query({
        query: `SELECT uniqExact(id) AS n FROM ${database}.mail_events`,
        format: 'JSONEachRow',
      });
      return Number((await rs.json<{ n: string }>())[0]!.n);
    };

    // Produce in steps so the stream is still flowing when the server dies.
    const producer = await bus.producer();
    const step = 5000;
    let killedAt = 0;
    let restartedAt = 0;
    for (let i = 0; i < N; i += step) {
      await producer.send(
        topics.events,
        events.slice(i, i + step).map((e) => ({ key: e.client_ip ?? null, value: JSON.stringify(e) })),
      );
      if (i === 40_000) {
        await expect.poll(stored, { timeout: 60_000, interval: 100 }).toBeGreaterThan(20_000);
        outage = true;
        killClickHouse();
        killedAt = Date.now();
      }
      if (i === 60_000) {
        await new Promise((r) => setTimeout(r, 3000));
        outage = false;
        restartedAt = Date.now();
        startClickHouse();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await producer.close();
    await expect.poll(stored, { timeout: 120_000, interval: 250 }).toBe(N);
    await writer.flush();
    // wait for the final commits
    await expect
      .poll(
        async () => {
          const [res] = await admin.fetchOffsets({ groupId, topics: [topics.events] });
          return (res?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
        },
        { timeout: 30_000 },
      )
      .toBe(N);
    sampling = false;
    await sampler;
    await consumer.stop();
    await writer.close();

    // Exactly once after dedup, nobody missing.
    const rs = await ch.client.query({
      query: `SELECT count() AS rows, uniqExact(id) AS ids FROM ${database}.mail_events`,
      format: 'JSONEachRow',
    });
    const [{ rows, ids }] = (await rs.json<{ rows: string; ids: string }>()) as [
      { rows: string; ids: string },
    ];
    expect(Number(ids)).toBe(N);
    expect(Number(rows)).toBeGreaterThanOrEqual(N);
    const fin = await ch.client.query({
      query: `SELECT count() AS n FROM ${database}.mail_events FINAL`,
      format: 'JSONEachRow',
    });
    expect(Number((await fin.json<{ n: string }>())[0]!.n)).toBe(N);

    // When was each event first stored? (ingested_at is stamped per insert attempt.)
    const firstRs = await ch.client.query({
      query: `SELECT id, toUnixTimestamp(min(ingested_at)) AS t FROM ${database}.mail_events GROUP BY id`,
      format: 'JSONEachRow',
    });
    const firstStored = new Map(
      (await firstRs.json<{ id: string; t: string }>()).map((r) => [r.id, Number(r.t)]),
    );
    expect(firstStored.size).toBe(N);

    // Where each event sits on the bus: read the topic again with a fresh group.
    const position = new Map<string, string>(); // `${partition}:${offset}` -> id
    const reader = await bus.consumer({
      groupId: `${groupId}-reader`,
      topics: [topics.events],
      fromBeginning: true,
    });
    await reader.run(async (msgs: BusMessage[]) => {
      for (const m of msgs) position.set(`${m.partition}:${m.offset}`, JSON.parse(m.value!.toString()).id);
    });
    await expect.poll(() => position.size, { timeout: 60_000 }).toBe(N);
    await reader.close();
    const byPartition = new Map<number, string[]>();
    for (const [k, id] of position) {
      const [p, o] = k.split(':').map(Number) as [number, number];
      const arr = byPartition.get(p) ?? [];
      arr[o] = id;
      byPartition.set(p, arr);
    }

    const during = samples.filter((s) => s.outage);
    expect(killedAt).toBeGreaterThan(0);
    expect(restartedAt).toBeGreaterThan(killedAt);
    expect(during.length).toBeGreaterThan(10);
    let checked = 0;
    for (const s of samples) {
      for (const [p, committed] of s.committed) {
        const ids = byPartition.get(p) ?? [];
        for (let o = 0; o < committed; o++) {
          const t = firstStored.get(ids[o]!);
          expect(
            t,
            `event at ${p}:${o} below committed ${committed} at ${new Date(s.at).toISOString()}`,
          ).toBeDefined();
          // ingested_at has second resolution and is taken before the insert is sent
          if (t! > Math.floor(s.at / 1000)) {
            throw new Error(
              `committed offset ${committed} of partition ${p} passed event ${ids[o]} (stored at ${t}, sample at ${s.at})`,
            );
          }
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
    // During the outage nothing could be stored, so the committed offsets stood still (from a
    // second after the kill: a batch acknowledged just before it may still be committing).
    const settled = during.filter((s) => s.at >= killedAt + 1000);
    expect(settled.length).toBeGreaterThan(5);
    const first = settled[0]!.committed;
    for (const s of settled)
      for (const [p, c] of s.committed) expect(c).toBeLessThanOrEqual(first.get(p) ?? c);
  }, 600_000); // ~1 min on a quiet machine; the shared one has taken more than 2
});
