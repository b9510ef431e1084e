import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Bus, BusMessage, BusRecord, Consumer, Producer } from '../bus/bus.js';
import type { Config } from '../config/config.js';
import type { Decision, Detection } from '../decision/decision.js';
import { type Logger, logger } from '../log/logger.js';
import { DetectEngine, horizonS } from './engine.js';
import { KafkaRange, type RangeMessage } from './kafka-range.js';
import { invalidTotal, lagSeconds } from './metrics.js';
import { decodeSignal, encodeSignal, type Signal } from './signal.js';
import { decodeMailEvent } from './validate.js';

// `mizugiwa detect`: the detector as a Kafka consumer group.
//
//   mail.events (keyed by client IP) ──stage 1──► mail.events.by-domain (keyed by domain / prefix / fleet)
//                                                         │
//                                                    stage 2
//   both stages ──► mail.detections (keyed by subject), mail.decisions (compacted, keyed by target)
//
// One consumer in group detect.group_id takes both input topics, so every member runs both stages
// for the partitions it holds; a key of either topic lives in exactly one member. Outputs of a
// batch are acknowledged by Kafka before the batch is committed (at-least-once; decision and
// detection ids are deterministic, so a replayed batch republishes the same records).
//
// A partition this process had not been consuming (start, restart after kill -9, a peer's
// partitions after it died) is first rebuilt: the records of the last horizon (the longest window
// plus the allowed lateness) before its committed offset are re-read with output muted. Decisions
// already made are known from the compacted decisions topic, read from the start before the first
// batch and followed afterwards, so a target never gets a second active decision.

export interface DetectServiceOptions {
  /** A bus to use (tests, `run`); default: createBus(cfg.bus). */
  bus: Bus;
  log?: Logger;
  /** Wall clock (ms); the service clamps event times that run ahead of it. */
  now?: () => number;
}

export class DetectService {
  readonly engine: DetectEngine;
  private readonly log: Logger;
  private readonly bus: Bus;
  private readonly cfg: Config;
  private readonly now: () => number;
  private producer?: Producer;
  private consumer?: Consumer;
  private view?: Consumer;
  private range?: KafkaRange;
  /** Next offset expected per topic:partition; a gap or a first sight triggers a rebuild. */
  private readonly nextOffset = new Map<string, bigint>();
  private readonly faultsLogged = new Set<string>();
  private out: { detections: Detection[]; decisions: Decision[]; signals: Signal[] } = {
    detections: [],
    decisions: [],
    signals: [],
  };
  private metricsTimer?: NodeJS.Timeout;
  private heldKey = '';
  private readonly lastBatchAt = new Map<string, number>();
  private readonly idleMs = 500;
  /** Alignment across members: each publishes its slowest busy partition's event time here. */
  private readonly wmTopic: string;
  private readonly memberId = `${hostname()}.${process.pid}.${randomUUID().slice(0, 8)}`;
  private readonly peers = new Map<string, { ms: number; seenAt: number }>();
  private peerView?: Consumer;
  private wmTimer?: NodeJS.Timeout;
  private flushTimer?: NodeJS.Timeout;
  private readonly maxWaitMs = 30_000;
  /** Counters for tests and the final log line. */
  readonly stats = { events: 0, signals: 0, invalid: 0, rebuilt: 0, decisions: 0, detections: 0 };

  constructor(cfg: Config, opts: DetectServiceOptions) {
    this.cfg = cfg;
    this.bus = opts.bus;
    this.log = opts.log ?? logger('detect');
    this.wmTopic = `${cfg.detect.internal_topic}.watermarks`;
    this.now = opts.now ?? Date.now;
    this.engine = new DetectEngine(
      cfg.detect,
      {
        detection: (d) => this.out.detections.push(d),
        decision: (d) => this.out.decisions.push(d),
        signal: (s) => this.out.signals.push(s),
      },
      { stages: 'split', log: this.log },
    );
  }

  private get topics() {
    return this.cfg.bus.topics;
  }

