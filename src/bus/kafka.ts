import { hostname } from 'node:os';
import { unzipSync } from 'node:zlib';
import type { Admin, Kafka as KafkaClient } from 'kafkajs';
import type { BusConfig } from '../config/config.js';
import { type Logger, logger } from '../log/logger.js';
import type { Bus, Consumer, ConsumerOptions, Producer, ProducerOptions, TopicSpec } from './bus.js';
import { KafkaConsumer } from './kafka-consumer.js';
import { kafkaLogCreator } from './kafka-log.js';
import { KafkaProducer } from './kafka-producer.js';
import { openTransport, PRODUCER_CLIENTS, type ProducerClient } from './kafka-transport.js';
import kafkajs from './kafkajs.js';
import { checkTopicName } from './record.js';

const { CompressionCodecs, CompressionTypes, ConfigResourceTypes, Kafka, logLevel } = kafkajs;

// kafkajs inflates the gzip record batches of a fetch one after the other, each with async zlib:
// a round trip to the libuv pool per batch, while the fetch waits. Inflating them in place halved
// the decode of a 4 MB fetch (about 430 -> 240 ms, a store consuming the shipper's gzip topic);
// the CPU is the same, the waits are gone. Compression stays kafkajs' own. kafkajs keeps its
// codecs per process: this applies to every kafkajs client here, which all want it.
{
  const own = CompressionCodecs[CompressionTypes.GZIP]();
  CompressionCodecs[CompressionTypes.GZIP] = () => ({
    compress: own.compress,
    decompress: async (buffer: Buffer) => unzipSync(buffer, { chunkSize: inflatedSize(buffer) }),
  });
}

/**
 * The output chunk for inflating `gz` in one piece: zlib's default of 16 KB made a megabyte batch
 * 64 chunks and then a copy of them all into one buffer (about a twentieth of the store's event
 * loop, by its profile). A gzip member ends with its inflated size mod 2^32 (ISIZE); the chunk is a little
 * larger than that, so the output ends before the chunk is full (a full chunk makes zlib allocate
 * another). A size that lies (several members, not gzip) only means more chunks, as before;
 * capped so that a bogus size cannot allocate much.
 */
export function inflatedSize(gz: Uint8Array): number {
  if (gz.length < 18) return 16 * 1024;
  const isize =
    (gz[gz.length - 4]! |
      (gz[gz.length - 3]! << 8) |
      (gz[gz.length - 2]! << 16) |
      (gz[gz.length - 1]! << 24)) >>>
    0;
  return Math.min(Math.max(isize + 64, 1024), 64 << 20);
}

export interface KafkaBusOptions {
  /**
   * Client that produces: kafkajs (the default) or @platformatic/kafka (about twice the records
   * per CPU-second, see bench/bus). Consumers and admin always use kafkajs.
   */
  producerClient?: ProducerClient;
  /** Retries of admin and consumer requests (backoff 300 ms doubling to 30 s); producers retry without limit. */
  retries?: number;
  /** Consumer group session timeout (a member silent this long is dropped). */
  sessionTimeoutMs?: number;
  /** Consumer heartbeat interval. */
  heartbeatIntervalMs?: number;
  /**
   * Most bytes one fetch brings per partition, and in all. Larger fetches mean fewer round trips
   * while catching up a backlog (the store and the detector process a fetch before the next).
   */
  fetchMaxBytesPerPartition?: number;
  fetchMaxBytes?: number;
  /** Longest a fetch waits for new records (also how soon an idle member notices a rebalance). */
  maxWaitTimeMs?: number;
  /** Producer defaults, overridable per producer. */
  lingerMs?: number;
  maxBatchBytes?: number;
  maxBufferedBytes?: number;
  maxRecordBytes?: number;
  closeTimeoutMs?: number;
}

const DEFAULTS = {
  producerClient: 'kafkajs',
  retries: 8,
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3_000,
  maxWaitTimeMs: 1_000,
  fetchMaxBytesPerPartition: 4 * 1024 * 1024,
  fetchMaxBytes: 32 * 1024 * 1024,
  lingerMs: 5,
  // Below the broker's default message.max.bytes (1 MiB) with room for record overhead.
  maxBatchBytes: 800_000,
  maxBufferedBytes: 32 * 1024 * 1024,
  maxRecordBytes: 1_000_000,
  closeTimeoutMs: 30_000,
} satisfies Required<KafkaBusOptions> as Required<KafkaBusOptions>;

/** A kafkajs client for `cfg` whose log lines go to `log`. */
export function kafkajsClient(cfg: BusConfig, clientId: string, retries: number, log: Logger): KafkaClient {
  const k = cfg.kafka;
  return new Kafka({
    clientId,
    brokers: k.brokers,
    connectionTimeout: k.connection_timeout_ms,
    requestTimeout: k.request_timeout_ms,
    retry: { initialRetryTime: 300, maxRetryTime: 30_000, retries },
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(log),
  });
}

/** Connects to the brokers of `cfg` (fails with the brokers named when none answers). */
export async function openKafkaBus(cfg: BusConfig, opts: KafkaBusOptions = {}): Promise<KafkaBus> {
  const bus = new KafkaBus(cfg, opts);
  await bus.connect();
  return bus;
}

