import { type Logger, logger } from '../log/logger.js';
import type {
  BatchHandler,
  Bus,
  BusRecord,
  Consumer,
  ConsumerOptions,
  Producer,
  ProducerOptions,
  TopicPartition,
  TopicSpec,
} from './bus.js';
import { MemoryGroup, MemoryMember } from './memory-group.js';
import { MemoryTopic } from './memory-log.js';
import {
  consumerLag,
  producedRecords,
  produceErrors,
  retainedRecords,
  scrapeHooks,
  sendWaitSeconds,
} from './metrics.js';
import { checkRecordSizes, checkTopicName, prepareRecord } from './record.js';
import { retryPolicy } from './retry.js';

export interface MemoryBusOptions {
  /** Partitions of a topic created without a count (first use, or ensureTopics without `partitions`). */
  partitions?: number;
  /**
   * Records a non-compacted topic may hold that some known group has not committed yet; above it
   * `send` waits (backpressure) instead of memory growing. A send is admitted whole, so the cap
   * can be passed by one send's records.
   */
  maxRetainedRecords?: number;
  /** Larger records are refused at `send`, as the Kafka bus refuses them (same limit, same error). */
  maxRecordBytes?: number;
  /** Most records handed to a handler in one batch. */
  maxBatchRecords?: number;
  /** Compacted topics: how long a tombstone stays readable (Kafka's delete.retention.ms, 24 h). */
  deleteRetentionMs?: number;
  /** A send blocked this long by backpressure logs a warning naming the lagging groups. */
  slowSendWarnMs?: number;
}

const DEFAULTS = {
  partitions: 4,
  maxRetainedRecords: 100_000,
  maxBatchRecords: 500,
  maxRecordBytes: 1_000_000,
  deleteRetentionMs: 86_400_000,
  slowSendWarnMs: 10_000,
} satisfies Required<MemoryBusOptions>;

/**
 * The bus of the single-host mode (`mizugiwa run`): topics, partitions by Kafka's key hash,
 * consumer groups and commits after the handler, all in this process. Nothing survives a
 * restart: the shipper's checkpoints (which move only after `send` resolves) are what makes a
 * restart lose nothing. Records are held until every group that ever subscribed to the topic has
 * committed them (compacted topics: the newest record per key).
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  private readonly opts: Required<MemoryBusOptions>;
  private readonly topics = new Map<string, MemoryTopic>();
  private readonly groups = new Map<string, MemoryGroup>();
  private readonly consumers = new Set<MemoryConsumer>();
  readonly log: Logger;
  private closed = false;
  private readonly hooks = { lag: () => this.reportLag(), retained: () => this.reportRetained() };

  constructor(opts: MemoryBusOptions = {}) {
    this.opts = { ...DEFAULTS, ...stripUndefined(opts) };
    for (const k of ['partitions', 'maxRetainedRecords', 'maxBatchRecords', 'maxRecordBytes'] as const) {
      const v = this.opts[k];
      if (!Number.isInteger(v) || v < 1)
        throw new RangeError(`memory bus: ${k} must be an integer >= 1, got ${v}`);
    }
    this.log = logger('bus');
    scrapeHooks.lag.add(this.hooks.lag);
    scrapeHooks.retained.add(this.hooks.retained);
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    this.assertOpen();
    for (const spec of specs) {
      checkTopicName(spec.topic);
      const existing = this.topics.get(spec.topic);
      if (!existing) {
        this.create(spec);
        continue;
      }
      const wanted = spec.partitions ?? existing.logs.length;
      if (existing.compacted !== Boolean(spec.compacted) || existing.logs.length !== wanted) {
        this.log.warn(
          {
            topic: spec.topic,
            partitions: existing.logs.length,
            compacted: existing.compacted,
            wanted: { partitions: wanted, compacted: Boolean(spec.compacted) },
          },
          'topic exists with other settings; keeping them',
        );
      }
    }
  }

  async producer(_opts?: ProducerOptions): Promise<Producer> {
    this.assertOpen();
    return new MemoryProducer(this);
  }

  async consumer(opts: ConsumerOptions): Promise<Consumer> {
    this.assertOpen();
    if (typeof opts.groupId !== 'string' || opts.groupId === '')
      throw new TypeError('consumer: groupId is empty');
    if (!Array.isArray(opts.topics) || opts.topics.length === 0) throw new TypeError('consumer: no topics');
    for (const t of opts.topics) checkTopicName(t);
    const concurrency = opts.partitionsConsumedConcurrently ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(
        `consumer: partitionsConsumedConcurrently must be an integer >= 1, got ${concurrency}`,
      );
    }
    const c = new MemoryConsumer(this, opts, concurrency);
    this.consumers.add(c);
    return c;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.close()));
    for (const g of this.groups.values()) g.stop();
    const err = new Error('memory bus closed');
    for (const t of this.topics.values()) t.close(err);
    scrapeHooks.lag.delete(this.hooks.lag);
    scrapeHooks.retained.delete(this.hooks.retained);
    for (const t of this.topics.values()) {
      retainedRecords.remove({ topic: t.name });
      for (const g of this.groups.values()) {
        for (let p = 0; p < t.logs.length; p++) {
          consumerLag.remove({ bus: 'memory', topic: t.name, partition: String(p), group: g.id });
        }
      }
    }
  }

  /** The topic, created with the defaults on first use (as a broker with auto.create.topics.enable). */
  topic(name: string): MemoryTopic {
    const t = this.topics.get(name);
    if (t) return t;
    checkTopicName(name);
    return this.create({ topic: name });
  }

  group(id: string): MemoryGroup {
    let g = this.groups.get(id);
    if (!g) {
      g = new MemoryGroup(id, (name) => this.topic(name), this.opts.maxBatchRecords, this.log);
      this.groups.set(id, g);
    }
    return g;
  }

  assertOpen(): void {
    if (this.closed) throw new Error('memory bus closed');
  }

  get maxRecordBytes(): number {
    return this.opts.maxRecordBytes;
  }

  get slowSendWarnMs(): number {
    return this.opts.slowSendWarnMs;
  }

  forget(c: MemoryConsumer): void {
    this.consumers.delete(c);
  }

  private create(spec: TopicSpec): MemoryTopic {
    const partitions = spec.partitions ?? this.opts.partitions;
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new RangeError(`topic ${spec.topic}: partitions must be an integer >= 1, got ${partitions}`);
    }
    const t = new MemoryTopic(spec.topic, {
      partitions,
      compacted: Boolean(spec.compacted),
      retentionMs: spec.retentionMs,
      maxRetained: this.opts.maxRetainedRecords,
      deleteRetentionMs: this.opts.deleteRetentionMs,
    });
    this.topics.set(spec.topic, t);
    return t;
  }

  private reportLag(): void {
    for (const g of this.groups.values()) {
      for (const [name, positions] of g.subscriptions()) {
        const logs = this.topics.get(name)?.logs ?? [];
        positions.forEach((pos, p) => {
          const lag = Math.max(0, (logs[p]?.nextOffset ?? pos) - pos);
          consumerLag.set({ bus: 'memory', topic: name, partition: String(p), group: g.id }, lag);
        });
      }
    }
  }

  private reportRetained(): void {
    for (const t of this.topics.values()) retainedRecords.set({ topic: t.name }, t.retained);
  }
}