  async start(): Promise<void> {
    const t = this.topics;
    await this.bus.ensureTopics([
      { topic: t.events },
      { topic: this.cfg.detect.internal_topic },
      { topic: t.detections },
      { topic: t.decisions, compacted: true },
      { topic: t.dead_letter },
      { topic: this.wmTopic, partitions: 1, compacted: true },
    ]);
    this.producer = await this.bus.producer({ lingerMs: 5 });
    await this.followPeers();
    if (this.bus.kind === 'kafka') {
      this.range = new KafkaRange(this.cfg.bus);
      await this.range.connect();
    }
    await this.followDecisions();
    this.consumer = await this.bus.consumer({
      groupId: this.cfg.detect.group_id,
      topics: [t.events, this.cfg.detect.internal_topic],
      fromBeginning: true,
      // Partitions are handled concurrently so one that runs ahead in event time can wait for the
      // others (alignment, below) without stopping them.
      partitionsConsumedConcurrently: 32,
    });
    await this.consumer.run((msgs, ctx) => this.handle(msgs, ctx.topic, ctx.partition, ctx.heartbeat));
    this.metricsTimer = setInterval(() => this.engine.flushMetrics(), 5000);
    // Decisions waiting out dha_distributed's grace are due by log time; a domain that goes quiet
    // must not keep them waiting for its next signal. Outputs go out with the next batch.
    this.flushTimer = setInterval(() => this.engine.flush(), 1000);
    this.flushTimer.unref();
    this.metricsTimer.unref();
    this.wmTimer = setInterval(() => this.publishWatermark(), PEER_PUBLISH_MS);
    this.wmTimer.unref();
    this.log.info(
      {
        group: this.cfg.detect.group_id,
        topics: [t.events, this.cfg.detect.internal_topic],
        dry_run: this.cfg.detect.policy.dry_run,
      },
      'detect running',
    );
  }

