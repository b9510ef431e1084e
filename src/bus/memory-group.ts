import type { Logger } from '../log/logger.js';
import {
  type BatchContext,
  type BatchHandler,
  type BusMessage,
  type TopicPartition,
  takenDone,
} from './bus.js';
import type { GroupCursor, MemoryTopic, StoredRecord } from './memory-log.js';
import { consumedRecords, handlerErrors } from './metrics.js';
import { backoffDelay, type RetryPolicy } from './retry.js';

/** One `Consumer.run` of the memory bus: a member of its group, with a limit on concurrent batches. */
export class MemoryMember {
  assignment: TopicPartition[] = [];
  closed = false;
  private active = 0;
  private permitWaiters: ((ok: boolean) => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly topics: readonly string[],
    readonly fromBeginning: boolean,
    readonly handler: BatchHandler,
    readonly concurrency: number,
    readonly retry: RetryPolicy,
  ) {}

  /** Resolves true with a permit to run one batch, false once the member is closed. */
  acquire(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.active < this.concurrency) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.permitWaiters.push(resolve));
  }

  release(): void {
    const next = this.permitWaiters.shift();
    if (next) {
      next(true);
      return;
    }
    this.active--;
    if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** No new batches; resolves when the batches in flight have finished (and committed, if they succeeded). */
  shutdown(): Promise<void> {
    this.closed = true;
    for (const w of this.permitWaiters.splice(0)) w(false);
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/**
 * A consumer group: committed positions per partition and one delivery loop per partition, so a
 * partition's batches are strictly sequential whoever owns it. A rebalance only changes the owner
 * a loop hands the next batch to; a batch in flight finishes (and commits) first, so nothing is
 * delivered twice because of a rebalance.
 */
export class MemoryGroup implements GroupCursor {
  private members: MemoryMember[] = [];
  private readonly positions = new Map<string, number[]>();
  private readonly owners = new Map<string, MemoryMember>();
  private readonly loops: PartitionLoop[] = [];

  constructor(
    readonly id: string,
    private readonly topicOf: (name: string) => MemoryTopic,
    private readonly maxBatchRecords: number,
    private readonly log: Logger,
  ) {}

  committed(topic: string, partition: number): number | undefined {
    return this.positions.get(topic)?.[partition];
  }

  /** Topic name → committed positions, for the lag metric. */
  subscriptions(): ReadonlyMap<string, readonly number[]> {
    return this.positions;
  }

  join(member: MemoryMember): void {
    this.members.push(member);
    for (const name of member.topics) {
      const topic = this.topicOf(name);
      let pos = this.positions.get(name);
      if (!pos) {
        pos = [];
        this.positions.set(name, pos);
        topic.groups.add(this);
        for (let p = 0; p < topic.logs.length; p++) {
          const loop = new PartitionLoop(this, topic, p, this.maxBatchRecords, this.log);
          this.loops.push(loop);
          void loop.run();
        }
      }
      // A group without a committed position starts at the beginning or at the end, fixed now,
      // so whatever is sent after `run` resolves is seen.
      for (let p = 0; p < topic.logs.length; p++) {
        const log = topic.logs[p]!;
        pos[p] ??= member.fromBeginning ? log.startOffset : log.nextOffset;
      }
    }
    this.rebalance();
  }

  leave(member: MemoryMember): void {
    const i = this.members.indexOf(member);
    if (i < 0) return;
    this.members.splice(i, 1);
    member.assignment = [];
    this.rebalance();
  }

  ownerOf(topic: string, partition: number): MemoryMember | undefined {
    return this.owners.get(`${topic}\0${partition}`);
  }

  commit(topic: MemoryTopic, partition: number, next: number): void {
    const pos = this.positions.get(topic.name)!;
    if (next <= pos[partition]!) return;
    pos[partition] = next;
    topic.trim(partition);
  }

  stop(): void {
    for (const loop of this.loops) loop.stop();
  }

  /** Partitions of each topic go round-robin to the members subscribed to it, in join order. */
  private rebalance(): void {
    this.owners.clear();
    for (const m of this.members) m.assignment = [];
    for (const name of this.positions.keys()) {
      const subscribed = this.members.filter((m) => m.topics.includes(name));
      if (subscribed.length === 0) continue;
      const partitions = this.topicOf(name).logs.length;
      for (let p = 0; p < partitions; p++) {
        const m = subscribed[p % subscribed.length]!;
        this.owners.set(`${name}\0${p}`, m);
        m.assignment.push({ topic: name, partition: p });
      }
    }
    for (const loop of this.loops) loop.groupChanged();
  }
}

/** Delivers one partition to its group: waits (no polling) for records and an owner, commits after the handler. */
class PartitionLoop {
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Set while backing off after a failed batch: only stop or a new owner ends the wait early. */
  private backoffOwner: MemoryMember | undefined;
  private readonly wake = () => {
    this.topic.offData(this.partition, this.wake);
    clearTimeout(this.timer);
    this.timer = undefined;
    const f = this.wakeUp;
    this.wakeUp = undefined;
    f?.();
  };

  constructor(
    private readonly group: MemoryGroup,
    private readonly topic: MemoryTopic,
    private readonly partition: number,
    private readonly maxBatchRecords: number,
    private readonly log: Logger,
  ) {}

  stop(): void {
    this.stopped = true;
    this.wake();
  }

  groupChanged(): void {
    if (this.backoffOwner && this.group.ownerOf(this.topic.name, this.partition) === this.backoffOwner)
      return;
    this.wake();
  }

  async run(): Promise<void> {
    let failures = 0;
    const { topic, partition, group } = this;
    const log = topic.logs[partition]!;
    while (!this.stopped) {
      const owner = group.ownerOf(topic.name, partition);
      if (!owner) {
        await this.sleep();
        continue;
      }
      const from = group.committed(topic.name, partition)!;
      if (!log.hasFrom(from)) {
        // Compaction may have left only holes between the position and the end: skip them.
        if (log.nextOffset > from) group.commit(topic, partition, log.nextOffset);
        await this.sleep(undefined, true);
        continue;
      }
      if (!(await owner.acquire())) {
        if (group.ownerOf(topic.name, partition) === owner) await this.sleep();
        continue;
      }
      let delay = 0;
      try {
        if (this.stopped || group.ownerOf(topic.name, partition) !== owner) continue;
        const batch = log.read(group.committed(topic.name, partition)!, this.maxBatchRecords);
        if (batch.length === 0) continue;
        const ctx: BatchContext = { topic: topic.name, partition, heartbeat: () => Promise.resolve() };
        let ok = true;
        try {
          const done = takenDone(await owner.handler(this.messages(batch), ctx));
          if (done) await done;
        } catch (err) {
          ok = false;
          failures++;
          delay = backoffDelay(failures, owner.retry);
          handlerErrors.inc({ bus: 'memory', topic: topic.name, group: group.id });
          this.log.warn(
            {
              err,
              topic: topic.name,
              partition,
              group: group.id,
              offset: batch[0]!.offset,
              records: batch.length,
              attempt: failures,
              retry_in_ms: delay,
            },
            'batch handler failed; the batch will be delivered again',
          );
        }
        if (ok) {
          failures = 0;
          group.commit(topic, partition, batch[batch.length - 1]!.offset + 1);
          consumedRecords.inc({ bus: 'memory', topic: topic.name, group: group.id }, batch.length);
        }
      } finally {
        owner.release();
      }
      if (delay > 0) {
        this.backoffOwner = owner;
        await this.sleep(delay);
        this.backoffOwner = undefined;
      }
    }
  }

  private messages(batch: StoredRecord[]): BusMessage[] {
    const { name } = this.topic;
    return batch.map((r) => ({
      topic: name,
      partition: this.partition,
      offset: String(r.offset),
      key: r.key,
      value: r.value,
      headers: r.headers as Record<string, string>,
      timestamp: r.timestamp,
    }));
  }

  /** Until `wake` (group change, stop), the timer, or with `forData` the next append to the partition. */
  private sleep(ms?: number, forData = false): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.wakeUp = resolve;
      if (ms !== undefined) this.timer = setTimeout(this.wake, ms);
      if (forData) this.topic.onData(this.partition, this.wake);
    });
  }
}
