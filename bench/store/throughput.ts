// Store throughput: seeded MailEvents (made by the real parser from generated Postfix lines)
// into ClickHouse with the production schema (skip indexes, codecs, four rollup views):
//   direct  : StoreWriter.write() in-process (what `mizugiwa run` does over the memory bus)
//   memory  : memory bus -> StoreConsumer -> StoreWriter
//   transcode : no ClickHouse: each event's JSON bytes to its RowBinary row, JSON.parse +
//             eventRowBinary against transcodeEvent (json-rowbinary.ts)
//   consume : the same Kafka topic through the same bus consumer into a handler that only counts:
//             what the bus can hand any store here (the ceiling of the kafka path)
//   kafka   : Kafka topic (pre-filled as the shipper fills it) -> StoreConsumer -> StoreWriter
//             (`mizugiwa store`); timed from the consumer's start (group join included) until
//             the writer has every row acknowledged, CPU counted over the same span; a second
//             line gives the rate after the join (from when the consumer had joined its group
//             to the last row acknowledged; the join is a run's fixed cost, which
//             kafka-consumer-perf-test also reports apart) and the join times. A million
//             events by default: long enough for the engine's background merges of the inserted
//             parts to run, and to cost, as they do in a store that keeps up with a stream.
// The Kafka topic is filled once; each run reads it from the beginning in a group of its own.
// consume and kafka run in a store process of their own (store-process.ts), as `mizugiwa store`
// does: this one holds the generated events, a heap the store's collector should not walk.
//   raw     : the ceiling: rows serialized beforehand, 50k per INSERT, same table (embedded:
//             RowBinary files read by file(), with the writer's settings; server: JSONEachRow)
//   raw-optimize : (embedded, not in the default set) the same with optimize_on_insert = 1, the
//             engine's default, which the writer turns off
// against the embedded engine (chdb) and the ClickHouse server of scripts/services.sh (18.16,
// legacy schema: no rollups, no indexes). Bytes per event from system.parts after OPTIMIZE FINAL.
// Besides wall-clock events/s it reports events per CPU-second of this process (user + system,
// all threads: for the embedded engine that includes ClickHouse itself), over the same span as
// the wall time (raw: the inserts only, not writing the rows beforehand), which a machine shared
// with other work distorts far less than wall time.
//
//   npx tsc -p tsconfig.json && node dist/bench/store/throughput.js [--events 1000000] [--runs 3] [--warmup 1]
//     [--only transcode,raw,raw-optimize,direct,memory,consume,kafka] [--backend embedded,server]
//     [--merge-selector-base N]
// --merge-selector-base sets mail_events' merge_selector_base (migration 008 sets 25; 5 is
// ClickHouse's default) to compare merge policies; the kafka line reports the rows merges read
// per stored event. More events mean more merge levels: --events 3000000 shows what a longer
// stream costs (give node --max-old-space-size=14000 for the generated events).
// Each scenario runs --warmup times unmeasured first: the engine's allocator and the JIT warm up
// as in a store that has been running (the first runs in a process were up to 2x slower).
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Bus, Producer } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory.js';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { clickhouseSchema, topicsSchema } from '../../src/config/schema.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { createLogger } from '../../src/log/logger.js';
import { eventKey } from '../../src/ship/shipper.js';
import { StoreConsumer } from '../../src/store/consumer.js';
import { transcodeEvent } from '../../src/store/json-rowbinary.js';
import { eventRowBinary, RowBinaryWriter, rowBinaryInsert, writeRows } from '../../src/store/rowbinary.js';
import { currentInsertSettings, StoreWriter } from '../../src/store/writer.js';
import { benchArgs } from '../lib/args.js';
import { Clock, count, fresh, median, storeCfg, type Timing, withKafkaBus } from './common.js';
import { makeEvents } from './events.js';
import type { StoreAnswer, StoreRequest } from './store-process.js';

