import { hostname } from 'node:os';
import { z } from 'zod';

// The one place every knob lives: validation, default and description (used by
// `mizugiwa config defaults` and the README). Every object is strict, so a typo'd key is an
// error that names it instead of a setting silently ignored.
// Component sections (ship, detect, store, respond, api) are defined beside their code and
// composed here.

export const logSchema = z
  .object({
    level: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info')
      .describe('minimum level written to the log (pino levels)'),
    pretty: z.boolean().default(false).describe('human-readable log lines instead of JSON (needs a TTY)'),
  })
  .strict();

export const metricsSchema = z
  .object({
    listen: z
      .string()
      .nullable()
      .default(null)
      .describe(
        'HOST:PORT for a Prometheus /metrics endpoint; null disables it (the api serves /metrics too)',
      ),
  })
  .strict();

export const kafkaSchema = z
  .object({
    brokers: z
      .array(z.string().min(1))
      .min(1)
      .default(['127.0.0.1:9092'])
      .describe('bootstrap brokers, HOST:PORT'),
    client_id: z.string().default('mizugiwa').describe('Kafka client id (per process a suffix is added)'),
    connection_timeout_ms: z.number().int().positive().default(3000).describe('TCP connect timeout'),
    request_timeout_ms: z.number().int().positive().default(30000).describe('request timeout'),
    producer_client: z
      .enum(['kafkajs', 'platformatic'])
      .default('platformatic')
      .describe(
        'client that produces: @platformatic/kafka (about twice the records per CPU-second of kafkajs, see bench/bus) or kafkajs; consumers and admin always use kafkajs',
      ),
    linger_ms: z.number().int().min(0).default(5).describe('how long a producer waits to fill a batch'),
    session_timeout_ms: z
      .number()
      .int()
      .positive()
      .default(30000)
      .describe(
        'consumer group session timeout: a member silent this long is dropped and its partitions move',
      ),
    heartbeat_interval_ms: z.number().int().positive().default(3000).describe('consumer heartbeat interval'),
    fetch_max_bytes_per_partition: z
      .number()
      .int()
      .min(1024)
      .default(4 * 1024 * 1024)
      .describe(
        'consumers: most bytes one fetch brings per partition (larger: fewer round trips while catching up a backlog, more memory)',
      ),
    fetch_max_bytes: z
      .number()
      .int()
      .min(1024)
      .default(32 * 1024 * 1024)
      .describe('consumers: most bytes one fetch brings in all'),
  })
  .strict();

export const memoryBusSchema = z
  .object({
    max_retained_records: z
      .number()
      .int()
      .positive()
      .default(100000)
      .describe(
        'records a topic holds that some consumer group has not committed; above it producers wait (backpressure)',
      ),
    max_batch_records: z
      .number()
      .int()
      .positive()
      .default(500)
      .describe('most records handed to a consumer at once'),
  })
  .strict();

export const topicsSchema = z
  .object({
    events: z.string().default('mail.events').describe('parsed MailEvents, keyed by client IP'),
    detections: z.string().default('mail.detections').describe('detections (what was seen)'),
    decisions: z.string().default('mail.decisions').describe('decisions (compacted, keyed by target)'),
    dead_letter: z.string().default('mail.events.dlq').describe('messages that are not valid MailEvents'),
  })
  .strict();

export const busSchema = z
  .object({
    kind: z
      .enum(['memory', 'kafka'])
      .default('memory')
      .describe('memory: in-process bus (single host, `mizugiwa run`); kafka: a Kafka cluster (fleet)'),
    partitions: z.number().int().min(1).default(4).describe('partitions of the topics mizugiwa creates'),
    kafka: kafkaSchema.prefault({}),
    memory: memoryBusSchema.prefault({}),
    topics: topicsSchema.prefault({}),
  })
  .strict();

export const clickhouseSchema = z
  .object({
    backend: z
      .enum(['embedded', 'server'])
      .default('embedded')
      .describe(
        'embedded: ClickHouse in-process through chdb (a data directory); server: a ClickHouse server by URL',
      ),
    path: z.string().default('./var/chdb').describe('embedded: data directory (one process at a time)'),
    url: z.string().url().default('http://127.0.0.1:8123').describe('server: HTTP URL'),
    username: z.string().default('default').describe('server: user'),
    password: z.string().default('').describe('server: password'),
    database: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default('mizugiwa')
      .describe('database for mizugiwa tables'),
    request_timeout_ms: z.number().int().positive().default(30000).describe('server: request timeout'),
  })
  .strict();

export const coreShape = {
  host: z
    .string()
    .min(1)
    .default(hostname())
    .describe('name of this host as it appears in events (default: hostname)'),
  data_dir: z
    .string()
    .default('./var')
    .describe('directory for state (checkpoints, agent state, embedded data)'),
  log: logSchema.prefault({}),
  metrics: metricsSchema.prefault({}),
  bus: busSchema.prefault({}),
  clickhouse: clickhouseSchema.prefault({}),
};