export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  private readonly kafka: KafkaClient;
  private readonly clientId: string;
  private readonly admin: Admin;
  private readonly opts: Required<KafkaBusOptions>;
  private readonly log: Logger;
  private readonly compacted = new Set<string>();
  private readonly producers = new Set<KafkaProducer>();
  private readonly consumers = new Set<KafkaConsumer>();
  private closed = false;

  constructor(
    private readonly cfg: BusConfig,
    opts: KafkaBusOptions = {},
  ) {
    this.opts = {
      ...DEFAULTS,
      ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    };
    if (!PRODUCER_CLIENTS.includes(this.opts.producerClient)) {
      throw new TypeError(
        `producerClient must be one of ${PRODUCER_CLIENTS.join(', ')}, got ${String(this.opts.producerClient)}`,
      );
    }
    this.log = logger('bus');
    const k = cfg.kafka;
    this.clientId = `${k.client_id}-${hostname()}-${process.pid}`;
    this.kafka = kafkajsClient(cfg, this.clientId, this.opts.retries, this.log);
    this.admin = this.kafka.admin();
  }

  async connect(): Promise<void> {
    try {
      await this.admin.connect();
    } catch (err) {
      throw new Error(
        `cannot reach Kafka at ${this.cfg.kafka.brokers.join(', ')} (bus.kafka.brokers): ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    this.assertOpen();
    if (specs.length === 0) return;
    for (const s of specs) checkTopicName(s.topic);
    const partitionsOf = (s: TopicSpec) => s.partitions ?? this.cfg.partitions;
    // Only the missing ones: kafkajs logs "Topic creation errors" at error level for a topic that
    // exists (every start after the first), though it goes on.
    const existing = new Set(await this.admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length > 0)
      await this.admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({
          topic: s.topic,
          numPartitions: partitionsOf(s),
          configEntries: [
            ...(s.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : []),
            ...(s.retentionMs !== undefined ? [{ name: 'retention.ms', value: String(s.retentionMs) }] : []),
          ],
        })),
      });
    for (const s of specs) if (s.compacted) this.compacted.add(s.topic);
    // Topics that existed already keep their settings: say so when they differ from what is asked.
    const names = specs.map((s) => s.topic);
    const { topics } = await this.admin.fetchTopicMetadata({ topics: names });
    const described = await this.admin.describeConfigs({
      includeSynonyms: false,
      resources: names.map((name) => ({
        type: ConfigResourceTypes.TOPIC,
        name,
        configNames: ['cleanup.policy'],
      })),
    });
    for (const s of specs) {
      const partitions = topics.find((t) => t.name === s.topic)?.partitions.length;
      const policy = described.resources
        .find((r) => r.resourceName === s.topic)
        ?.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue;
      const isCompacted = policy?.split(',').includes('compact') ?? false;
      if (partitions !== partitionsOf(s) || isCompacted !== Boolean(s.compacted)) {
        this.log.warn(
          {
            topic: s.topic,
            partitions,
            cleanup_policy: policy,
            wanted: { partitions: partitionsOf(s), compacted: Boolean(s.compacted) },
          },
          'topic exists with other settings; keeping them (change them with kafka-configs / kafka-topics)',
        );
      }
    }
  }

  async producer(popts: ProducerOptions = {}): Promise<Producer> {
    this.assertOpen();
    const compression = popts.compression ?? 'none';
    // The consumers are kafkajs, which decodes only gzip without codec packages: refuse what
    // this bus could write but not read back.
    if (compression !== 'none' && compression !== 'gzip') {
      throw new TypeError(
        `compression ${JSON.stringify(compression)} is not supported by this bus (its kafkajs consumers could not decode it): use none or gzip`,
      );
    }
    const lingerMs = popts.lingerMs ?? this.opts.lingerMs;
    const maxBufferedBytes = popts.maxBufferedBytes ?? this.opts.maxBufferedBytes;
    const spec = {
      client: this.opts.producerClient,
      clientId: this.clientId,
      compression,
      gzipLevel: popts.gzipLevel ?? 6,
    };
    const transport = popts.thread
      ? await (await import('./kafka-thread.js')).threadTransport(this.cfg, spec)
      : await openTransport(this.cfg, spec, () => this.kafka);
    const p: KafkaProducer = new KafkaProducer(
      transport,
      {
        lingerMs,
        maxBatchBytes: popts.maxBatchBytes ?? this.opts.maxBatchBytes,
        maxBufferedBytes,
        maxRecordBytes: this.opts.maxRecordBytes,
        closeTimeoutMs: this.opts.closeTimeoutMs,
      },
      (topic) => this.compacted.has(topic),
      this.log,
      () => this.producers.delete(p),
    );
    this.producers.add(p);
    return p;
  }

  async consumer(copts: ConsumerOptions): Promise<Consumer> {
    this.assertOpen();
    if (typeof copts.groupId !== 'string' || copts.groupId === '')
      throw new TypeError('consumer: groupId is empty');
    if (!Array.isArray(copts.topics) || copts.topics.length === 0) throw new TypeError('consumer: no topics');
    for (const t of copts.topics) checkTopicName(t);
    const concurrency = copts.partitionsConsumedConcurrently ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(
        `consumer: partitionsConsumedConcurrently must be an integer >= 1, got ${concurrency}`,
      );
    }
    const kc = this.kafka.consumer({
      groupId: copts.groupId,
      sessionTimeout: this.opts.sessionTimeoutMs,
      heartbeatInterval: this.opts.heartbeatIntervalMs,
      maxWaitTimeInMs: this.opts.maxWaitTimeMs,
      maxBytesPerPartition: copts.fetchMaxBytesPerPartition ?? this.opts.fetchMaxBytesPerPartition,
      maxBytes: this.opts.fetchMaxBytes,
      allowAutoTopicCreation: true,
    });
    const c: KafkaConsumer = new KafkaConsumer(kc, copts, concurrency, this.log, () =>
      this.consumers.delete(c),
    );
    this.consumers.add(c);
    return c;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.consumers].map((c) => c.close()));
    await Promise.allSettled([...this.producers].map((p) => p.close()));
    await this.admin.disconnect();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('kafka bus closed');
  }
}
