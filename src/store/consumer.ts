import type { BatchContext, Bus, BusMessage, Consumer } from '../bus/bus.js';
import { logger } from '../log/logger.js';
import { lagSeconds } from './metrics.js';
import type { Origin } from './rows.js';
import type { DeadLetter, RecordKind, StoreWriter } from './writer.js';

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
  /** How often a handler waiting for ClickHouse heartbeats the group. */
  heartbeatMs?: number;
}

/** Longest text of an undecodable message kept in dead_letters. */
const MAX_DEAD_LETTER_BYTES = 1 << 20;

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
  /** Handlers running right now, and how many of them wait for the writer. */
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

  private async handle(messages: BusMessage[], ctx: BatchContext): Promise<void> {
    this.active++;
    try {
      await this.store(messages, ctx);
    } finally {
      this.active--;
    }
  }

  private async store(messages: BusMessage[], ctx: BatchContext): Promise<void> {
    const kind = this.kindOf.get(ctx.topic);
    if (kind === undefined || messages.length === 0) return;
    const records: unknown[] = [];
    const origins: Origin[] = [];
    const bad: DeadLetter[] = [];
    for (const m of messages) {
      const origin: Origin = {
        topic: m.topic,
        partition: m.partition,
        offset: m.offset,
        timestamp: m.timestamp,
      };
      if (m.value === null) {
        // A tombstone on the compacted decisions topic deletes a key; the audit trail already
        // has the decision's last state. Elsewhere it is not a record.
        if (kind !== 'decisions')
          bad.push({ source: kind, error: 'empty message (tombstone)', record: '', origin });
        continue;
      }
      const text = m.value.toString('utf8');
      try {
        records.push(JSON.parse(text));
        origins.push(origin);
      } catch (err) {
        bad.push({
          source: kind,
          error: `not JSON: ${(err as Error).message}`,
          record: text.length > MAX_DEAD_LETTER_BYTES ? text.slice(0, MAX_DEAD_LETTER_BYTES) : text,
          origin,
        });
      }
    }
    const heartbeat = setInterval(() => {
      ctx.heartbeat().catch(() => {});
    }, this.opts.heartbeatMs ?? 3000);
    this.waiting++;
    try {
      const stored = Promise.all([this.writer.write(kind, records, origins), this.writer.deadLetter(bad)]);
      // When every handler running is waiting for the writer, no more rows come until a flush
      // (the bus hands out the next batches only once these are done): send now rather than
      // after idle_flush_ms. While that insert runs, the rows of handlers arriving meanwhile
      // gather into the next one.
      if (this.waiting >= this.active) this.writer.sendNow();
      await (this.stopping ? Promise.race([stored, this.stopping]) : stored);
    } finally {
      this.waiting--;
      clearInterval(heartbeat);
    }
    const last = messages[messages.length - 1]!;
    lagSeconds.set({ topic: ctx.topic }, Math.max(0, (Date.now() - last.timestamp) / 1000));
  }
}
