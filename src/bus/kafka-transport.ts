import type { CompressionTypes, Kafka as KafkaClient } from 'kafkajs';
import type { BusConfig } from '../config/config.js';
import type { ProducerOptions } from './bus.js';
import kafkajs from './kafkajs.js';

/** One record as the bus producer hands it to a Kafka client. */
export interface OutMessage {
  key: string | null;
  value: Buffer | string | null;
  headers?: Record<string, string>;
}

/**
 * The one thing the bus producer needs from a Kafka client: one idempotent produce request with
 * acks=all for a batch (per topic, in order), resolved when the brokers acknowledged all of it.
 */
export interface ProduceTransport {
  send(topics: ReadonlyMap<string, OutMessage[]>): Promise<void>;
  close(): Promise<void>;
}

export const PRODUCER_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type ProducerClient = (typeof PRODUCER_CLIENTS)[number];

export type Compression = NonNullable<ProducerOptions['compression']>;

/** What opening a producer transport needs, whichever client it is. */
export interface TransportSpec {
  client: ProducerClient;
  clientId: string;
  compression: Compression;
  /** gzip level 1 (fastest) to 9 (smallest); @platformatic/kafka only (kafkajs uses zlib's default, 6). */
  gzipLevel: number;
}

/** Opens the transport of `spec.client`; `kafka` is the kafkajs client (made on demand when absent). */
export async function openTransport(
  cfg: BusConfig,
  spec: TransportSpec,
  kafka: () => KafkaClient,
): Promise<ProduceTransport> {
  switch (spec.client) {
    case 'platformatic':
      return platformaticTransport(cfg, spec.clientId, spec.compression, spec.gzipLevel);
    default:
      return kafkajsTransport(kafka(), spec.compression);
  }
}

export async function kafkajsTransport(
  kafka: KafkaClient,
  compression: Compression,
): Promise<ProduceTransport> {
  const { CompressionCodecs, CompressionTypes, Partitioners } = kafkajs;
  const type: CompressionTypes = {
    none: CompressionTypes.None,
    gzip: CompressionTypes.GZIP,
    snappy: CompressionTypes.Snappy,
    lz4: CompressionTypes.LZ4,
    zstd: CompressionTypes.ZSTD,
  }[compression];
  if (type !== CompressionTypes.None) {
    try {
      CompressionCodecs[type]();
    } catch {
      throw new Error(`compression ${compression} has no codec registered with kafkajs; use gzip or none`);
    }
  }
  const kp = kafka.producer({
    idempotent: true,
    // Idempotence needs retries without limit (kafkajs warns otherwise); senders wait meanwhile.
    retry: { initialRetryTime: 300, maxRetryTime: 30_000, retries: Number.MAX_SAFE_INTEGER },
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: true,
  });
  await kp.connect();
  return {
    async send(topics) {
      const topicMessages = [...topics].map(([topic, messages]) => ({ topic, messages }));
      await kp.sendBatch({ acks: -1, compression: type, topicMessages });
    },
    close: () => kp.disconnect(),
  };
}

const toBuffer = (v: Buffer | string | null | undefined): Buffer | undefined =>
  v == null ? undefined : typeof v === 'string' ? Buffer.from(v, 'utf8') : v;

/**
 * @platformatic/kafka: about twice as fast as kafkajs per CPU-second (bench/bus). Its default
 * partitioner is NOT Kafka's (murmur2 >>> 0 instead of & 0x7fffffff): the Java-compatible one is
 * set, so keys land where kafkajs, the Java client and the memory bus put them.
 */
export async function platformaticTransport(
  cfg: BusConfig,
  clientId: string,
  compression: Compression,
  gzipLevel: number,
): Promise<ProduceTransport> {
  // Loaded on use: it is the optional producer and costs most of a second of start-up.
  const {
    compressionsAlgorithms,
    compatibilityPartitioner,
    Producer: PlatformaticProducer,
    ProduceAcks,
    stringSerializer,
  } = await import('@platformatic/kafka');
  if (compression === 'gzip') {
    // The library compresses with zlib's default level (6), the shipper's largest cost after
    // parsing; its codec table is public and per module instance (per producer thread).
    const { gzipSync } = await import('node:zlib');
    const codecs = compressionsAlgorithms as { gzip: { compressSync(data: unknown): Buffer } };
    codecs.gzip.compressSync = (data) =>
      gzipSync(Buffer.isBuffer(data) ? data : (data as { buffer: Buffer }).buffer, { level: gzipLevel });
  }
  const producer = new PlatformaticProducer<
    string | undefined,
    Buffer | string | null | undefined,
    string,
    string
  >({
    clientId,
    bootstrapBrokers: cfg.kafka.brokers,
    connectTimeout: cfg.kafka.connection_timeout_ms,
    requestTimeout: cfg.kafka.request_timeout_ms,
    timeout: cfg.kafka.request_timeout_ms,
    retries: true,
    retryDelay: (_client, _op, attempt) => Math.min(30_000, 300 * 2 ** Math.min(attempt, 7)),
    idempotent: true,
    acks: ProduceAcks.ALL,
    partitioner: compatibilityPartitioner,
    compression,
    autocreateTopics: true,
    serializers: {
      key: (k) => toBuffer(k),
      value: (v) => toBuffer(v),
      headerKey: stringSerializer,
      headerValue: stringSerializer,
    },
  });
  return {
    async send(topics) {
      const messages = [];
      for (const [topic, list] of topics) {
        for (const m of list) {
          // A tombstone's value stays null (the message schema wants the property); it is written as null.
          messages.push({ topic, key: m.key ?? undefined, value: m.value, headers: m.headers });
        }
      }
      await producer.send({ messages });
    },
    close: () => producer.close(),
  };
}
