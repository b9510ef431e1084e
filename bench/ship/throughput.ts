// Shipper throughput: a file of seeded Postfix lines -> tail -> parse -> MailEvent JSON ->
// acknowledged Kafka writes (idempotent, acks=all), measured as the catch-up of a file that is
// already written (start_at: beginning): the sustained maximum of one shipper.
// Side by side:
//   ship -> kafka (gzip|none)   the whole shipper, as `mizugiwa ship` runs it (by default its
//                               producer client in a worker thread, @platformatic/kafka, gzip 1)
//   ship -> null producer       the same without a bus (acked at once): the cost of reading,
//                               parsing and encoding alone
//   bus producer only           the pre-encoded events through the same Kafka producer, same
//                               batch size, one batch at a time: the ceiling the bus sets
//   kcat -P (librdkafka)        peer: Debian's kcat producing the raw lines (no parsing, no key,
//                               acks=all, idempotent), a C client for scale (`apt-get install kcat`)
//
//   npx tsc -p tsconfig.json && node dist/bench/ship/throughput.js [--lines 300000] [--runs 3]
//     [--only ship-kafka,ship-null,producer,kcat] [--compression gzip|none] [--gzip-level 1]
//     [--requests 4] [--in-flight-events 20000] [--batch 2000] [--producer platformatic|kafkajs]
//     [--thread on|off]
// Brokers: var/services/services.json (scripts/services.sh up kafka). Every run is a child
// process of its own, so CPU time and peak RSS (getrusage maxrss) are those of that path alone.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Bus, BusRecord, Producer } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/create.js';
import { type Config, configSchema } from '../../src/config/config.js';
import { LineParser } from '../../src/parse/parser.js';
import { shipProducer, shipperFromConfig } from '../../src/ship/start.js';
import { benchArgs } from '../lib/args.js';
import { postfixLines } from './lines.js';

const args = benchArgs('ship bench', {
  usage: `usage: node dist/bench/ship/throughput.js [options]   (or: npm run bench -- ship [options])

Shipper throughput: a file of seeded Postfix lines -> tail -> parse -> acknowledged Kafka writes
(lines/s, CPU-s per 100k lines, peak RSS), beside the shipper without a bus, the bus producer
alone and kcat (librdkafka) producing the raw lines. Every run is a child process of its own.`,
  options: {
    lines: { type: 'string', default: '300000', help: 'lines of the seeded file' },
    runs: { type: 'string', default: '3', help: 'runs per scenario, the median is reported' },
    only: {
      type: 'string',
      default: 'ship-kafka,ship-null,producer,kcat',
      help: 'scenarios, comma-separated',
    },
    compression: { type: 'string', default: 'gzip', help: 'gzip or none' },
    'gzip-level': { type: 'string', default: '1', help: 'gzip level, 1-9' },
    requests: {
      type: 'string',
      default: '4',
      help: 'produce requests in flight (ship.max_in_flight_requests)',
    },
    'in-flight-events': {
      type: 'string',
      default: String(20_000),
      help: 'events sent and not yet acknowledged at most (ship.max_in_flight_events)',
    },
    batch: { type: 'string', default: '2000', help: 'events per batch (ship.batch_max_events)' },
    producer: { type: 'string', default: 'platformatic', help: 'producer client: platformatic or kafkajs' },
    thread: { type: 'string', default: 'on', help: 'producer client in a worker thread: on or off' },
    child: { type: 'string', help: 'internal: run one scenario in this process (a child of the bench)' },
    file: { type: 'string', help: "internal: the child's input file" },
  },
  notes: 'Brokers: var/services/services.json (scripts/services.sh up kafka).',
});
const N = Number(args.lines);
const RUNS = Number(args.runs);
const ONLY = new Set(args.only!.split(','));
const COMPRESSION = args.compression as 'gzip' | 'none';
const quiet = pino({ level: 'silent' });

