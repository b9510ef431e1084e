import type { Logger } from '../log/logger.js';
import type { BusRecord, Producer } from './bus.js';
import type { OutMessage, ProduceTransport } from './kafka-transport.js';
import { producedRecords, produceErrors, producerBatchRecords, sendWaitSeconds } from './metrics.js';
import {
  checkRecordSizes,
  checkTopicName,
  NO_HEADERS,
  type PreparedRecord,
  prepareRecord,
} from './record.js';

export interface KafkaProducerSettings {
  lingerMs: number;
  maxBatchBytes: number;
  maxBufferedBytes: number;
  /** Larger records are refused at `send` (the broker's message.max.bytes would refuse the whole batch). */
  maxRecordBytes: number;
  /** How long `close` waits for unacknowledged records before failing their senders. */
  closeTimeoutMs: number;
}

interface Batch {
  readonly topics: Map<string, OutMessage[]>;
  records: number;
  bytes: number;
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

/** A send waiting for room below maxBufferedBytes (FIFO); `admit` batches its records. */
interface RoomWaiter {
  bytes: number;
  admit(): void;
  reject(err: Error): void;
}

/**
 * kafkajs sends what it is given at once; this adds the linger of Kafka's Java producer: records
 * of concurrent `send` calls gather in one batch until lingerMs passes or maxBatchBytes fills,
 * and one produce request (acks=all, idempotent, through a ProduceTransport) carries the batch. Batches go out one at a time,
 * so records reach each partition in the order `send` was called, and every caller's promise
 * resolves when the batch that carried its last record is acknowledged.
 */
export class KafkaProducer implements Producer {
  private open: Batch | undefined;
  private readonly ready: Batch[] = [];
  private inFlight: Promise<void> | undefined;
  private current: Batch | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private buffered = 0;
  private readonly roomWaiters: RoomWaiter[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly transport: ProduceTransport,
    private readonly s: KafkaProducerSettings,
    private readonly isCompacted: (topic: string) => boolean,
    private readonly log: Logger,
    private readonly onClose: () => void,
  ) {}

  async send(topic: string, records: BusRecord[]): Promise<void> {
    if (this.closing) throw new Error('producer closed');
    checkTopicName(topic);
    if (!Array.isArray(records)) throw new TypeError(`send to ${topic}: records must be an array`);
    const compacted = this.isCompacted(topic);
    const prepared = records.map((r, i) => prepareRecord(topic, i, r, compacted));
    const bytes = checkRecordSizes(topic, prepared, this.s.maxRecordBytes);
    if (prepared.length === 0) return;
    const batches = new Set<Batch>();
    // Records join a batch synchronously (now, or inside `release` when room frees up), so a
    // `close` called after `send` always finds them.
    if (
      this.roomWaiters.length === 0 &&
      (this.buffered === 0 || this.buffered + bytes <= this.s.maxBufferedBytes)
    ) {
      this.buffered += bytes;
      this.enqueue(topic, prepared, batches);
    } else {
      const started = performance.now();
      await new Promise<void>((resolve, reject) =>
        this.roomWaiters.push({
          bytes,
          admit: () => {
            this.enqueue(topic, prepared, batches);
            resolve();
          },
          reject,
        }),
      );
      sendWaitSeconds.inc({ bus: 'kafka', topic }, (performance.now() - started) / 1000);
    }
    await Promise.all([...batches].map((b) => b.done));
  }

  private enqueue(topic: string, prepared: PreparedRecord[], batches: Set<Batch>): void {
    for (const r of prepared) {
      let b = this.open;
      if (b && b.records > 0 && b.bytes + r.size > this.s.maxBatchBytes) {
        this.seal();
        b = undefined;
      }
      b ??= this.openBatch();
      let list = b.topics.get(topic);
      if (!list) {
        list = [];
        b.topics.set(topic, list);
      }
      const m: OutMessage = { key: r.key, value: r.value };
      if (r.headers !== NO_HEADERS) m.headers = { ...r.headers };
      list.push(m);
      b.records++;
      b.bytes += r.size;
      batches.add(b);
    }
    if (this.open && this.open.bytes >= this.s.maxBatchBytes) this.seal();
    this.pump();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.s.closeTimeoutMs);
    });
    const drained = (async () => {
      for (;;) {
        this.seal();
        this.pump();
        if (!this.inFlight) return false;
        await this.inFlight;
      }
    })();
    if (await Promise.race([drained, timedOut])) {
      const err = new Error(
        `producer closed before Kafka acknowledged the records (waited ${this.s.closeTimeoutMs} ms)`,
      );
      this.seal();
      for (const b of [this.current, ...this.ready.splice(0)]) b?.reject(err);
      for (const w of this.roomWaiters.splice(0)) w.reject(err);
      this.log.warn({ waited_ms: this.s.closeTimeoutMs }, 'producer closed with records not acknowledged');
    }
    clearTimeout(timer);
    await this.transport.close();
    this.onClose();
  }

  private openBatch(): Batch {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A failed batch rejects every sender awaiting it; this keeps an unobserved rejection from crashing.
    done.catch(() => {});
    const b: Batch = { topics: new Map(), records: 0, bytes: 0, done, resolve, reject };
    this.open = b;
    this.lingerTimer =
      this.s.lingerMs > 0
        ? setTimeout(() => this.flushOpen(b), this.s.lingerMs)
        : (setImmediate(() => this.flushOpen(b)) as unknown as NodeJS.Timeout);
    return b;
  }

  private flushOpen(b: Batch): void {
    if (this.open !== b) return;
    this.seal();
    this.pump();
  }

  private seal(): void {
    if (!this.open) return;
    if (this.s.lingerMs > 0) clearTimeout(this.lingerTimer);
    else clearImmediate(this.lingerTimer as unknown as NodeJS.Immediate);
    this.lingerTimer = undefined;
    this.ready.push(this.open);
    this.open = undefined;
  }

  private pump(): void {
    if (this.inFlight) return;
    const b = this.ready.shift();
    if (!b) return;
    this.current = b;
    this.inFlight = this.produce(b).finally(() => {
      this.inFlight = undefined;
      this.current = undefined;
      this.pump();
    });
  }

  private async produce(b: Batch): Promise<void> {
    const topicMessages = [...b.topics].map(([topic, messages]) => ({ topic, messages }));
    try {
      await this.transport.send(b.topics);
      for (const { topic, messages } of topicMessages) {
        producedRecords.inc({ bus: 'kafka', topic }, messages.length);
      }
      producerBatchRecords.observe(b.records);
      b.resolve();
    } catch (err) {
      for (const { topic, messages } of topicMessages)
        produceErrors.inc({ bus: 'kafka', topic }, messages.length);
      const topics = topicMessages.map((t) => t.topic);
      this.log.warn({ err, records: b.records, topics }, 'Kafka refused a batch; its senders get the error');
      b.reject(
        new Error(
          `Kafka produce of ${b.records} records to ${topics.join(', ')} failed: ${(err as Error).message}`,
          {
            cause: err,
          },
        ),
      );
    } finally {
      this.release(b.bytes);
    }
  }

  private release(bytes: number): void {
    this.buffered -= bytes;
    while (this.roomWaiters.length > 0) {
      const w = this.roomWaiters[0]!;
      if (this.buffered > 0 && this.buffered + w.bytes > this.s.maxBufferedBytes) break;
      this.roomWaiters.shift();
      this.buffered += w.bytes;
      w.admit();
    }
  }
}
