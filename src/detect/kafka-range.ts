import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Admin, Kafka as KafkaClient } from 'kafkajs';
import kafkajs from '../bus/kafkajs.js';
import type { BusConfig } from '../config/config.js';
import { logger } from '../log/logger.js';

const { Kafka, logLevel } = kafkajs;

// Reading a stretch of a Kafka topic outside the consumer group: what the detect service needs to
// rebuild state for a partition it has just been given (from "an hour before its committed
// offset" up to it) and to know where the end of the decisions topic is. The Bus interface keeps
// to group consumption; this is Kafka-only and used only by the detect service.

export interface RangeMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
}

export class KafkaRange {
  private readonly kafka: KafkaClient;
  private readonly admin: Admin;

  constructor(cfg: BusConfig) {
    this.kafka = new Kafka({
      clientId: `${cfg.kafka.client_id}-detect-range-${hostname()}-${process.pid}`,
      brokers: cfg.kafka.brokers,
      connectionTimeout: cfg.kafka.connection_timeout_ms,
      requestTimeout: cfg.kafka.request_timeout_ms,
      logLevel: logLevel.ERROR,
    });
    this.admin = this.kafka.admin();
  }

  connect(): Promise<void> {
    return this.admin.connect();
  }

  close(): Promise<void> {
    return this.admin.disconnect();
  }

  /** High watermark (next offset to be written) per partition. */
  async endOffsets(topic: string): Promise<Map<number, bigint>> {
    const offs = await retrying(() => this.admin.fetchTopicOffsets(topic));
    return new Map(offs.map((o) => [o.partition, BigInt(o.high)]));
  }

  /** Offsets committed by a consumer group per partition (-1: none yet). */
  async committed(groupId: string, topic: string): Promise<Map<number, bigint>> {
    const res = await retrying(() => this.admin.fetchOffsets({ groupId, topics: [topic] }));
    const parts = res.find((t) => t.topic === topic)?.partitions ?? [];
    return new Map(parts.map((p) => [p.partition, BigInt(p.offset)]));
  }

  /** Per partition, the first offset whose timestamp is at or after tsMs (the end when none is). */
  async offsetsAt(topic: string, tsMs: number): Promise<Map<number, bigint>> {
    const offs = await retrying(() => this.admin.fetchTopicOffsetsByTimestamp(topic, tsMs));
    const ends = await this.endOffsets(topic);
    return new Map(
      offs.map((o) => {
        const off = BigInt(o.offset);
        return [o.partition, off < 0n ? (ends.get(o.partition) ?? 0n) : off];
      }),
    );
  }

  /**
   * Reads [from, to) of each listed partition, calling onBatch with the messages in offset order.
   * A throwaway consumer group (never committed) does the reading.
   */
  async read(
    topic: string,
    ranges: Map<number, { from: bigint; to: bigint }>,
    onBatch: (msgs: RangeMessage[]) => Promise<void> | void,
    timeoutMs = 120_000,
  ): Promise<void> {
    const open = new Map([...ranges].filter(([, r]) => r.from < r.to));
    if (open.size === 0) return;
    const consumer = this.kafka.consumer({
      groupId: `mizugiwa-detect-range-${randomUUID()}`,
      maxWaitTimeInMs: 250,
      sessionTimeout: 30_000,
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      let finish!: () => void;
      let fail!: (e: Error) => void;
      const finished = new Promise<void>((res, rej) => {
        finish = res;
        fail = rej;
      });
      const timer = setTimeout(
        () => fail(new Error(`reading ${topic} for a state rebuild took longer than ${timeoutMs} ms`)),
        timeoutMs,
      );
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch, heartbeat }) => {
          const r = open.get(batch.partition);
          if (r === undefined) return;
          const msgs: RangeMessage[] = [];
          for (const m of batch.messages) {
            const off = BigInt(m.offset);
            if (off < r.from || off >= r.to) continue;
            msgs.push({
              partition: batch.partition,
              offset: m.offset,
              key: m.key?.toString('utf8') ?? null,
              value: m.value,
            });
          }
          if (msgs.length > 0) await onBatch(msgs);
          await heartbeat();
          const last = BigInt(batch.lastOffset());
          if (last + 1n >= r.to) {
            open.delete(batch.partition);
            if (open.size === 0) finish();
          }
        },
      });
      for (const [partition, r] of open) consumer.seek({ topic, partition, offset: r.from.toString() });
      try {
        await finished;
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await consumer
        .disconnect()
        .catch((err: Error) => logger('detect').warn({ err }, 'range consumer disconnect'));
    }
  }
}

/**
 * Retries an admin request on retriable broker errors (a topic created a moment ago has no leader
 * yet: NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE), for up to ~30 s.
 */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const retriable = (err as { retriable?: boolean }).retriable === true;
      if (!retriable || attempt >= 30) throw err;
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * attempt)));
    }
  }
}
