import { partitionForKey } from './partition.js';
import type { PreparedRecord } from './record.js';

export interface StoredRecord {
  readonly offset: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestamp: number;
  live: boolean;
}

/**
 * One partition's records in offset order. Records leave from the front (consumed by every group,
 * or past retention) or, on compacted topics, from anywhere (superseded by a newer value for the
 * key): those become holes that are swept out in bulk, so removal is O(1) amortised and a read
 * seeks by binary search.
 */
export class PartitionLog {
  private recs: StoredRecord[] = [];
  private head = 0;
  private dead = 0;
  nextOffset = 0;

  /** Records held. */
  get size(): number {
    return this.recs.length - this.head - this.dead;
  }

  /** Offset of the first record held (Kafka's log start offset); nextOffset when empty. */
  get startOffset(): number {
    return this.recs[this.head]?.offset ?? this.nextOffset;
  }

  oldest(): StoredRecord | undefined {
    return this.recs[this.head];
  }

  append(r: PreparedRecord, timestamp: number): StoredRecord {
    const rec: StoredRecord = {
      offset: this.nextOffset++,
      key: r.key,
      value: typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : r.value,
      headers: r.headers,
      timestamp,
      live: true,
    };
    this.recs.push(rec);
    return rec;
  }

  /** Removes one record (compaction); its offset becomes a hole. */
  remove(rec: StoredRecord): void {
    if (!rec.live) return;
    rec.live = false;
    this.dead++;
    this.skipDeadHead();
    this.maybeSweep();
  }

  /** Drops every record with offset < `offset`; returns how many were dropped. */
  dropBefore(offset: number): number {
    let dropped = 0;
    while (this.head < this.recs.length) {
      const r = this.recs[this.head]!;
      if (r.offset >= offset) break;
      if (r.live) dropped++;
      else this.dead--;
      this.head++;
    }
    this.maybeSweep();
    return dropped;
  }

  /** Drops records older than `cutoff` (ms since epoch) from the front; returns how many. */
  dropOlderThan(cutoff: number): number {
    let end = this.head;
    while (end < this.recs.length && this.recs[end]!.timestamp < cutoff) end++;
    return end === this.head ? 0 : this.dropBefore(this.recs[end - 1]!.offset + 1);
  }

  /** Up to `max` records with offset >= `from`, in order. */
  read(from: number, max: number): StoredRecord[] {
    const out: StoredRecord[] = [];
    for (let i = this.lowerBound(from); i < this.recs.length && out.length < max; i++) {
      const r = this.recs[i]!;
      if (r.live) out.push(r);
    }
    return out;
  }

  /** True when a record with offset >= `from` is held. */
  hasFrom(from: number): boolean {
    for (let i = this.lowerBound(from); i < this.recs.length; i++) if (this.recs[i]!.live) return true;
    return false;
  }

  private lowerBound(offset: number): number {
    let lo = this.head;
    let hi = this.recs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.recs[mid]!.offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private skipDeadHead(): void {
    while (this.head < this.recs.length && !this.recs[this.head]!.live) {
      this.head++;
      this.dead--;
    }
  }

  private maybeSweep(): void {
    const waste = this.head + this.dead;
    if (waste < 1024 || waste * 2 < this.recs.length) return;
    const rest = this.recs.slice(this.head);
    this.recs = this.dead > 0 ? rest.filter((r) => r.live) : rest;
    this.head = 0;
    this.dead = 0;
  }
}

/** What a topic needs to know of a consumer group to drop the records it has committed. */
export interface GroupCursor {
  readonly id: string;
  committed(topic: string, partition: number): number | undefined;
}

export interface MemoryTopicOptions {
  partitions: number;
  compacted: boolean;
  retentionMs?: number;
  /** Cap on records held by a non-compacted topic; `produce` waits above it. */
  maxRetained: number;
  /** Compacted topics: how long a tombstone stays readable before it is removed (Kafka: delete.retention.ms). */
  deleteRetentionMs: number;
}

interface WaitingSend {
  records: PreparedRecord[];
  resolve: () => void;
  reject: (err: Error) => void;
}

export class MemoryTopic {
  readonly logs: PartitionLog[];
  /** Consumer groups that ever subscribed; records are held until every one has committed them. */
  readonly groups = new Set<GroupCursor>();
  private readonly newest: Map<string, StoredRecord>[] | undefined;
  private readonly tombstones: { rec: StoredRecord; partition: number }[] = [];
  private readonly dataWaiters: Set<() => void>[];
  private readonly waitingSends: WaitingSend[] = [];
  private retentionTimer: NodeJS.Timeout | undefined;
  private nullKeyCounter = 0;
  private closedWith: Error | undefined;
  /** Records held over all partitions. */
  retained = 0;

  constructor(
    readonly name: string,
    readonly opts: MemoryTopicOptions,
  ) {
    this.logs = Array.from({ length: opts.partitions }, () => new PartitionLog());
    this.dataWaiters = Array.from({ length: opts.partitions }, () => new Set());
    this.newest = opts.compacted ? Array.from({ length: opts.partitions }, () => new Map()) : undefined;
  }

  get compacted(): boolean {
    return this.opts.compacted;
  }

