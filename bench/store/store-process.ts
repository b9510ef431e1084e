// The store side of bench/store/throughput.ts's Kafka scenarios, in a process of its own as
// `mizugiwa store` runs: the benchmark's own process holds the generated events (about
// 2.5 KB of heap each), and every garbage collection of a store sharing it would walk them too.
// Started once per backend and kept (so it warms up as a running store does), it takes requests
// over the fork channel:
//   { op: 'open', clickhouse, brokers }  its ClickHouse (embedded: a data directory of its own)
//   { op: 'kafka', db, topics, groupId, n, mergeSelectorBase? }  StoreConsumer + StoreWriter on a fresh database,
//                                         timed from the consumer's start to n rows stored
//   { op: 'consume', topic, groupId, n }  the same consumer settings, a handler that only counts
//   { op: 'close' }
// and answers each with { ok: true, timing } or { ok: false, error }.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { clickhouseSchema, topicsSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log/logger.js';
import { StoreConsumer } from '../../src/store/consumer.js';
import { rowsInserted } from '../../src/store/metrics.js';
import { StoreWriter } from '../../src/store/writer.js';
import { Clock, count, fresh, mergedRows, storeCfg, type Timing, withKafkaBus } from './common.js';

export type StoreRequest =
  | { op: 'open'; clickhouse: Record<string, unknown>; brokers: string[] }
  | {
      op: 'kafka';
      db: string;
      topics: { events: string; detections: string; decisions: string };
      groupId: string;
      n: number;
      /** mail_events' merge_selector_base, when not migration 008's. */
      mergeSelectorBase?: number;
    }
  | { op: 'consume'; topic: string; groupId: string; n: number }
  | { op: 'close' };

export type StoreAnswer = { ok: true; timing?: Timing } | { ok: false; error: string };

createLogger({ level: 'warn' });
let ch: ClickHouse | undefined;
let dir: string | undefined;
let brokers: string[] = [];

async function eventRowsInserted(): Promise<number> {
  const { values } = await rowsInserted.get();
  return values.filter((v) => v.labels.table === 'mail_events').reduce((n, v) => n + v.value, 0);
}

async function store(req: Extract<StoreRequest, { op: 'kafka' }>): Promise<Timing> {
  const c = ch!;
  await fresh(c, req.db, req.mergeSelectorBase);
  const t = await withKafkaBus(brokers, async (bus) => {
    const w = await StoreWriter.open({ ...c, database: req.db }, storeCfg);
    const consumer = new StoreConsumer(bus, w, {
      groupId: req.groupId,
      topics: topicsSchema.parse(req.topics),
      concurrency: storeCfg.concurrency,
      fetchMaxBytesPerPartition: storeCfg.fetch_max_bytes_per_partition,
    });
    // Rows acknowledged by ClickHouse, from the writer's own counter: polling count() would
    // queue a query behind the inserts (chdb runs one statement at a time).
    const before = await eventRowsInserted();
    const merged = await mergedRows(c);
    const clock = new Clock();
    await consumer.start();
    // Joined its group (the run's fixed cost, reported apart as kafka-consumer-perf-test does).
    const joinSeconds = clock.elapsed();
    while ((await eventRowsInserted()) - before < req.n) await new Promise((r) => setTimeout(r, 5));
    const timing = { ...clock.stop(), joinSeconds };
    const rewritten = (await mergedRows(c)) - merged;
    const stored = await count(c, req.db);
    await consumer.stop();
    await w.close();
    return { ...timing, stored, mergedRows: rewritten };
  });
  await c.client.command({ query: `DROP DATABASE IF EXISTS ${req.db}` });
  return t;
}

async function consume(req: Extract<StoreRequest, { op: 'consume' }>): Promise<Timing> {
  return withKafkaBus(brokers, async (bus) => {
    let n = 0;
    let all!: () => void;
    const done = new Promise<void>((r) => {
      all = r;
    });
    const c = await bus.consumer({
      groupId: req.groupId,
      topics: [req.topic],
      fromBeginning: true,
      partitionsConsumedConcurrently: storeCfg.concurrency,
      fetchMaxBytesPerPartition: storeCfg.fetch_max_bytes_per_partition,
    });
    const clock = new Clock();
    await c.run(async (messages) => {
      n += messages.length;
      if (n >= req.n) all();
    });
    await done;
    const t = clock.stop();
    await c.close();
    return t;
  });
}

async function handle(req: StoreRequest): Promise<Timing | undefined> {
  switch (req.op) {
    case 'open': {
      brokers = req.brokers;
      const cfg = { ...req.clickhouse };
      if (cfg.backend === 'embedded') cfg.path = dir = mkdtempSync(join(tmpdir(), 'mz-bench-store-process-'));
      ch = await openClickHouse(clickhouseSchema.parse(cfg));
      return undefined;
    }
    case 'kafka':
      return store(req);
    case 'consume':
      return consume(req);
    case 'close':
      await ch?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
      return undefined;
  }
}

process.on('message', (req: StoreRequest) => {
  const answer = (a: StoreAnswer) =>
    process.send?.(a, undefined, {}, () => {
      if (req.op === 'close') process.disconnect?.();
    });
  handle(req).then(
    (timing) => answer({ ok: true, timing }),
    (err: Error) => answer({ ok: false, error: err.stack ?? String(err) }),
  );
});
