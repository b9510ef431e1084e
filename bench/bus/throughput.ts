// Bus throughput: small JSON records (~400 bytes, MailEvent-like, keyed by client IP) produced
// through the bus Producer (Kafka: idempotent, acks=all, linger batching) and consumed back
// through a consumer group (commit after each batch). Side by side: raw kafkajs sendBatch with
// large batches (the ceiling of the client) and the in-process memory bus.
//
//   npx tsc -p tsconfig.json && node dist/bench/bus/throughput.js [--records 200000] [--runs 3]
//     [--senders 8] [--per-send 500] [--linger 5] [--compression none|gzip] [--only kafka|kafka-kafkajs|kafka-platformatic|raw|platformatic|memory]
// Brokers: var/services/services.json (scripts/services.sh up kafka).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  compatibilityPartitioner,
  MessagesStreamModes,
  Consumer as PlatformaticConsumer,
  Producer as PlatformaticProducer,
  ProduceAcks,
  stringSerializers,
} from '@platformatic/kafka';
import kafkajs from '../../src/bus/kafkajs.js';

const { Kafka, logLevel, Partitioners } = kafkajs;

import type { Bus, BusRecord, ProducerOptions } from '../../src/bus/bus.js';
import { KafkaBus } from '../../src/bus/kafka.js';
import { MemoryBus } from '../../src/bus/memory.js';
import { configSchema } from '../../src/config/config.js';
import { benchArgs } from '../lib/args.js';
import { rng } from '../lib/rng.js';

const args = benchArgs('bus bench', {
  usage: `usage: node dist/bench/bus/throughput.js [options]   (or: npm run bench -- bus [options])

Kafka produce and consume records/s through the bus (idempotent, acks=all, consumer group
committing after each batch), beside raw kafkajs and @platformatic/kafka and the memory bus.`,
  options: {
    records: { type: 'string', default: '200000', help: 'records per run (~400 B of JSON each)' },
    runs: { type: 'string', default: '3', help: 'runs per scenario, the median is reported' },
    senders: { type: 'string', default: '8', help: 'concurrent senders into the bus producer' },
    'per-send': { type: 'string', default: '500', help: 'records per send() call' },
    linger: { type: 'string', default: '5', help: 'producer linger, ms' },
    compression: { type: 'string', default: 'none', help: 'none or gzip' },
    only: {
      type: 'string',
      help: 'one scenario: kafka, kafka-kafkajs, kafka-platformatic, raw, platformatic or memory (default all)',
    },
  },
  notes: 'Brokers: var/services/services.json (scripts/services.sh up kafka).',
});
const N = Number(args.records);
const RUNS = Number(args.runs);
const SENDERS = Number(args.senders);
const PER_SEND = Number(args['per-send']);

/** Deterministic records: a seeded xorshift picks IPs, users and queue ids. */
function makeRecords(n: number, seed = 42): BusRecord[] {
  const rnd = rng(seed);
  const out: BusRecord[] = [];
  for (let i = 0; i < n; i++) {
    const ip = `198.51.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`;
    const user = `user${Math.floor(rnd() * 100000)}`;
    const qid = Math.floor(rnd() * 0xffffffff)
      .toString(16)
      .toUpperCase()
      .padStart(10, '0');
    const event = {
      id: `mx1:1234:${i * 180}`,
      ts: '2026-11-27T21:00:00.123+00:00',
      host: 'mx1.example.test',
      program: 'postfix/smtpd',
      pid: 4242,
      mta: 'postfix',
      kind: 'reject',
      reason: 'unknown_user',
      client_ip: ip,
      client_host: 'unknown',
      queue_id: qid,
      sender: 'bounce@spam.example.net',
      recipient: `${user}@example.test`,
      dsn: '5.1.1',
      reply_code: 550,
      raw: `NOQUEUE: reject: RCPT from unknown[${ip}]: 550 5.1.1 <${user}@example.test>: Recipient address rejected`,
    };
    out.push({ key: ip, value: JSON.stringify(event) });
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Records per wall second, and per second of this process' CPU (user + system): the client's own cost. */
interface Rate {
  wall: number;
  cpu: number;
}

function measure(): (n: number) => Rate {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return (n) => {
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    return { wall: n / wall, cpu: n / ((c.user + c.system) / 1e6) };
  };
}

function kafkaBrokers(): string[] {
  const file = new URL('../../../var/services/services.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { kafka?: { brokers: string[] } }).kafka?.brokers ?? [];
}

/** `senders` concurrent callers, each sending PER_SEND records at a time (like shippers of several files). */
async function produceThroughBus(
  bus: Bus,
  topic: string,
  records: BusRecord[],
  popts: ProducerOptions,
): Promise<Rate> {
  const p = await bus.producer(popts);
  let next = 0;
  const done = measure();
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      while (next < records.length) {
        const start = next;
        next += PER_SEND;
        await p.send(topic, records.slice(start, start + PER_SEND));
      }
    }),
  );
  const rate = done(records.length);
  await p.close();
  return rate;
}

