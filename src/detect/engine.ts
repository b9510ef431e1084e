import type { Decision } from '../decision/decision.js';
import type { MailEvent } from '../event/mail-event.js';
import { type Logger, logger } from '../log/logger.js';
import type { DetectConfig } from './config.js';
import { type DetectSink, Emitter } from './emit.js';
import { FleetStage } from './fleet-stage.js';
import { droppedTotal, eventsTotal, lateTotal, stateKeys } from './metrics.js';
import { DecisionPolicy } from './policy/policy.js';
import type { Signal } from './signal.js';
import { SourceStage } from './source-stage.js';
import { EventClock } from './window/event-time.js';

export type { DetectSink } from './emit.js';

/**
 * both: the stages talk in-process (replay, `run`); split: both run here but signals leave through
 * `sink.signal` and come back through `onSignal` (the service, via the re-keyed topic); source /
 * fleet: one stage only.
 */
export type Stages = 'both' | 'split' | 'source' | 'fleet';

export interface EngineOptions {
  stages?: Stages;
  log?: Logger;
}

/**
 * The detector, independent of any transport: events in (`onEvent`), detections and decisions
 * out (the sink). Time is event time; nothing here reads the wall clock unless the caller passes
 * one (the service does, to clamp clocks that run ahead).
 *
 * With stages `both`, stage-1 signals go straight to stage 2 in-process. With `source`, they go
 * to `sink.signal` (the service publishes them to the internal topic, keyed by domain/prefix),
 * and a `fleet` engine elsewhere takes them in through `onSignal`.
 */
export class DetectEngine {
  readonly policy: DecisionPolicy;
  readonly emitter: Emitter;
  readonly source?: SourceStage;
  readonly fleet?: FleetStage;
  /** One clock per input partition: a partition that runs behind others is not "late". */
  private readonly clocks: EventClock[] = [];
  private readonly fleetClocks: EventClock[] = [];
  private readonly latenessMs: number;
  /** Events without a usable time; behind the watermark (counted); older than any window (dropped). */
  noTime = 0;
  late = 0;
  lateSignals = 0;
  dropped = 0;
  /** Input partition of the event being processed: in-process signals keep their stage-1 partition's clock. */
  private partition = 0;
  /** How far behind the newest event time an event can still count in some window. */
  readonly horizonMs: number;
  events = 0;
  signals = 0;

  constructor(
    readonly cfg: DetectConfig,
    sink: DetectSink,
    opts: EngineOptions = {},
  ) {
    const log = opts.log ?? logger('detect');
    const stages = opts.stages ?? 'both';
    this.policy = new DecisionPolicy(cfg.policy, log);
    this.emitter = new Emitter(this.policy, sink, cfg.policy.extend_min_s * 1000, log);
    this.latenessMs = cfg.window.allowed_lateness_s * 1000;
    this.horizonMs = horizonS(cfg) * 1000;
    if (stages !== 'source') this.fleet = new FleetStage(cfg, this.emitter);
    if (stages !== 'fleet') {
      const toFleet =
        stages === 'both'
          ? (s: Signal) => this.onSignal(s, this.partition)
          : (s: Signal) => {
              if (!this.emitter.muted) sink.signal?.(s);
            };
      this.source = new SourceStage(cfg, this.emitter, toFleet);
    }
  }

  /** While muted (state rebuild after a restart), state is updated but nothing is emitted. */
  set muted(v: boolean) {
    this.emitter.muted = v;
  }

  get muted(): boolean {
    return this.emitter.muted;
  }

  /**
   * Takes one event from input partition `partition` (0 when there is one input); returns false when
   * it was not counted (no usable time, or older than any window of its partition still holds).
   */
  onEvent(ev: MailEvent, wallMs?: number, partition = 0): boolean {
    const src = this.source;
    if (src === undefined) return false;
    const clock = this.clockOf(this.clocks, partition);
    const ms = clock.eventMs(ev.ts, ev.host, wallMs);
    if (!Number.isFinite(ms)) {
      this.noTime++;
      return false;
    }
    if (ms < clock.watermark && !this.admitLate(clock, ms, 'source')) return false;
    this.partition = partition;
    clock.observe(ms);
    const wm = this.watermarkOf(this.clocks);
    this.events++;
    src.onEvent(ev, ms, wm);
    this.emitter.sweep(wm);
    return true;
  }