const services = JSON.parse(
  readFileSync(join(process.cwd(), 'var', 'services', 'services.json'), 'utf8'),
) as {
  kafka?: { brokers: string[] };
};
const brokers = services.kafka?.brokers;
if (!brokers) throw new Error('no Kafka in var/services/services.json: run scripts/services.sh up kafka');

interface Result {
  seconds: number;
  cpuSeconds: number;
  peakRssMb: number;
}

function config(dir: string, topic: string, kind: 'kafka'): Config {
  return configSchema.parse({
    host: 'bench',
    data_dir: join(dir, 'var'),
    log: { level: 'silent' },
    bus: { kind, kafka: { brokers, producer_client: args.producer }, topics: { events: topic } },
    ship: {
      files: [join(dir, 'maillog')],
      start_at: 'beginning',
      compression: COMPRESSION,
      gzip_level: Number(args['gzip-level']),
      producer_thread: args.thread === 'on',
      max_in_flight_requests: Number(args.requests),
      max_in_flight_events: Number(args['in-flight-events']),
      batch_max_events: Number(args.batch),
    },
  });
}

/** Times `fn`; CPU is user+system of this process, peak RSS its getrusage maxrss. */
async function measure(fn: () => Promise<void>): Promise<Result> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

/** Acknowledges at once: the shipper without any bus cost. */
const nullProducer: Producer = {
  async send() {},
  async close() {},
};

async function shipRun(dir: string, kind: 'kafka' | 'null'): Promise<Result> {
  const topic = `bench.ship.${randomUUID().slice(0, 8)}`;
  const cfg = config(dir, topic, 'kafka');
  rmSync(join(dir, 'var'), { recursive: true, force: true });
  let bus: Bus | null = null;
  let producer = nullProducer;
  if (kind === 'kafka') {
    bus = await createBus(cfg.bus);
    await bus.ensureTopics([{ topic, partitions: 4 }]);
    producer = await shipProducer(bus, cfg);
  }
  const shipper = shipperFromConfig(cfg, producer, quiet);
  const r = await measure(async () => {
    await shipper.start();
    while (shipper.stats().eventsAcked < N) await new Promise((res) => setTimeout(res, 5));
  });
  await shipper.stop();
  await producer.close();
  await bus?.close();
  return r;
}

async function producerRun(records: BusRecord[], batch: number): Promise<Result> {
  const topic = `bench.ship.${randomUUID().slice(0, 8)}`;
  const cfg = config(tmpdir(), topic, 'kafka');
  const bus = await createBus(cfg.bus);
  await bus.ensureTopics([{ topic, partitions: 4 }]);
  const producer: Producer = await shipProducer(bus, cfg);
  const r = await measure(async () => {
    for (let i = 0; i < records.length; i += batch) await producer.send(topic, records.slice(i, i + batch));
  });
  await producer.close();
  await bus.close();
  return r;
}

