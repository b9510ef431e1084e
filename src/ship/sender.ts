import type { BusRecord, Producer } from '../bus/bus.js';
import type { Logger } from '../log/logger.js';
import type { ShipConfig } from './config.js';
import * as m from './metrics.js';

// Events -> batches -> the bus, and acknowledgements back to the files they came from.
//
// Each file keeps its parts of the batches in a FIFO (its segments); its acknowledged offset is
// the end of the longest run of acknowledged segments from the front, so an acknowledgement that
// arrives out of order never moves it past an unacknowledged line. Up to
// `max_in_flight_requests` batches are sent at once (the bus keeps the order of `send` calls); a
// failed batch is retried with backoff, after the others in flight have settled, oldest first,
// until it is acknowledged: never dropped.

export interface Segment {
  /** Offset after the file's last line in the batch. */
  end: number;
  /** Events of the file in the batch. */
  n: number;
  acked: boolean;
}

/** What the sender needs of a file (the shipper's Source). */
export interface SegmentOwner {
  /** Offset after the last acknowledged line: moved here. */
  acked: number;
  /** Events in batches not yet acknowledged. */
  inFlight: number;
  /** This file's part of each batch not yet acknowledged, oldest first. */
  segments: Segment[];
  updatedAt: string;
}

interface Batch {
  seq: number;
  records: BusRecord[];
  bytes: number;
  ends: Map<SegmentOwner, Segment>;
}

export interface SenderOptions {
  producer: Producer;
  topic: string;
  config: ShipConfig;
  log: Logger;
  /** Called after every acknowledged batch (offsets moved). */
  onAck: () => void;
}