const args = benchArgs('store bench', {
  usage: `usage: node dist/bench/store/throughput.js [options]   (or: npm run bench -- store [options])

Events per second (and per CPU-second) into ClickHouse, side by side by path and backend.`,
  options: {
    events: {
      type: 'string',
      default: '1000000',
      help: 'events generated by the real parser (3000000 needs node --max-old-space-size=14000)',
    },
    runs: { type: 'string', default: '3', help: 'measured runs per scenario, the median is reported' },
    warmup: { type: 'string', default: '1', help: 'unmeasured runs first' },
    only: {
      type: 'string',
      default: 'transcode,raw,direct,memory,consume,kafka',
      help: 'scenarios: transcode,raw,raw-optimize,direct,memory,consume,kafka',
    },
    backend: {
      type: 'string',
      default: 'embedded,server',
      help: 'embedded,server (server and Kafka from scripts/services.sh)',
    },
    'merge-selector-base': {
      type: 'string',
      help: "mail_events' merge_selector_base (embedded only; migration 008 sets 25)",
    },
  },
  notes: `Environment: MZ_BENCH_STORE_CFG='{"batch_rows":100000}' overrides store settings of the store
under test; MZ_BENCH_STORE_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' passes node flags to the
Kafka scenarios' store process.`,
});
const N = Number(args.events);
const RUNS = Number(args.runs);
const WARMUP = Number(args.warmup);
const MERGE_BASE =
  args['merge-selector-base'] === undefined ? undefined : Number(args['merge-selector-base']);
if (MERGE_BASE !== undefined && !(MERGE_BASE >= 1))
  throw new Error(`--merge-selector-base ${args['merge-selector-base']}: a number of at least 1`);
const ONLY = new Set(args.only!.split(','));
const BACKENDS = args.backend!.split(',');
if (MERGE_BASE !== undefined && BACKENDS.includes('server'))
  throw new Error(
    '--merge-selector-base is for the embedded engine (the legacy server has no such setting): add --backend embedded',
  );
createLogger({ level: 'warn' });

const CHUNK = 5000;

async function direct(ch: ClickHouse, db: string, events: MailEvent[]): Promise<Timing> {
  const w = await StoreWriter.open({ ...ch, database: db }, storeCfg);
  const clock = new Clock();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < events.length; i += CHUNK) pending.push(w.write('events', events.slice(i, i + CHUNK)));
  await Promise.all(pending);
  const t = clock.stop();
  await w.close();
  return t;
}

async function raw(
  ch: ClickHouse,
  db: string,
  events: MailEvent[],
  optimizeOnInsert = false,
): Promise<Timing> {
  // Same rows the writer would send, serialized up front: what is left is ClickHouse itself.
  const w = await StoreWriter.open({ ...ch, database: db }, storeCfg);
  const current = w.dialect.name === 'current';
  await w.close();
  if (ch.backend === 'embedded' && current) return rawRowBinary(ch, db, events, optimizeOnInsert);
  const rows = events.map((e) => {
    const { ts, ...rest } = e;
    const iso = ts!.replace('T', ' ').replace(/(\+00:00|Z)$/, '');
    return JSON.stringify(
      Object.fromEntries(
        Object.entries({
          ...rest,
          ts: current ? `${iso}.000000` : iso,
          command_counts: rest.command_counts ? JSON.stringify(rest.command_counts) : undefined,
        }).filter(([, v]) => v !== undefined),
      ),
    );
  });
  const clock = new Clock();
  for (let i = 0; i < rows.length; i += 50_000) {
    await ch.client.exec({
      query: `INSERT INTO ${db}.mail_events FORMAT JSONEachRow`,
      values: Readable.from([`${rows.slice(i, i + 50_000).join('\n')}\n`]),
      clickhouse_settings: current ? {} : { input_format_skip_unknown_fields: 1 },
    });
  }
  return clock.stop();
}

/** The embedded path's ceiling: RowBinary files written beforehand, 50,000 rows per INSERT ... file(). */
async function rawRowBinary(
  ch: ClickHouse,
  db: string,
  events: MailEvent[],
  optimizeOnInsert: boolean,
): Promise<Timing> {
  const dir = mkdtempSync(join(tmpdir(), 'mz-bench-rowbinary-'));
  const enc = new RowBinaryWriter();
  const files: string[] = [];
  for (let i = 0; i < events.length; i += 50_000) {
    const file = join(dir, `${i}.bin`);
    writeRows(
      file,
      events.slice(i, i + 50_000).map((e) => eventRowBinary(enc, e, 0)),
    );
    files.push(file);
  }
  const clock = new Clock();
  for (const file of files) {
    await ch.client.command({
      query: rowBinaryInsert(
        `${db}.mail_events`,
        file,
        `SETTINGS ${currentInsertSettings(randomUUID(), optimizeOnInsert)}`,
      ),
    });
  }
  const t = clock.stop();
  rmSync(dir, { recursive: true, force: true });
  return t;
}