  async close(): Promise<void> {
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    if (this.wmTimer) clearInterval(this.wmTimer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.consumer?.close();
    // Leaving: peers stop waiting for this member at once.
    await this.producer?.send(this.wmTopic, [{ key: this.memberId, value: null }]).catch(() => {});
    await this.peerView?.close();
    await this.view?.close();
    await this.producer?.close();
    await this.range?.close().catch(() => {});
    this.engine.flushMetrics();
    this.log.info({ ...this.stats }, 'detect stopped');
  }

  /**
   * Reads the compacted decisions topic from its start (blocking until the end as of now) and keeps
   * following it: decisions of other members, earlier runs and operators block duplicates.
   */
  private async followDecisions(): Promise<void> {
    const topic = this.topics.decisions;
    const ends = this.range ? await this.range.endOffsets(topic) : new Map<number, bigint>();
    const pending = new Map([...ends].filter(([, end]) => end > 0n));
    let caughtUp!: () => void;
    const ready = new Promise<void>((res) => {
      caughtUp = res;
    });
    if (pending.size === 0) caughtUp();
    this.view = await this.bus.consumer({
      groupId: `${this.cfg.detect.group_id}.decisions.${hostname()}.${process.pid}.${randomUUID().slice(0, 8)}`,
      topics: [topic],
      fromBeginning: true,
    });
    await this.view.run(async (msgs, ctx) => {
      for (const m of msgs) this.observeDecision(m);
      const end = pending.get(ctx.partition);
      const last = msgs.at(-1);
      if (end !== undefined && last !== undefined && BigInt(last.offset) + 1n >= end) {
        pending.delete(ctx.partition);
        if (pending.size === 0) caughtUp();
      }
    });
    await ready;
    this.log.info({ active: this.engine.policy.activeCount }, 'decisions read back');
  }

  private observeDecision(m: BusMessage | RangeMessage): void {
    if (m.value === null) {
      const key = m.key;
      if (key !== null) this.engine.policy.forget(key);
      return;
    }
    try {
      const d = JSON.parse(m.value.toString('utf8')) as Decision;
      if (typeof d.target === 'string' && typeof d.expires_at === 'string') this.engine.observeDecision(d);
    } catch {
      this.fault('decision_json', m, 'decisions');
    }
  }

  private async handle(
    msgs: BusMessage[],
    topic: string,
    partition: number,
    heartbeat: () => Promise<void>,
  ): Promise<void> {
    const first = msgs[0];
    if (first === undefined) return;
    const tp = `${topic}:${partition}`;
    const expected = this.nextOffset.get(tp);
    const firstOff = BigInt(first.offset);
    if (expected !== firstOff && this.cfg.detect.rebuild && this.range !== undefined) {
      await this.rebuild(topic, partition, expected, firstOff, heartbeat);
    }
    if (topic === this.topics.events) await this.align(partition, msgs, heartbeat);
    this.lastBatchAt.set(tp, Date.now());
    const dead: BusRecord[] = [];
    const wall = this.now();
    if (topic === this.topics.events) {
      for (const m of msgs) {
        const ev = decodeMailEvent(m.value);
        if (typeof ev === 'string') {
          dead.push(this.fault(ev, m, topic));
          continue;
        }
        this.engine.onEvent(ev, wall, partition);
        this.stats.events++;
      }
    } else {
      for (const m of msgs) {
        const s = m.value === null ? 'tombstone' : decodeSignal(m.value);
        if (typeof s === 'string') {
          dead.push(this.fault(s, m, topic));
          continue;
        }
        this.engine.onSignal(s, partition);
        this.stats.signals++;
      }
    }
    this.retain();
    const newest = this.engine.newestMs;
    if (Number.isFinite(newest)) lagSeconds.set(Math.max(0, (wall - newest) / 1000));
    await this.publish(dead);
    this.nextOffset.set(tp, BigInt(msgs.at(-1)!.offset) + 1n);
  }

  /**
   * Event-time alignment of the partitions this member holds: a batch that starts more than the
   * allowed lateness ahead of the slowest busy partition waits for it. During a catch-up of a
   * backlog, partitions of unequal density would otherwise drift hours apart, and fleet-wide
   * detectors downstream would see the fleet out of order. A partition without a batch for
   * `idleMs` does not hold others back; nothing waits longer than `maxWaitMs`.
   */
  private async align(partition: number, msgs: BusMessage[], heartbeat: () => Promise<void>): Promise<void> {
    if (!this.cfg.detect.window.align_partitions) return;
    const firstMs = firstEventMs(msgs);
    if (!Number.isFinite(firstMs)) return;
    const lateness = this.cfg.detect.window.allowed_lateness_s * 1000;
    const started = Date.now();
    let beat = started;
    for (;;) {
      const slowest = this.slowestBusy(partition);
      if (firstMs <= slowest + lateness || Date.now() - started > this.maxWaitMs) return;
      await new Promise((r) => setTimeout(r, 10));
      if (Date.now() - beat > 1000) {
        beat = Date.now();
        await heartbeat();
      }
    }
  }

  /** Follows the other members' watermarks (live only: a fresh group starting at the end). */
  private async followPeers(): Promise<void> {
    this.peerView = await this.bus.consumer({
      groupId: `${this.cfg.detect.group_id}.watermarks.${this.memberId}`,
      topics: [this.wmTopic],
      fromBeginning: false,
    });
    await this.peerView.run(async (msgs) => {
      for (const m of msgs) {
        // Read once each: a Kafka message decodes its key and makes its value when read.
        const key = m.key;
        if (key === null || key === this.memberId) continue;
        const value = m.value;
        if (value === null) {
          this.peers.delete(key);
          continue;
        }
        const ms = Number(value.toString('utf8'));
        if (Number.isFinite(ms)) this.peers.set(key, { ms, seenAt: Date.now() });
      }
    });
  }

  private publishWatermark(): void {
    const ms = this.slowestBusy(-1, false);
    if (!Number.isFinite(ms) || this.producer === undefined) return;
    this.producer
      .send(this.wmTopic, [{ key: this.memberId, value: String(ms) }])
      .catch((err: Error) => this.log.debug({ err }, 'watermark publish failed'));
  }

  /**
   * Newest event time of the slowest busy events partition: of this member's (except one) and,
   * with `peers`, of the other members that published within PEER_STALE_MS (a dead or idle member
   * stops holding others back).
   */
  private slowestBusy(except: number, peers = true): number {
    let min = this.slowestLocal(except);
    if (peers) {
      const now = Date.now();
      for (const [id, p] of this.peers) {
        if (now - p.seenAt > PEER_STALE_MS) this.peers.delete(id);
        else if (p.ms < min) min = p.ms;
      }
    }
    return min;
  }

  private slowestLocal(except: number): number {
    let min = Number.POSITIVE_INFINITY;
    const now = Date.now();
    for (const p of this.consumer?.assignment() ?? []) {
      if (p.topic !== this.topics.events || p.partition === except) continue;
      const last = this.lastBatchAt.get(`${p.topic}:${p.partition}`);
      if (last === undefined || now - last > this.idleMs) continue;
      const newest = this.engine.newestOf(p.partition);
      if (Number.isFinite(newest) && newest < min) min = newest;
    }
    return min;
  }

  private retain(): void {
    const held = this.consumer?.assignment() ?? [];
    const key = held.map((p) => `${p.topic}:${p.partition}`).join(',');
    if (key === this.heldKey || held.length === 0) return;
    this.heldKey = key;
    const of = (topic: string) => held.filter((p) => p.topic === topic).map((p) => p.partition);
    this.engine.retainPartitions(of(this.topics.events), of(this.cfg.detect.internal_topic));
  }

  /** Re-reads the horizon before `to` on one partition into the engine, output muted. */
  private async rebuild(
    topic: string,
    partition: number,
    known: bigint | undefined,
    to: bigint,
    heartbeat: () => Promise<void>,
  ): Promise<void> {
    const range = this.range!;
    const since = this.now() - horizonS(this.cfg.detect) * 1000;
    const at = (await range.offsetsAt(topic, since)).get(partition) ?? to;
    let from = at;
    // Records this process already took in (a short gap after a rebalance) are not counted twice.
    if (known !== undefined && known > from) from = known;
    if (from >= to) {
      this.nextOffset.set(`${topic}:${partition}`, to);
      return;
    }
    const started = Date.now();
    let n = 0;
    await range.read(topic, new Map([[partition, { from, to }]]), async (msgs) => {
      // Muted only for this synchronous loop: other partitions' handlers run between awaits.
      this.engine.muted = true;
      try {
        for (const m of msgs) {
          if (topic === this.topics.events) {
            const ev = decodeMailEvent(m.value);
            if (typeof ev !== 'string') this.engine.onEvent(ev, undefined, partition);
          } else if (m.value !== null) {
            const s = decodeSignal(m.value);
            if (typeof s !== 'string') this.engine.onSignal(s, partition);
          }
          n++;
        }
      } finally {
        this.engine.muted = false;
      }
      await heartbeat();
    });
    this.stats.rebuilt += n;
    this.log.info(
      { topic, partition, from: from.toString(), to: to.toString(), records: n, ms: Date.now() - started },
      'state rebuilt for partition',
    );
  }

  private fault(kind: string, m: BusMessage | RangeMessage, topic: string): BusRecord {
    this.stats.invalid++;
    invalidTotal.inc({ fault: kind });
    if (!this.faultsLogged.has(kind)) {
      this.faultsLogged.add(kind);
      this.log.warn(
        {
          fault: kind,
          topic,
          partition: m.partition,
          offset: m.offset,
          dead_letter: this.topics.dead_letter,
        },
        'invalid message sent to the dead-letter topic (logged once per kind of fault; see mizugiwa_detect_invalid_messages_total)',
      );
    }
    return {
      key: m.key,
      value: m.value ?? '',
      headers: {
        fault: kind,
        source_topic: topic,
        source_partition: String(m.partition),
        source_offset: m.offset,
      },
    };
  }

  /** Sends this batch's output and dead letters; resolves once the bus acknowledged all of it. */
  private async publish(dead: BusRecord[]): Promise<void> {
    const p = this.producer!;
    const { detections, decisions, signals } = this.out;
    this.out = { detections: [], decisions: [], signals: [] };
    const sends: Promise<void>[] = [];
    if (signals.length > 0) {
      sends.push(
        p.send(
          this.cfg.detect.internal_topic,
          signals.map((s) => ({ key: s.k, value: encodeSignal(s) })),
        ),
      );
    }
    if (detections.length > 0) {
      this.stats.detections += detections.length;
      sends.push(
        p.send(
          this.topics.detections,
          detections.map((d) => ({ key: d.subject, value: JSON.stringify(d) })),
        ),
      );
    }
    if (decisions.length > 0) {
      this.stats.decisions += decisions.length;
      sends.push(
        p.send(
          this.topics.decisions,
          decisions.map((d) => ({ key: d.target, value: JSON.stringify(d) })),
        ),
      );
      for (const d of decisions) {
        this.log.info(
          {
            decision_id: d.id,
            target: d.target,
            detector: d.detector,
            expires_at: d.expires_at,
            reason: d.reason,
          },
          'decision',
        );
      }
    }
    if (dead.length > 0) sends.push(p.send(this.topics.dead_letter, dead));
    await Promise.all(sends);
  }
}

const PEER_PUBLISH_MS = 250;
const PEER_STALE_MS = 3000;

/** Event time of the first message that has one (NaN when none does). */
function firstEventMs(msgs: BusMessage[]): number {
  for (const m of msgs) {
    if (m.value === null) continue;
    const at = m.value.indexOf('"ts":"');
    if (at < 0) continue;
    const end = m.value.indexOf('"', at + 6);
    const ms = Date.parse(m.value.toString('latin1', at + 6, end));
    if (Number.isFinite(ms)) return ms;
  }
  return Number.NaN;
}
