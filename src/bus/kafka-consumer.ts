import type { EachBatchPayload, Consumer as KafkaJsConsumer, KafkaMessage } from 'kafkajs';
import type { Logger } from '../log/logger.js';
import {
  type BatchContext,
  type BatchHandler,
  type BusMessage,
  type Consumer,
  type ConsumerOptions,
  type TopicPartition,
  takenDone,
} from './bus.js';
import { LeanRecord, NO_HEADERS as NO_RECORD_HEADERS } from './kafkajs-records.js';
import { consumedRecords, consumerLag, handlerErrors } from './metrics.js';
import { backoffDelay, type RetryPolicy, retryPolicy } from './retry.js';

/**
 * A kafkajs consumer with the bus semantics: eachBatch without auto-resolve; the offsets of a batch
 * are resolved and committed only after the handler resolves. A handler that throws gets the same
 * batch again after a backoff, in place (heartbeating meanwhile), until it succeeds, the partition
 * is taken away by a rebalance, or the consumer closes; in the last two cases nothing was
 * committed and the group's next owner starts at the same record.
 */
export class KafkaConsumer implements Consumer {
  private readonly retry: RetryPolicy;
  private assigned: TopicPartition[] = [];
  private running = false;
  private closing: Promise<void> | undefined;
  private readonly stop = new AbortController();
  /** Per topic/partition: the commit of the last batch handed out (commits chain in offset order). */
  private readonly commits = new Map<string, Promise<void>>();
  /** Per topic/partition: the first offset of a taken batch that failed; nothing commits past it. */
  private readonly broken = new Map<string, bigint>();
  /** Per topic/partition: how many taken batches failed; a batch commits only in its own epoch. */
  private readonly epochs = new Map<string, number>();

  constructor(
    private readonly kc: KafkaJsConsumer,
    private readonly opts: ConsumerOptions,
    private readonly concurrency: number,
    private readonly log: Logger,
    private readonly onClose: () => void,
  ) {
    this.retry = retryPolicy(opts.retry);
  }