/** As the shipper sends events: keyed by client (else message, else host), JSON bytes, gzip level 1. */
async function fillTopic(bus: Bus, p: Producer, topic: string, events: MailEvent[]): Promise<void> {
  await bus.ensureTopics([{ topic, partitions: 4 }]);
  for (let i = 0; i < events.length; i += CHUNK) {
    await p.send(
      topic,
      events
        .slice(i, i + CHUNK)
        .map((e) => ({ key: eventKey(e, e.host ?? ''), value: Buffer.from(JSON.stringify(e)) })),
    );
  }
}

/**
 * The consumer's encoding alone, no ClickHouse: each event's JSON bytes (as they come off the
 * bus) to its RowBinary row, by JSON.parse + eventRowBinary (the old way, still the fallback) and
 * by transcodeEvent (json-rowbinary.ts), into one writer per run as the store keeps one.
 * 200,000 events, before the others are made: a run keeps every row it makes (a store holds at
 * most max_buffered_rows, 200,000), and a million kept rows, or a million events on the heap,
 * measured the collector more than the encoding (2-3x the time per event).
 */
function transcode(events: MailEvent[]): void {
  const bufs = events.map((e) => Buffer.from(JSON.stringify(e)));
  const now = Date.now();
  let fast = 0;
  const run = (way: 'parse' | 'transcode'): number => {
    const w = new RowBinaryWriter();
    const rows = new Array<unknown>(bufs.length);
    fast = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < bufs.length; i++) {
      const b = bufs[i]!;
      if (way === 'transcode' && transcodeEvent(w, b, now)) {
        rows[i] = w.endRow(b);
        fast++;
      } else rows[i] = eventRowBinary(w, JSON.parse(b.toString('utf8')), now);
    }
    return Number(process.hrtime.bigint() - t0) / bufs.length;
  };
  const parse: number[] = [];
  const direct: number[] = [];
  for (let r = -WARMUP; r < RUNS; r++) {
    const a = run('parse');
    const b = run('transcode');
    if (r >= 0) parse.push(a);
    if (r >= 0) direct.push(b);
  }
  const ns = (xs: number[]) => `${Math.round(median(xs))} ns/event (runs: ${xs.map(Math.round).join(', ')})`;
  console.log(
    `  JSON bytes -> RowBinary row (${bufs.length.toLocaleString('en')} events): JSON.parse + eventRowBinary ${ns(parse)}`,
  );
  console.log(
    `  JSON bytes -> RowBinary row: transcodeEvent ${ns(direct)}, ${((100 * fast) / bufs.length).toFixed(1)} % on the fast path; ` +
      `${(median(parse) / median(direct)).toFixed(2)}x`,
  );
}

/** memory bus -> StoreConsumer -> StoreWriter, in this process (the bus is this process's). */
async function viaMemoryBus(ch: ClickHouse, db: string, events: MailEvent[]): Promise<Timing> {
  const bus = new MemoryBus({ partitions: 4, maxRetainedRecords: 200_000, maxBatchRecords: 5000 });
  try {
    const topics = benchTopics('mem');
    const p = await bus.producer();
    const w = await StoreWriter.open({ ...ch, database: db }, storeCfg);
    const consumer = new StoreConsumer(bus, w, {
      groupId: 'bench-mem',
      topics,
      concurrency: storeCfg.concurrency,
    });
    // The memory bus holds a bounded backlog: produce while the store consumes.
    await consumer.start();
    const clock = new Clock();
    await fillTopic(bus, p, topics.events, events);
    while ((await count(ch, db)) < events.length) await new Promise((r) => setTimeout(r, 20));
    const t = clock.stop();
    await consumer.stop();
    await w.close();
    await p.close();
    return t;
  } finally {
    await bus.close();
  }
}

function benchTopics(tag: string): { events: string; detections: string; decisions: string } {
  return topicsSchema.parse({
    events: `bench.store.${tag}.events`,
    detections: `bench.store.${tag}.det`,
    decisions: `bench.store.${tag}.dec`,
  });
}

let filled: Promise<ReturnType<typeof benchTopics>> | undefined;

/**
 * The topics every Kafka run reads, each from the beginning in a consumer group of its own:
 * filled once as the shipper would, before any clock starts.
 */
function filledTopics(brokers: string[], events: MailEvent[]): Promise<ReturnType<typeof benchTopics>> {
  filled ??= (async () => {
    const topics = benchTopics(Date.now().toString(36));
    await withKafkaBus(brokers, async (bus) => {
      const p = await bus.producer({ lingerMs: 5, compression: 'gzip', gzipLevel: 1 });
      await fillTopic(bus, p, topics.events, events);
      await p.close();
    });
    return topics;
  })();
  return filled;
}