  get waitingSendCount(): number {
    return this.waitingSends.length;
  }

  /**
   * Appends the records, or queues them (in order behind earlier sends) while the topic holds
   * `maxRetained` records or more. Returns undefined when appended at once.
   */
  produce(records: PreparedRecord[]): Promise<void> | undefined {
    if (this.closedWith) return Promise.reject(this.closedWith);
    this.expire(Date.now());
    if (this.waitingSends.length === 0 && this.hasRoom()) {
      this.append(records);
      return undefined;
    }
    return new Promise((resolve, reject) => {
      this.waitingSends.push({ records, resolve, reject });
      this.armRetentionTimer();
    });
  }

  /** Calls `wake` once, at the next append to `partition`. */
  onData(partition: number, wake: () => void): void {
    this.dataWaiters[partition]!.add(wake);
  }

  offData(partition: number, wake: () => void): void {
    this.dataWaiters[partition]!.delete(wake);
  }

  /** Drops what every known group has committed (non-compacted topics), then lets waiting sends in. */
  trim(partition: number): void {
    if (this.compacted) return;
    let low = Number.POSITIVE_INFINITY;
    for (const g of this.groups) low = Math.min(low, g.committed(this.name, partition) ?? 0);
    if (low === Number.POSITIVE_INFINITY) return;
    const dropped = this.logs[partition]!.dropBefore(low);
    if (dropped > 0) {
      this.retained -= dropped;
      this.admitWaiting();
    }
  }

  /** Groups whose committed position holds the oldest records (for the backpressure warning). */
  laggingGroups(): string[] {
    const out = new Set<string>();
    for (let p = 0; p < this.logs.length; p++) {
      const start = this.logs[p]!.startOffset;
      if (this.logs[p]!.size === 0) continue;
      for (const g of this.groups) if ((g.committed(this.name, p) ?? 0) <= start) out.add(g.id);
    }
    return [...out];
  }

  close(err: Error): void {
    this.closedWith = err;
    clearTimeout(this.retentionTimer);
    for (const w of this.waitingSends.splice(0)) w.reject(err);
    for (const set of this.dataWaiters) {
      for (const wake of set) wake();
      set.clear();
    }
  }

  private hasRoom(): boolean {
    return this.compacted || this.retained < this.opts.maxRetained;
  }

  private append(records: PreparedRecord[]): void {
    const now = Date.now();
    const n = this.logs.length;
    const touched = new Set<number>();
    for (const r of records) {
      const p = r.key === null ? this.nullKeyCounter++ % n : partitionForKey(r.key, n);
      if (this.nullKeyCounter >= Number.MAX_SAFE_INTEGER) this.nullKeyCounter = 0;
      const log = this.logs[p]!;
      const rec = log.append(r, now);
      this.retained++;
      if (this.newest && r.key !== null) {
        const prev = this.newest[p]!.get(r.key);
        if (prev) {
          log.remove(prev);
          this.retained--;
        }
        this.newest[p]!.set(r.key, rec);
        if (r.value === null) this.tombstones.push({ rec, partition: p });
      }
      touched.add(p);
    }
    for (const p of touched) {
      const set = this.dataWaiters[p]!;
      if (set.size === 0) continue;
      const wakes = [...set];
      set.clear();
      for (const wake of wakes) wake();
    }
  }

  private admitWaiting(): void {
    while (this.waitingSends.length > 0 && this.hasRoom()) {
      const w = this.waitingSends.shift()!;
      this.append(w.records);
      w.resolve();
    }
    if (this.waitingSends.length === 0) {
      clearTimeout(this.retentionTimer);
      this.retentionTimer = undefined;
    }
  }

  /** Removes tombstones past deleteRetentionMs and, with retentionMs, records past retention. */
  private expire(now: number): void {
    if (this.newest) {
      const cutoff = now - this.opts.deleteRetentionMs;
      while (this.tombstones.length > 0 && this.tombstones[0]!.rec.timestamp <= cutoff) {
        const { rec, partition } = this.tombstones.shift()!;
        if (!rec.live) continue;
        this.logs[partition]!.remove(rec);
        this.newest[partition]!.delete(rec.key!);
        this.retained--;
      }
    } else if (this.opts.retentionMs !== undefined) {
      const cutoff = now - this.opts.retentionMs;
      let dropped = 0;
      for (const log of this.logs) dropped += log.dropOlderThan(cutoff);
      this.retained -= dropped;
    }
  }

  /** While sends wait on a topic with retention, wake when its oldest record expires. */
  private armRetentionTimer(): void {
    if (this.retentionTimer || this.opts.retentionMs === undefined || this.compacted) return;
    let oldest = Number.POSITIVE_INFINITY;
    for (const log of this.logs) oldest = Math.min(oldest, log.oldest()?.timestamp ?? oldest);
    if (oldest === Number.POSITIVE_INFINITY) return;
    const delay = Math.max(0, oldest + this.opts.retentionMs - Date.now() + 1);
    this.retentionTimer = setTimeout(() => {
      this.retentionTimer = undefined;
      this.expire(Date.now());
      this.admitWaiting();
      if (this.waitingSends.length > 0) this.armRetentionTimer();
    }, delay);
    this.retentionTimer.unref();
  }
}