  async run(handler: BatchHandler): Promise<void> {
    if (this.closing) throw new Error(`consumer of group ${this.opts.groupId} is closed`);
    if (this.running) throw new Error(`consumer of group ${this.opts.groupId} is already running`);
    if (typeof handler !== 'function') throw new TypeError('consumer: handler must be a function');
    this.running = true;
    const { events } = this.kc;
    const offs: (() => void)[] = [];
    offs.push(
      this.kc.on(events.GROUP_JOIN, ({ payload }) => {
        this.assigned = Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) =>
          (partitions as number[]).map((partition) => ({ topic, partition })),
        );
      }),
    );
    offs.push(this.kc.on(events.STOP, () => (this.assigned = [])));
    this.stopListening = () => {
      for (const off of offs) off();
    };
    // Ready = joined the group and fetched once: a group without commits has then fixed its
    // start (kafkajs resolves "latest" on the first fetch), so what is sent after run() is seen.
    const ready = new Promise<void>((resolve, reject) => {
      let joined = false;
      const closed = () =>
        done(new Error(`consumer of group ${this.opts.groupId} closed before it was running`));
      const done = (err?: Error) => {
        for (const off of readyOffs) off();
        this.stop.signal.removeEventListener('abort', closed);
        if (err) reject(err);
        else resolve();
      };
      this.stop.signal.addEventListener('abort', closed, { once: true });
      const readyOffs = [
        this.kc.on(events.GROUP_JOIN, ({ payload }) => {
          joined = true;
          if (Object.values(payload.memberAssignment).every((ps) => (ps as number[]).length === 0)) done();
        }),
        this.kc.on(events.FETCH, () => {
          if (joined) done();
        }),
        this.kc.on(events.CRASH, ({ payload }) => {
          if (!payload.restart) done(payload.error);
        }),
      ];
    });
    await this.kc.connect();
    await this.kc.subscribe({
      topics: [...new Set(this.opts.topics)],
      fromBeginning: Boolean(this.opts.fromBeginning),
    });
    await this.kc.run({
      eachBatchAutoResolve: false,
      // Every commit is explicit (see commitInOrder): kafkajs would otherwise commit what is
      // resolved, and a taken batch is resolved (so fetching goes on) before it is done.
      autoCommit: false,
      partitionsConsumedConcurrently: this.concurrency,
      eachBatch: (payload) => this.onBatch(handler, payload),
    });
    await ready;
  }

  assignment(): TopicPartition[] {
    return this.closing ? [] : this.assigned.map((tp) => ({ ...tp }));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      try {
        // Fetch nothing more, let the taken batches finish and commit, then leave the group.
        const topics = [...new Set(this.opts.topics)].map((topic) => ({ topic }));
        if (this.running) this.kc.pause(topics);
        await Promise.allSettled([...this.commits.values()]);
        await this.kc.disconnect();
      } finally {
        this.assigned = [];
        this.stopListening();
        this.onClose();
      }
    })();
    return this.closing;
  }

  private stopListening: () => void = () => {};

  private async onBatch(handler: BatchHandler, payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    if (batch.messages.length === 0) return;
    const { topic, partition } = batch;
    const messages = batch.messages.map((m) => toBusMessage(topic, partition, m));
    const gone = () => this.stop.signal.aborted || !isRunning() || isStale();
    let heartbeatError: unknown;
    const ctx: BatchContext = {
      topic,
      partition,
      heartbeat: async () => {
        try {
          await heartbeat();
        } catch (err) {
          heartbeatError = err;
          throw err;
        }
      },
    };
    let done: Promise<void> | undefined;
    for (let attempt = 1; ; attempt++) {
      if (gone()) return;
      try {
        done = takenDone(await handler(messages, ctx));
        break;
      } catch (err) {
        // A failed heartbeat (rebalance, lost membership) is kafkajs' to handle: it rejoins.
        if (heartbeatError) throw heartbeatError;
        const delay = backoffDelay(attempt, this.retry);
        handlerErrors.inc({ bus: 'kafka', topic, group: this.opts.groupId });
        this.log.warn(
          {
            err,
            topic,
            partition,
            group: this.opts.groupId,
            offset: messages[0]!.offset,
            records: messages.length,
            attempt,
            retry_in_ms: delay,
          },
          'batch handler failed; the batch will be delivered again',
        );
        await this.backoff(delay, heartbeat, gone);
      }
    }
    const last = batch.messages[batch.messages.length - 1]!;
    // The next fetch starts after this batch; the commit waits for it to be done.
    resolveOffset(last.offset);
    const committed = this.commitInOrder(topic, partition, messages[0]!.offset, last.offset, done);
    if (!done) await committed;
    consumedRecords.inc({ bus: 'kafka', topic, group: this.opts.groupId }, messages.length);
    const lag = Number(batch.highWatermark) - Number(last.offset) - 1;
    if (Number.isFinite(lag)) {
      consumerLag.set(
        { bus: 'kafka', topic, partition: String(partition), group: this.opts.groupId },
        Math.max(0, lag),
      );
    }
  }

  /**
   * Commits `first..last` of a partition once `done` (if any) and every batch of the partition
   * taken before it are done. A batch whose `done` rejects breaks the chain: nothing of the
   * partition is committed until it is delivered again from that batch's first record (the
   * consumer seeks back to it), so a later batch that succeeds cannot commit past it.
   */
  private commitInOrder(
    topic: string,
    partition: number,
    first: string,
    last: string,
    done: Promise<void> | undefined,
  ): Promise<void> {
    const key = `${topic}\u0000${partition}`;
    const broken = this.broken.get(key);
    if (broken !== undefined) {
      if (BigInt(first) > broken) return Promise.resolve(); // taken before the seek took effect
      this.broken.delete(key);
      this.commits.delete(key);
    }
    const before = this.commits.get(key) ?? Promise.resolve();
    const epoch = this.epochs.get(key) ?? 0;
    const next = (async () => {
      // A failed commit before this one is covered by this one; a failed batch sets `broken`.
      await before.catch(() => {});
      if (done) {
        try {
          await done;
        } catch (err) {
          if (!this.broken.has(key)) {
            this.broken.set(key, BigInt(first));
            this.epochs.set(key, epoch + 1);
            handlerErrors.inc({ bus: 'kafka', topic, group: this.opts.groupId });
            if (!this.stop.signal.aborted) {
              this.log.warn(
                { err, topic, partition, group: this.opts.groupId, offset: first },
                'batch failed after it was taken; the partition is read again from its first record',
              );
              this.kc.seek({ topic, partition, offset: first });
            }
          }
          throw err;
        }
      }
      // An earlier batch failed: it all comes again, and what was taken before it was read
      // again (an older epoch) must not commit past it, even once the redelivery has begun.
      if (this.broken.has(key) || (this.epochs.get(key) ?? 0) !== epoch) return;
      await this.kc.commitOffsets([{ topic, partition, offset: (BigInt(last) + 1n).toString() }]);
    })();
    next.catch(() => {});
    this.commits.set(key, next);
    if (done) {
      // Forget a settled tail so the map holds only partitions with batches in flight.
      next.then(
        () => this.commits.get(key) === next && this.commits.delete(key),
        () => {},
      );
    }
    return next;
  }

  /** Sleeps `ms` in slices, heartbeating so the group keeps this member; ends early on close or rebalance. */
  private async backoff(ms: number, heartbeat: () => Promise<void>, gone: () => boolean): Promise<void> {
    const until = Date.now() + ms;
    while (!gone()) {
      const left = until - Date.now();
      if (left <= 0) return;
      await abortableSleep(Math.min(left, 1000), this.stop.signal);
      if (!gone()) await heartbeat();
    }
  }
}