/** The store process of the Kafka scenarios (store-process.ts), one request at a time. */
class StoreProcess {
  private readonly child: ChildProcess;
  private pending: { resolve: (a: StoreAnswer) => void; reject: (e: Error) => void } | undefined;

  constructor() {
    this.child = fork(fileURLToPath(new URL('./store-process.js', import.meta.url)), {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // e.g. MZ_BENCH_STORE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the store
      execArgv: (process.env.MZ_BENCH_STORE_NODE_ARGS ?? '').split(' ').filter(Boolean),
    });
    this.child.on('message', (a: StoreAnswer) => this.pending?.resolve(a));
    this.child.on('exit', (code) => this.pending?.reject(new Error(`store process exited (${code})`)));
  }

  async request(req: StoreRequest): Promise<Timing | undefined> {
    const answer = await new Promise<StoreAnswer>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.child.send(req);
    });
    this.pending = undefined;
    if (!answer.ok) throw new Error(`store process: ${answer.error}`);
    return answer.timing;
  }

  async close(): Promise<void> {
    await this.request({ op: 'close' }).catch(() => {});
    // It exits by itself once disconnected (and writes a --cpu-prof then); kill what lingers.
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    }
    this.child.kill();
  }
}

async function bytesPerEvent(
  ch: ClickHouse,
  db: string,
): Promise<{ compressed: number; uncompressed: number }> {
  await ch.client.command({ query: `OPTIMIZE TABLE ${db}.mail_events FINAL` });
  const rs = await ch.client.query({
    query: `SELECT sum(data_compressed_bytes) AS c, sum(data_uncompressed_bytes) AS u, sum(rows) AS r
            FROM system.parts WHERE database = '${db}' AND table = 'mail_events' AND active`,
    format: 'JSONEachRow',
  });
  const [x] = await rs.json<{ c: string; u: string; r: string }>();
  return { compressed: Number(x!.c) / Number(x!.r), uncompressed: Number(x!.u) / Number(x!.r) };
}

