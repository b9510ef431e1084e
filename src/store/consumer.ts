import type { BatchContext, BatchTaken, Bus, BusMessage, Consumer } from '../bus/bus.js';
import { logger } from '../log/logger.js';
import { lagSeconds } from './metrics.js';
import type { DeadLetter, RecordKind, StoreWriter, ValueOrigin } from './writer.js';

export interface StoreTopics {
  events: string;
  detections: string;
  decisions: string;
}

export interface StoreConsumerOptions {
  groupId: string;
  topics: StoreTopics;
  /** A group without committed offsets starts at the beginning of the topics (default true). */
  fromBeginning?: boolean;
  /** Partitions handed to the handler at the same time; their rows share batches. */
  concurrency?: number;
  /** Kafka: most bytes one fetch brings per partition (default: the bus setting). */
  fetchMaxBytesPerPartition?: number;
  /** How often a handler waiting for ClickHouse heartbeats the group. */
  heartbeatMs?: number;
}

/**
 * The bus side of `mizugiwa store`: consumes events, detections and decisions and hands them to
 * a StoreWriter. A handler resolves (and the bus commits its batch) only after the writer
 * stored every record of it, in its table or in dead_letters: the committed offset never
 * passes a record that is not in ClickHouse. While ClickHouse is away the handler keeps waiting
 * (heartbeating), the bus stops fetching for that partition, and nothing is committed.
 */
export class StoreConsumer {
  private consumer: Consumer | undefined;
  private readonly kindOf = new Map<string, RecordKind>();
  private readonly log = logger('store');
  /** Batches taken and not yet stored, and how many of them are with the writer (not being decoded). */
  private active = 0;
  private waiting = 0;
  /** Rejected by stop(): handlers still waiting give up, uncommitted (the records come again). */
  private stopping: Promise<never> | undefined;
  private stopNow: ((err: Error) => void) | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly writer: StoreWriter,
    private readonly opts: StoreConsumerOptions,
  ) {
    this.kindOf.set(opts.topics.events, 'events');
    this.kindOf.set(opts.topics.detections, 'detections');
    this.kindOf.set(opts.topics.decisions, 'decisions');
  }

  async start(): Promise<void> {
    const { topics } = this.opts;
    this.stopping = new Promise<never>((_, reject) => {
      this.stopNow = reject;
    });
    this.stopping.catch(() => {});
    await this.bus.ensureTopics([
      { topic: topics.events },
      { topic: topics.detections },
      { topic: topics.decisions, compacted: true },
    ]);
    this.consumer = await this.bus.consumer({
      groupId: this.opts.groupId,
      topics: [topics.events, topics.detections, topics.decisions],
      fromBeginning: this.opts.fromBeginning ?? true,
      partitionsConsumedConcurrently: this.opts.concurrency ?? 4,
      fetchMaxBytesPerPartition: this.opts.fetchMaxBytesPerPartition,
    });
    await this.consumer.run((messages, ctx) => this.handle(messages, ctx));
    this.log.info({ group: this.opts.groupId, topics }, 'store consuming');
  }

  /**
   * Stops fetching. Handlers waiting for the writer get `graceMs` to see their rows stored (close
   * the writer at the same time so it flushes now); after that they give up without committing,
   * so a ClickHouse that is away cannot hold the shutdown, and what they carried comes again from
   * the bus (deduplicated by id). The writer is not closed here: it may be shared.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.writer.sendNow();
    const timer = setTimeout(() => this.stopNow?.(new Error('store consumer stopping')), graceMs);
    try {
      await this.consumer?.close();
    } finally {
      clearTimeout(timer);
    }
    this.consumer = undefined;
  }

  /**
   * Hands a batch to the writer and resolves once it is taken (encoded, with room in the
   * buffer), with `done` for when every record is stored: the bus fetches the next batch while
   * this one is inserted, and commits it after `done`.
   */
  private async handle(messages: BusMessage[], ctx: BatchContext): Promise<BatchTaken | undefined> {
    const kind = this.kindOf.get(ctx.topic);
    if (kind === undefined || messages.length === 0) return undefined;
    // Each record is its message's value (its JSON text as it came): the writer reads it from the
    // message, and decodes it (MailEvents straight into their rows). The message is also the
    // record's origin (topic, partition, offset, timestamp), kept until its batch is stored either
    // way (the batch is committed after): no other object per record waits with it.
    const values: ValueOrigin[] = [];
    const bad: DeadLetter[] = [];
    for (const m of messages) {
      // A value in its batch's buffer is not null; else reading it says (and makes a Buffer).
      if ((m as Partial<ValueOrigin>).valueSource === undefined && m.value === null) {
        // A tombstone on the compacted decisions topic deletes a key; the audit trail already
        // has the decision's last state. Elsewhere it is not a record.
        if (kind !== 'decisions')
          bad.push({ source: kind, error: 'empty message (tombstone)', record: '', origin: m });
        continue;
      }
      values.push(m as ValueOrigin);
    }
    // Waiting for room in the writer's buffer (ClickHouse slow or away) can take long.
    const heartbeat = setInterval(() => {
      ctx.heartbeat().catch(() => {});
    }, this.opts.heartbeatMs ?? 3000);
    this.active++;
    let taken: { stored: Promise<unknown> };
    try {
      taken = await this.stoppable(this.writer.acceptValues(kind, values));
    } catch (err) {
      this.active--;
      clearInterval(heartbeat);
      throw err;
    }
    clearInterval(heartbeat);
    this.waiting++;
    const stored = Promise.all([taken.stored, this.writer.deadLetter(bad)]);
    // When every batch taken is waiting for the writer, none is being decoded: no more rows
    // come before the next fetch, so send now rather than after idle_flush_ms. While that insert
    // runs, the rows of batches arriving meanwhile gather into the next one.
    if (this.waiting >= this.active) this.writer.sendNow();
    const lastTimestamp = messages[messages.length - 1]!.timestamp;
    const done = this.stoppable(stored).then(() => {
      lagSeconds.set({ topic: ctx.topic }, Math.max(0, (Date.now() - lastTimestamp) / 1000));
    });
    done
      .finally(() => {
        this.waiting--;
        this.active--;
      })
      .catch(() => {});
    return { done };
  }

  /** `p`, or the stop() deadline's rejection if that comes first. */
  private stoppable<T>(p: Promise<T>): Promise<T> {
    return this.stopping ? Promise.race([p, this.stopping]) : p;
  }
}