async function consumeThroughBus(bus: Bus, topic: string, n: number): Promise<Rate> {
  const c = await bus.consumer({ groupId: `${topic}-reader`, topics: [topic], fromBeginning: true });
  let seen = 0;
  let done: ((n: number) => Rate) | undefined;
  let resolveDone!: () => void;
  const finished = new Promise<void>((r) => {
    resolveDone = r;
  });
  await c.run(async (messages) => {
    done ??= measure();
    for (const m of messages) if (m.value && m.value.length > 0) seen++;
    if (seen >= n) resolveDone();
  });
  await finished;
  const rate = done!(n);
  await c.close();
  return rate;
}

async function rawKafkajs(brokers: string[], topic: string, records: BusRecord[]): Promise<Rate> {
  const kafka = new Kafka({ clientId: 'bench-raw', brokers, logLevel: logLevel.WARN });
  const producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const messages = records.map((r) => ({ key: r.key, value: r.value as string }));
  const done = measure();
  for (let i = 0; i < messages.length; i += 2000) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 2000) });
  }
  const rate = done(records.length);
  await producer.disconnect();
  return rate;
}

/** Peer: @platformatic/kafka, idempotent, acks=all, Java-compatible partitioner, 2000 records per request. */
async function rawPlatformatic(brokers: string[], topic: string, records: BusRecord[]): Promise<Rate> {
  const producer = new PlatformaticProducer({
    clientId: 'bench-platformatic',
    bootstrapBrokers: brokers,
    serializers: stringSerializers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    partitioner: compatibilityPartitioner,
  });
  const messages = records.map((r) => ({ topic, key: r.key ?? undefined, value: r.value as string }));
  const done = measure();
  for (let i = 0; i < messages.length; i += 2000)
    await producer.send({ messages: messages.slice(i, i + 2000) });
  const rate = done(records.length);
  await producer.close();
  return rate;
}

/** Peer: @platformatic/kafka consumer stream from the earliest offset, autocommit (no per-batch commit). */
async function rawPlatformaticConsume(brokers: string[], topic: string, n: number): Promise<Rate> {
  const consumer = new PlatformaticConsumer({
    groupId: `${topic}-platformatic-reader`,
    clientId: 'bench-platformatic-consumer',
    bootstrapBrokers: brokers,
  });
  const stream = await consumer.consume({
    topics: [topic],
    mode: MessagesStreamModes.EARLIEST,
    autocommit: true,
  });
  let seen = 0;
  let done: ((n: number) => Rate) | undefined;
  for await (const m of stream) {
    done ??= measure();
    if (m.value && m.value.length > 0) seen++;
    if (seen >= n) break;
  }
  const rate = done!(n);
  await stream.close();
  await consumer.close(true);
  return rate;
}