async function main(): Promise<void> {
  console.log(
    `store bench: ${N} events, ${RUNS} runs (median), load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  // First, while the heap is small: the encoding alone.
  if (ONLY.has('transcode')) transcode(makeEvents(Math.min(N, 200_000)));
  const t = performance.now();
  const events = makeEvents(N);
  const rawBytes = events.reduce((s, e) => s + e.raw.length + 1, 0) / N;
  const jsonBytes = events.reduce((s, e) => s + JSON.stringify(e).length, 0) / N;
  console.log(
    `  data: ${((performance.now() - t) / 1000).toFixed(1)} s to parse; log line ${rawBytes.toFixed(0)} B, MailEvent JSON ${jsonBytes.toFixed(0)} B per event`,
  );

  let services: { clickhouse?: { url: string }; kafka?: { brokers: string[] } } = {};
  try {
    services = JSON.parse(readFileSync('var/services/services.json', 'utf8'));
  } catch {}
  for (const backend of BACKENDS) {
    let ch: ClickHouse;
    let dir: string | undefined;
    if (backend === 'embedded') {
      dir = mkdtempSync(join(tmpdir(), 'mz-bench-store-'));
      ch = await openClickHouse(
        clickhouseSchema.parse({ backend: 'embedded', path: dir, database: 'mz_bench' }),
      );
    } else {
      if (!services.clickhouse) {
        console.log('  server: skipped (scripts/services.sh up clickhouse)');
        continue;
      }
      ch = await openClickHouse(
        clickhouseSchema.parse({
          backend: 'server',
          url: services.clickhouse.url,
          database: 'mz_bench',
          request_timeout_ms: 120_000,
        }),
      );
    }
    const scenarios: Array<[string, (db: string, run: number) => Promise<Timing>]> = [];
    if (ONLY.has('raw')) scenarios.push(['raw insert (ceiling)', (db) => raw(ch, db, events)]);
    if (ONLY.has('raw-optimize') && backend === 'embedded')
      scenarios.push(['raw, optimize_on_insert=1', (db) => raw(ch, db, events, true)]);
    if (ONLY.has('direct')) scenarios.push(['StoreWriter direct', (db) => direct(ch, db, events)]);
    if (ONLY.has('memory')) scenarios.push(['memory bus -> store', (db) => viaMemoryBus(ch, db, events)]);
    // The Kafka scenarios store from a process of their own, started on first use, kept warm.
    let proc: StoreProcess | undefined;
    const storeProcess = async (): Promise<StoreProcess> => {
      if (proc) return proc;
      proc = new StoreProcess();
      const clickhouse =
        backend === 'embedded'
          ? { backend: 'embedded', database: 'mz_bench' }
          : {
              backend: 'server',
              url: services.clickhouse!.url,
              database: 'mz_bench',
              request_timeout_ms: 120_000,
            };
      await proc.request({ op: 'open', clickhouse, brokers: services.kafka!.brokers });
      return proc;
    };
    const kafka = services.kafka;
    if (ONLY.has('consume') && kafka)
      scenarios.push([
        'kafka consume only',
        async (_db, r) => {
          const tag = `${Date.now().toString(36)}${r}`;
          const topics = await filledTopics(kafka.brokers, events);
          const p = await storeProcess();
          return (await p.request({ op: 'consume', topic: topics.events, groupId: `bench-${tag}`, n: N }))!;
        },
      ]);
    if (ONLY.has('kafka') && kafka)
      scenarios.push([
        'kafka -> store',
        async (db, r) => {
          const tag = `${Date.now().toString(36)}${r}`;
          const topics = await filledTopics(kafka.brokers, events);
          const p = await storeProcess();
          return (await p.request({
            op: 'kafka',
            db,
            topics,
            groupId: `bench-${tag}`,
            n: N,
            mergeSelectorBase: MERGE_BASE,
          }))!;
        },
      ]);
    for (const [name, fn] of scenarios) {
      const rates: number[] = [];
      const perCpu: number[] = [];
      const mainShare: number[] = [];
      const broker: number[] = [];
      const rewrites: number[] = [];
      const afterJoin: number[] = [];
      const joins: number[] = [];
      let bytes: { compressed: number; uncompressed: number } | undefined;
      for (let r = -WARMUP; r < RUNS; r++) {
        const db = `mz_bench_${r < 0 ? `w${-r}` : r}`;
        await fresh(ch, db, MERGE_BASE);
        if (r < 0) {
          await fn(db, r);
          await ch.client.command({ query: `DROP DATABASE IF EXISTS ${db}` });
          continue;
        }
        const t = await fn(db, r);
        perCpu.push(N / t.cpuSeconds);
        if (t.mainCpuSeconds !== undefined) mainShare.push(t.mainCpuSeconds / t.seconds);
        if (t.brokerCpuSeconds !== undefined) broker.push(t.brokerCpuSeconds);
        if (t.mergedRows !== undefined) rewrites.push(t.mergedRows / N);
        if (t.joinSeconds !== undefined && name.startsWith('kafka ->')) {
          joins.push(t.joinSeconds);
          afterJoin.push(N / (t.seconds - t.joinSeconds));
        }
        const stored = name.includes('consume only') ? N : (t.stored ?? (await count(ch, db)));
        if (stored < N) throw new Error(`${name}: ${stored} of ${N} stored`);
        rates.push(N / t.seconds);
        if (r === RUNS - 1 && name.startsWith('StoreWriter')) bytes = await bytesPerEvent(ch, db);
        await ch.client.command({ query: `DROP DATABASE IF EXISTS ${db}` });
      }
      const kafkaScenario = name.startsWith('kafka');
      console.log(
        `  ${backend.padEnd(8)} ${name.padEnd(22)} median ${Math.round(median(rates)).toLocaleString('en').padStart(9)} events/s` +
          `  (runs: ${rates.map((x) => Math.round(x).toLocaleString('en')).join(', ')})` +
          `  ${Math.round(median(perCpu)).toLocaleString('en')} events per CPU-second of the ${kafkaScenario ? 'store process' : 'process'}` +
          (kafkaScenario && mainShare.length
            ? `, main thread busy ${Math.round(100 * median(mainShare))} %` +
              (broker.length ? `, broker ${median(broker).toFixed(2)} CPU-s` : '') +
              (rewrites.length ? `, merges read ${median(rewrites).toFixed(2)} rows per event` : '')
            : '') +
          (afterJoin.length
            ? `\n  ${''.padEnd(8)} ${'  after the group join'.padEnd(22)} median ${Math.round(median(afterJoin)).toLocaleString('en').padStart(9)} events/s` +
              `  (runs: ${afterJoin.map((x) => Math.round(x).toLocaleString('en')).join(', ')}; joining took ${joins.map((x) => x.toFixed(2)).join(', ')} s)`
            : '') +
          (bytes
            ? `  stored ${bytes.compressed.toFixed(1)} B/event compressed, ${bytes.uncompressed.toFixed(0)} B uncompressed`
            : ''),
      );
    }
    await proc?.close();
    await ch.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