function kcatRun(file: string): Result | null {
  const topic = `bench.ship.${randomUUID().slice(0, 8)}`;
  const out = spawnSync(
    '/usr/bin/time',
    [
      '-f',
      '%e %U %S %M',
      'kcat',
      '-P',
      '-b',
      brokers!.join(','),
      '-t',
      topic,
      '-l',
      '-X',
      'acks=all',
      '-X',
      'enable.idempotence=true',
      '-X',
      'linger.ms=5',
      '-z',
      COMPRESSION === 'none' ? 'none' : 'gzip',
      file,
    ],
    { encoding: 'utf8' },
  );
  if (out.error || out.status !== 0) return null;
  const last = out.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  const [e, u, s, maxKb] = last as [number, number, number, number];
  return { seconds: e, cpuSeconds: u + s, peakRssMb: maxKb / 1024 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const BATCH = Number(args.batch);

/** One measured run in this (child) process. */
async function child(mode: string, file: string): Promise<Result | null> {
  const dir = join(file, '..');
  switch (mode) {
    case 'ship-kafka':
      return shipRun(dir, 'kafka');
    case 'ship-null':
      return shipRun(dir, 'null');
    case 'producer': {
      const parser = new LineParser({ host: 'bench' });
      const records: BusRecord[] = readFileSync(file, 'utf8')
        .trimEnd()
        .split('\n')
        .map((l, i) => {
          const ev = parser.parse(l);
          ev.id = `bench:0123456789abcdef:${i}`;
          return { key: ev.client_ip ?? 'bench', value: JSON.stringify(ev) };
        });
      return producerRun(records, BATCH);
    }
    case 'kcat':
      return kcatRun(file);
  }
  throw new Error(`unknown mode ${mode}`);
}

const NAMES: Record<string, string> = {
  'ship-kafka': `ship -> kafka (${args.producer}${args.thread === 'on' ? ' in a thread' : ''}, ${COMPRESSION}${COMPRESSION === 'gzip' ? ` ${args['gzip-level']}` : ''}, ${args.requests} sends in flight, ${BATCH}/batch)`,
  'ship-null': 'ship -> null producer (no bus)',
  producer: `bus producer only (${args.producer}${args.thread === 'on' ? ' in a thread' : ''}, ${COMPRESSION}, ${BATCH}/send, pre-encoded)`,
  kcat: `kcat -P, raw lines (${COMPRESSION}, librdkafka)`,
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mizugiwa-bench-ship-'));
  const file = join(dir, 'maillog');
  const text = postfixLines(0, N);
  writeFileSync(file, text);
  const rows = new Map<string, Result[]>();
  for (let run = 0; run < RUNS; run++) {
    for (const mode of Object.keys(NAMES)) {
      if (!ONLY.has(mode)) continue;
      const out = spawnSync(
        process.execPath,
        [
          process.argv[1]!,
          '--child',
          mode,
          '--file',
          file,
          '--lines',
          String(N),
          '--compression',
          COMPRESSION,
          '--requests',
          args.requests!,
          '--in-flight-events',
          args['in-flight-events']!,
          '--batch',
          args.batch!,
          '--producer',
          args.producer!,
          '--thread',
          args.thread!,
          '--gzip-level',
          args['gzip-level']!,
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const line = out.stdout.trim().split('\n').pop();
      if (out.status !== 0 || !line || line === 'null') {
        console.error(`${mode}: run failed or not available (exit ${out.status})`);
        continue;
      }
      rows.set(mode, [...(rows.get(mode) ?? []), JSON.parse(line) as Result]);
    }
  }
  rmSync(dir, { recursive: true, force: true });

  const bytes = Buffer.byteLength(text);
  console.log(
    `\n${N} lines (${(bytes / N).toFixed(0)} bytes/line avg), ${RUNS} runs, medians; ` +
      `${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}; node ${process.version}; ` +
      `kcat ${safe(() => execFileSync('kcat', ['-V'], { encoding: 'utf8' }).split('\n')[0]!.trim())}\n`,
  );
  console.log('| path | lines/s | CPU s per 100k lines | peak RSS MB |');
  console.log('|---|---:|---:|---:|');
  for (const [mode, rs] of rows) {
    const name = NAMES[mode]!;
    const lps = median(rs.map((r) => N / r.seconds));
    const cpu = median(rs.map((r) => (r.cpuSeconds / N) * 100_000));
    const rss = median(rs.map((r) => r.peakRssMb));
    console.log(
      `| ${name} | ${Math.round(lps).toLocaleString('en')} | ${cpu.toFixed(2)} | ${rss.toFixed(0)} |`,
    );
  }
}

function safe(f: () => string): string {
  try {
    return f();
  } catch {
    return 'not installed';
  }
}

if (args.child) {
  const r = await child(args.child, args.file!);
  process.stdout.write(`${JSON.stringify(r)}\n`);
} else {
  await main();
}
process.exit(0);