class MemoryProducer implements Producer {
  private closed = false;

  constructor(private readonly bus: MemoryBus) {}

  async send(topic: string, records: BusRecord[]): Promise<void> {
    if (this.closed) throw new Error('producer closed');
    this.bus.assertOpen();
    const t = this.bus.topic(topic);
    if (!Array.isArray(records)) throw new TypeError(`send to ${topic}: records must be an array`);
    const prepared = records.map((r, i) => prepareRecord(topic, i, r, t.compacted));
    checkRecordSizes(topic, prepared, this.bus.maxRecordBytes);
    if (prepared.length === 0) return;
    const waiting = t.produce(prepared);
    if (waiting) {
      const started = performance.now();
      const warn = setTimeout(() => {
        this.bus.log.warn(
          {
            topic,
            retained: t.retained,
            waiting_sends: t.waitingSendCount,
            lagging_groups:
              t.groups.size === 0 ? 'no consumer group subscribed to this topic' : t.laggingGroups(),
          },
          'send waiting: the topic holds its maximum of records not yet committed by every consumer group',
        );
      }, this.bus.slowSendWarnMs);
      warn.unref();
      try {
        await waiting;
      } catch (err) {
        produceErrors.inc({ bus: 'memory', topic }, prepared.length);
        throw err;
      } finally {
        clearTimeout(warn);
        sendWaitSeconds.inc({ bus: 'memory', topic }, (performance.now() - started) / 1000);
      }
    }
    producedRecords.inc({ bus: 'memory', topic }, prepared.length);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

class MemoryConsumer implements Consumer {
  private member: MemoryMember | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly bus: MemoryBus,
    private readonly opts: ConsumerOptions,
    private readonly concurrency: number,
  ) {}

  async run(handler: BatchHandler): Promise<void> {
    if (this.closing) throw new Error(`consumer of group ${this.opts.groupId} is closed`);
    if (this.member) throw new Error(`consumer of group ${this.opts.groupId} is already running`);
    if (typeof handler !== 'function') throw new TypeError('consumer: handler must be a function');
    this.bus.assertOpen();
    this.member = new MemoryMember(
      [...new Set(this.opts.topics)],
      Boolean(this.opts.fromBeginning),
      handler,
      this.concurrency,
      retryPolicy(this.opts.retry),
    );
    this.bus.group(this.opts.groupId).join(this.member);
  }

  assignment(): TopicPartition[] {
    if (!this.member || this.member.closed) return [];
    return this.member.assignment.map((tp) => ({ ...tp }));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const m = this.member;
      if (m) {
        this.bus.group(this.opts.groupId).leave(m);
        await m.shutdown();
      }
      this.bus.forget(this);
    })();
    return this.closing;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
