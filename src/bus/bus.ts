// The message bus: Kafka for a fleet, an in-process implementation for one host.
// Both keep the same semantics as far as one process needs: topics with partitions chosen by
// key hash (same key, same partition, in order), consumer groups that share partitions, and
// offsets committed only after the handler for a batch has resolved (at-least-once).

export interface BusRecord {
  /** Partition key; null spreads records round-robin. */
  key: string | null;
  /**
   * null is a tombstone: on a compacted topic it deletes the key (it needs a key). A Buffer is
   * taken as it is, not copied: it must not be changed after `send`.
   */
  value: Buffer | string | null;
  headers?: Record<string, string>;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface BusMessage {
  topic: string;
  partition: number;
  /** Decimal string, as Kafka gives it. */
  offset: string;
  key: string | null;
  /** null is a tombstone (compacted topics). */
  value: Buffer | null;
  /** Read-only: a message without headers may share one frozen empty object with others. */
  headers: Record<string, string>;
  /** Producer timestamp, ms since epoch. */
  timestamp: number;
}

export interface TopicSpec {
  topic: string;
  partitions?: number;
  /** Keep only the newest record per key (Kafka cleanup.policy=compact). */
  compacted?: boolean;
  retentionMs?: number;
}

export interface ProducerOptions {
  /** How long to wait to fill a batch. */
  lingerMs?: number;
  /** Kafka: none or gzip; the others are refused (this bus' kafkajs consumers could not read them). */
  compression?: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
  /** Kafka: a batch is sent once it holds this many bytes of keys, values and headers, even before lingerMs. */
  maxBatchBytes?: number;
  /** Kafka: bytes accepted but not yet acknowledged; above it `send` waits (backpressure while Kafka is slow or away). */
  maxBufferedBytes?: number;
  /** Kafka: gzip level, 1 (fastest) to 9 (smallest); honoured by the @platformatic/kafka client. */
  gzipLevel?: number;
  /**
   * Kafka: run the producer client in a worker thread (default: the bus' setting). The event loop
   * then only packs each batch into one buffer; encoding, compression and the protocol run on
   * another core. For the heavy producer of a process (the shipper).
   */
  thread?: boolean;
}

export interface Producer {
  /** Resolves once the bus has acknowledged every record (Kafka: acks=all, idempotent). */
  send(topic: string, records: BusRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface ConsumerOptions {
  groupId: string;
  topics: string[];
  /** Where a group with no committed offset starts: the beginning (true) or the end (false, default). */
  fromBeginning?: boolean;
  /**
   * How many partitions this member hands to the handler at the same time (default 1: the handler
   * is never called concurrently, as with kafkajs' default).
   */
  partitionsConsumedConcurrently?: number;
  /**
   * Kafka: most bytes one fetch brings per partition, for this consumer (default: the bus'
   * `fetch_max_bytes_per_partition`). The memory bus ignores it.
   */
  fetchMaxBytesPerPartition?: number;
  /** Backoff before a batch whose handler threw is delivered again (doubling from initialMs up to maxMs). */
  retry?: { initialMs?: number; maxMs?: number };
}

export interface BatchContext {
  topic: string;
  partition: number;
  /** Keeps the group membership alive during long handlers. */
  heartbeat(): Promise<void>;
}

/**
 * What a handler may resolve with instead of nothing: the batch is taken, and is committed once
 * `done` resolves. Kafka fetches and hands out the next batches meanwhile, so a handler that
 * passes records on (the store: to ClickHouse) overlaps with the next fetch; commits still go in
 * offset order per partition, each after its own `done` and those before it. A `done` that
 * rejects is a failed batch: nothing from it on is committed, and the partition is read again
 * from its first record. The memory bus waits for `done` before the next batch.
 */
export interface BatchTaken {
  done: Promise<void>;
}

/**
 * Called with messages of one partition, in offset order; the batch is committed after it
 * resolves (or, when it resolves with a BatchTaken, after `done`).
 */
export type BatchHandler = (messages: BusMessage[], ctx: BatchContext) => Promise<void | BatchTaken>;

/** The `done` of a handler's result; undefined for a handler that resolved with nothing. */
export function takenDone(result: void | BatchTaken): Promise<void> | undefined {
  return result !== null && typeof result === 'object' && result.done instanceof Promise
    ? result.done
    : undefined;
}

export interface Consumer {
  /**
   * Starts consuming in the background; resolves when running (joined the group, and the start
   * of a group without commits is fixed: what is sent afterwards is seen). A handler that throws
   * gets the same batch again after a backoff (not committed).
   */
  run(handler: BatchHandler): Promise<void>;
  /** The partitions currently assigned to this member (empty before `run` and after `close`). */
  assignment(): TopicPartition[];
  /** Stops fetching; offsets committed so far stay. */
  close(): Promise<void>;
}

export interface Bus {
  readonly kind: 'memory' | 'kafka';
  ensureTopics(topics: TopicSpec[]): Promise<void>;
  producer(opts?: ProducerOptions): Promise<Producer>;
  consumer(opts: ConsumerOptions): Promise<Consumer>;
  close(): Promise<void>;
}