export class Sender {
  inFlightEvents = 0;
  inFlightBytes = 0;
  peakInFlightBytes = 0;
  eventsAcked = 0;
  produceErrors = 0;
  private readonly cfg: ShipConfig;
  private current: Batch | null = null;
  private readonly ready: Batch[] = [];
  private batchSeq = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Creation time of every batch not yet acknowledged, by sequence (oldest first). */
  private readonly unacked = new Map<number, number>();
  private wakeSender: (() => void) | null = null;
  private stopping = false;
  private abandoned = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly opts: SenderOptions) {
    this.cfg = opts.config;
  }

  start(): void {
    this.loop ??= this.runSender();
  }

  /** Reading must pause: events or bytes read and not acknowledged reached the caps. */
  isFull(): boolean {
    return (
      this.inFlightEvents >= this.cfg.max_in_flight_events ||
      this.inFlightBytes >= this.cfg.max_in_flight_bytes
    );
  }

  /** Everything handed over was acknowledged. */
  isIdle(): boolean {
    return this.inFlightEvents === 0 && this.current === null && this.ready.length === 0;
  }

  oldestUnackedSeconds(): number {
    for (const at of this.unacked.values()) return (Date.now() - at) / 1000;
    return 0;
  }

  /**
   * Sends what was handed over and waits up to `graceMs` for the acknowledgements. Returns
   * whether everything was acknowledged; after it, nothing more is sent.
   */
  async drain(graceMs: number): Promise<boolean> {
    this.stopping = true;
    this.seal();
    this.signalSender();
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      (this.loop ?? Promise.resolve()).then(() => true),
      new Promise<boolean>((res) => {
        timer = setTimeout(() => res(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    this.abandoned = true;
    this.signalSender();
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    return drained;
  }

  /** One event of `src`, whose line ends at `end`; `bytes` counts against max_in_flight_bytes. */
  add(src: SegmentOwner, end: number, record: BusRecord, bytes: number): void {
    let b = this.current;
    if (!b) {
      b = this.current = { seq: this.batchSeq++, records: [], bytes: 0, ends: new Map() };
      this.unacked.set(b.seq, Date.now());
      this.lingerTimer = setTimeout(() => this.seal(), this.cfg.linger_ms);
    }
    b.records.push(record);
    b.bytes += bytes;
    const seg = b.ends.get(src);
    if (seg) {
      seg.end = end;
      seg.n++;
    } else {
      const fresh = { end, n: 1, acked: false };
      b.ends.set(src, fresh);
      src.segments.push(fresh);
    }
    src.inFlight++;
    this.inFlightEvents++;
    this.inFlightBytes += bytes;
    if (this.inFlightBytes > this.peakInFlightBytes) this.peakInFlightBytes = this.inFlightBytes;
    if (b.records.length >= this.cfg.batch_max_events || b.bytes >= this.cfg.batch_max_bytes) this.seal();
  }

  private seal(): void {
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    if (this.current && this.current.records.length > 0) {
      this.ready.push(this.current);
      this.signalSender();
    }
    this.current = null;
  }

  private async runSender(): Promise<void> {
    const inflight = new Set<Promise<void>>();
    const failed: Batch[] = [];
    for (;;) {
      if (this.abandoned) return;
      if (failed.length > 0) {
        // Let the other sends settle, then retry the failed ones oldest first, one at a time.
        await Promise.all(inflight);
        failed.sort((a, b) => a.seq - b.seq);
        while (failed.length > 0) {
          const b = failed.shift()!;
          if (!(await this.sendWithRetry(b, this.cfg.retry_initial_ms))) return;
          this.acked(b);
        }
        continue;
      }
      const batch = this.ready.shift();
      if (!batch) {
        if (inflight.size === 0 && this.stopping && !this.current) return;
        await new Promise<void>((res) => {
          this.wakeSender = res;
          if (inflight.size > 0) void Promise.race(inflight).then(res);
        });
        continue;
      }
      const p: Promise<void> = this.opts.producer
        .send(this.opts.topic, batch.records)
        .then(
          () => this.acked(batch),
          (err: unknown) => {
            this.produceFailed(err, batch, 0);
            failed.push(batch);
          },
        )
        .finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= this.cfg.max_in_flight_requests) await Promise.race(inflight);
    }
  }

  private produceFailed(err: unknown, batch: Batch, retryInMs: number): void {
    this.produceErrors++;
    m.produceErrors.inc();
    this.opts.log.warn(
      { err: (err as Error).message, batch: batch.seq, events: batch.records.length, retry_in_ms: retryInMs },
      'produce failed; the batch is retried (reading pauses when the in-flight cap is reached)',
    );
  }

  /** Sends one batch until it is acknowledged, waiting `delay` (doubling) before each attempt. */
  private async sendWithRetry(batch: Batch, firstDelay: number): Promise<boolean> {
    let delay = firstDelay;
    for (let attempt = 1; ; attempt++) {
      await new Promise<void>((res) => {
        const t = setTimeout(res, delay);
        t.unref();
        this.wakeSender = () => {
          if (this.abandoned) {
            clearTimeout(t);
            res();
          }
        };
      });
      if (this.abandoned) return false;
      try {
        await this.opts.producer.send(this.opts.topic, batch.records);
        this.opts.log.info(
          { attempt, batch: batch.seq, events: batch.records.length },
          'produce succeeded again',
        );
        return true;
      } catch (err) {
        delay = Math.min(delay * 2, this.cfg.retry_max_ms);
        this.produceFailed(err, batch, delay);
      }
    }
  }

  private acked(batch: Batch): void {
    this.unacked.delete(batch.seq);
    const now = new Date().toISOString();
    for (const [src, seg] of batch.ends) {
      seg.acked = true;
      src.inFlight -= seg.n;
      while (src.segments.length > 0 && src.segments[0]!.acked) src.acked = src.segments.shift()!.end;
      src.updatedAt = now;
    }
    this.inFlightEvents -= batch.records.length;
    this.inFlightBytes -= batch.bytes;
    this.eventsAcked += batch.records.length;
    m.eventsProduced.inc(batch.records.length);
    this.opts.onAck();
  }

  private signalSender(): void {
    const w = this.wakeSender;
    this.wakeSender = null;
    w?.();
  }
}