  /** Stage-2 input: a signal from stage 1 (in-process, or read from the internal topic's `partition`). */
  onSignal(s: Signal, partition = 0): boolean {
    const fleet = this.fleet;
    if (fleet === undefined) return false;
    const clock = this.clockOf(this.fleetClocks, partition);
    if (s.ms < clock.watermark && !this.admitLate(clock, s.ms, 'fleet')) return false;
    clock.observe(s.ms);
    const wm = this.watermarkOf(this.fleetClocks);
    this.signals++;
    fleet.onSignal(s, wm);
    this.emitter.sweep(wm);
    return true;
  }

  /**
   * Behind its partition's watermark: still counted into its own buckets while some window holds
   * them (a lagging shipper must not blind the detector); dropped beyond the horizon.
   */
  private admitLate(clock: EventClock, ms: number, stage: 'source' | 'fleet'): boolean {
    if (stage === 'source') this.late++;
    else this.lateSignals++;
    lateTotal.inc({ stage });
    if (ms >= clock.newest - this.horizonMs) return true;
    this.dropped++;
    droppedTotal.inc({ stage: 'horizon' });
    return false;
  }

  private clockOf(clocks: EventClock[], partition: number): EventClock {
    let c = clocks[partition];
    if (c === undefined) {
      const w = this.cfg.window;
      c = new EventClock(this.latenessMs, w.host_skew_s, w.max_future_s * 1000);
      clocks[partition] = c;
    }
    return c;
  }

  /** Forgets the clocks of partitions this process no longer holds, so they do not hold the watermark back. */
  retainPartitions(events: readonly number[], signals: readonly number[]): void {
    const keep = (clocks: EventClock[], ps: readonly number[]) => {
      for (let i = 0; i < clocks.length; i++) if (!ps.includes(i)) delete clocks[i];
    };
    keep(this.clocks, events);
    keep(this.fleetClocks, signals);
  }

  /** The watermark of the stage: the smallest over its partitions (Flink's rule for parallel inputs). */
  private watermarkOf(clocks: EventClock[]): number {
    let wm = Number.POSITIVE_INFINITY;
    for (const c of clocks) if (c !== undefined && c.watermark < wm) wm = c.watermark;
    return wm;
  }

  /** End of input (replay, tests): decisions still waiting out a grace period whose log time has passed. */
  flush(): void {
    this.fleet?.distributed.flush(this.newestMs);
  }

  /** A decision read back from the decisions topic (see DecisionPolicy.observe). */
  observeDecision(d: Decision): void {
    this.policy.observe(d);
  }

  /** Newest event time of one stage-1 input partition (-Infinity when none seen). */
  newestOf(partition: number): number {
    return this.clocks[partition]?.newest ?? Number.NEGATIVE_INFINITY;
  }

  /** Newest event time seen by either stage (ms; -Infinity before any). */
  get newestMs(): number {
    let n = Number.NEGATIVE_INFINITY;
    for (const c of [...this.clocks, ...this.fleetClocks]) if (c !== undefined && c.newest > n) n = c.newest;
    return n;
  }

  /** Publishes counters that are cheaper to set in batches than per event. */
  flushMetrics(): void {
    // Expired decisions leave the active set even when no new decision comes to trigger the scan.
    if (Number.isFinite(this.newestMs)) this.policy.expire(this.newestMs);
    eventsTotal.inc({ stage: 'source' }, this.events);
    eventsTotal.inc({ stage: 'fleet' }, this.signals);
    this.events = 0;
    this.signals = 0;
    stateKeys.set({ table: 'source' }, this.source?.table.size ?? 0);
    stateKeys.set({ table: 'prefix' }, this.fleet?.prefix.table.size ?? 0);
    stateKeys.set({ table: 'domain' }, this.fleet?.distributed.size ?? 0);
    stateKeys.set({ table: 'decisions' }, this.policy.activeCount);
  }
}

/** The longest window any detector keeps, plus the allowed lateness: how much history rebuilds need. */
export function horizonS(cfg: DetectConfig): number {
  return (
    Math.max(
      cfg.window.bucket_s * cfg.window.buckets,
      cfg.dha_prefix.window_s,
      cfg.dha_distributed.window_s,
      cfg.bounce_storm.window_s,
    ) + cfg.window.allowed_lateness_s
  );
}