/** The headers of every message without any, shared and frozen (most have none). */
const NO_HEADERS: Record<string, string> = Object.freeze({});

function toBusMessage(topic: string, partition: number, m: KafkaMessage | LeanRecord): BusMessage {
  // A LeanRecord without headers (one zero byte) has the shared empty ones.
  if (m instanceof LeanRecord && m.headers === NO_RECORD_HEADERS)
    return new LeanBusMessage(topic, partition, m);
  let headers = NO_HEADERS;
  if (m.headers) {
    // for-in, not Object.entries: no array per record (most records have no headers).
    for (const name in m.headers) {
      if (!Object.hasOwn(m.headers, name)) continue;
      const v = m.headers[name];
      if (v === undefined) continue;
      if (headers === NO_HEADERS) headers = {};
      headers[name] = Array.isArray(v) ? v.map(String).join(',') : v.toString();
    }
  }
  return new KafkaBusMessage(topic, partition, m.offset, m.key, m.value, headers, Number(m.timestamp));
}

/**
 * A record as the Kafka bus hands it. Its key is decoded when read: the store never reads it,
 * and decoding every key was about 2 % of the store's event loop.
 */
class KafkaBusMessage implements BusMessage {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: string,
    private readonly keyBytes: Buffer | null,
    readonly value: Buffer | null,
    readonly headers: Record<string, string>,
    readonly timestamp: number,
  ) {}

  get key(): string | null {
    return this.keyBytes === null ? null : this.keyBytes.toString('utf8');
  }
}

/**
 * A record with no headers as the Kafka bus hands it, read from its LeanRecord when asked: the
 * store reads its value once and its offset only for the records it cannot store, so a record
 * waiting to be stored holds no strings and no Buffer of its own.
 */
class LeanBusMessage implements BusMessage {
  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly record: LeanRecord,
  ) {}

  get offset(): string {
    return this.record.offset;
  }

  get key(): string | null {
    return this.record.keyText();
  }

  get value(): Buffer | null {
    return this.record.value;
  }

  /**
   * The value as bytes valueStart..valueEnd of this buffer (the batch's), read without making a
   * Buffer for it; undefined for a null value.
   */
  get valueSource(): Buffer | undefined {
    return this.record.valueAt < 0 ? undefined : this.record.bytes;
  }

  get valueStart(): number {
    return this.record.valueAt;
  }

  get valueEnd(): number {
    return this.record.valueEnd;
  }

  get headers(): Record<string, string> {
    return NO_HEADERS;
  }

  get timestamp(): number {
    return this.record.timestampNumber;
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