async function main(): Promise<void> {
  const records = makeRecords(N);
  const avg = records.reduce((a, r) => a + Buffer.byteLength(r.value as string), 0) / records.length;
  console.log(
    `records=${N} avg_value_bytes=${avg.toFixed(0)} runs=${RUNS} senders=${SENDERS} per_send=${PER_SEND} linger_ms=${args.linger} compression=${args.compression}`,
  );
  const only = args.only;
  const results: Record<string, Rate[]> = {};
  const add = (name: string, v: Rate) => {
    results[name] ??= [];
    results[name].push(v);
    console.log(
      `  ${name}: ${Math.round(v.wall)} records/s (${Math.round(v.cpu)} per CPU-second of this process)`,
    );
  };
  const brokers = kafkaBrokers();
  for (let run = 0; run < RUNS; run++) {
    console.log(`run ${run + 1}`);
    const stamp = `${Date.now()}-${run}`;
    for (const client of ['kafkajs', 'platformatic'] as const) {
      if ((only && only !== 'kafka' && only !== `kafka-${client}`) || brokers.length === 0) continue;
      const cfg = configSchema.parse({
        bus: { kind: 'kafka', partitions: 4, kafka: { brokers, client_id: 'bench' } },
      }).bus;
      const bus = new KafkaBus(cfg, { producerClient: client });
      await bus.connect();
      const topic = `bench-bus-${client}-${stamp}`;
      await bus.ensureTopics([{ topic, partitions: 4 }]);
      add(
        `kafka bus producer on ${client} (acks=all, idempotent)`,
        await produceThroughBus(bus, topic, records, {
          lingerMs: Number(args.linger),
          compression: args.compression as ProducerOptions['compression'],
        }),
      );
      // The consumer is kafkajs either way: measure it once.
      if (client === 'kafkajs') {
        add('kafka bus consumer, kafkajs (group, commit per batch)', await consumeThroughBus(bus, topic, N));
      }
      await bus.close();
    }
    if ((!only || only === 'raw') && brokers.length > 0) {
      const cfg = configSchema.parse({ bus: { kind: 'kafka', kafka: { brokers } } }).bus;
      const admin = new KafkaBus(cfg);
      await admin.connect();
      const topic = `bench-raw-${stamp}`;
      await admin.ensureTopics([{ topic, partitions: 4 }]);
      await admin.close();
      add(
        'raw kafkajs send, 2000 per request (acks=all, idempotent)',
        await rawKafkajs(brokers, topic, records),
      );
    }
    if ((!only || only === 'platformatic') && brokers.length > 0) {
      const cfg = configSchema.parse({ bus: { kind: 'kafka', kafka: { brokers } } }).bus;
      const admin = new KafkaBus(cfg);
      await admin.connect();
      const topic = `bench-platformatic-${stamp}`;
      await admin.ensureTopics([{ topic, partitions: 4 }]);
      await admin.close();
      add(
        'peer: @platformatic/kafka send, 2000 per request (acks=all, idempotent)',
        await rawPlatformatic(brokers, topic, records),
      );
      add(
        'peer: @platformatic/kafka consumer stream (autocommit)',
        await rawPlatformaticConsume(brokers, topic, N),
      );
    }
    if (!only || only === 'memory') {
      const bus = new MemoryBus({ partitions: 4, maxRetainedRecords: N + 1 });
      const topic = `bench-mem-${stamp}`;
      await bus.ensureTopics([{ topic }]);
      add('memory bus producer', await produceThroughBus(bus, topic, records, {}));
      add('memory bus consumer', await consumeThroughBus(bus, topic, N));
      await bus.close();
    }
  }
  console.log(
    `medians of ${RUNS} runs (load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}):`,
  );
  for (const [name, xs] of Object.entries(results)) {
    const wall = Math.round(median(xs.map((x) => x.wall)));
    const cpu = Math.round(median(xs.map((x) => x.cpu)));
    console.log(`  ${name}: ${wall} records/s; ${cpu} records per CPU-second`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
