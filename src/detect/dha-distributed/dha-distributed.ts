import type { DetectConfig } from '../config.js';
import type { Emitter } from '../emit.js';
import { droppedTotal, untrackedTotal } from '../metrics.js';
import type { Signal } from '../signal.js';

interface SourceTally {
  unk: number;
  /** Accepted messages of the source in its stage-1 window, as of its latest signal. */
  acc: number;
  firstMs: number;
  lastMs: number;
  ids: string[];
  hosts: string[];
}

/** One recipient domain: its unknown-recipient counts per bucket, their baseline and the sources seen. */
interface DomainState {
  ring: Uint32Array;
  epoch: number;
  /** Exponentially weighted mean of unknown recipients per bucket, over buckets without a harvest. */
  baseline: number;
  /** Buckets folded into the baseline (its warm-up). */
  learned: number;
  /** First bucket the domain was seen in: nothing before it is folded. */
  first: number;
  /** hot[b % B] === b: bucket b ended a rate window above the threshold (a harvest was under way). */
  hot: Int32Array;
  sources: Map<string, SourceTally>;
  /** Sources that qualify, decided once log time passes the value (their last probe + grace). */
  pending: Map<string, number>;
  /** Newest signal time of the domain. */
  newestMs: number;
}

/**
 * dha_distributed, per recipient domain across the whole fleet (stage 2, keyed by domain): the
 * unknown-recipient count of the window against the domain's own baseline. While a harvest is
 * under way, every source with a few unknown recipients to the domain and no accepted mail takes
 * part — even one or two probes each — and is decided with a lower confidence than dha_source.
 */
export class DhaDistributed {
  private readonly domains = new Map<string, DomainState>();
  private readonly buckets: number;
  private readonly bucketMs: number;
  private readonly windowMs: number;
  private readonly alpha: number;
  private readonly recent: number;
  /** Buckets a late signal may still reach (allowed lateness), before a bucket is final. */
  private readonly lateBuckets: number;

  constructor(
    private readonly cfg: DetectConfig['dha_distributed'],
    private readonly emitter: Emitter,
    latenessS: number,
    private readonly maxDomains = 100_000,
  ) {
    this.bucketMs = cfg.bucket_s * 1000;
    this.buckets = Math.max(1, Math.ceil(cfg.window_s / cfg.bucket_s));
    this.windowMs = this.buckets * this.bucketMs;
    this.alpha = 1 - 2 ** (-cfg.bucket_s / cfg.baseline_half_life_s);
    this.lateBuckets = Math.min(Math.ceil(latenessS / cfg.bucket_s), this.buckets - 2);
    this.recent = Math.min(this.buckets, Math.max(1, Math.ceil(cfg.rate_window_s / cfg.bucket_s)));
  }

  get size(): number {
    return this.domains.size;
  }

  onSignal(s: Signal, domain: string): void {
    if (!this.cfg.enabled || s.ip === undefined) return;
    const bucket = Math.floor(s.ms / this.bucketMs);
    let d = this.domains.get(domain);
    if (d === undefined) {
      if (this.domains.size >= this.maxDomains) {
        untrackedTotal.inc({ table: 'domain' });
        return;
      }
      d = {
        ring: new Uint32Array(this.buckets),
        epoch: bucket,
        first: bucket,
        baseline: 0,
        learned: 0,
        hot: new Int32Array(this.buckets).fill(-1),
        sources: new Map(),
        pending: new Map(),
        newestMs: s.ms,
      };
      this.domains.set(domain, d);
    }
    if (bucket <= d.epoch - this.buckets) {
      droppedTotal.inc({ stage: 'domain' });
      return;
    }
    if (s.ms > d.newestMs) d.newestMs = s.ms;
    if (s.t === 'a') {
      // The source sends real mail: not a harvester, whatever it probed.
      const known = d.sources.get(s.ip);
      if (known !== undefined) known.acc = Math.max(known.acc, s.acc ?? 1, 1);
      this.decideDue(d, domain, s.ms);
      return;
    }
    this.advance(d, bucket, s.ms);
    d.ring[bucket % this.buckets]!++;

    let src = d.sources.get(s.ip);
    if (src === undefined || s.ms - src.firstMs > this.windowMs) {
      if (src === undefined && d.sources.size >= this.cfg.max_sources_per_domain) {
        const oldest = d.sources.keys().next().value;
        if (oldest !== undefined) d.sources.delete(oldest);
      }
      src = { unk: 0, acc: s.acc ?? 0, firstMs: s.ms, lastMs: s.ms, ids: [], hosts: [] };
      d.sources.delete(s.ip);
      d.sources.set(s.ip, src);
    }
    src.unk++;
    src.acc = s.acc ?? src.acc;
    if (s.ms > src.lastMs) src.lastMs = s.ms;
    if (s.id !== undefined && src.ids.length < 5) src.ids.push(s.id);
    if (!src.hosts.includes(s.h) && src.hosts.length < 16) src.hosts.push(s.h);

    // Judged at the signal's own bucket, not at the newest one: signals from stage-1 partitions
    // that run behind others still land in (and light up) the right part of the window.
    const total = this.total(d, bucket, this.recent);
    const threshold = this.threshold(d);
    if (total >= threshold && !this.isHot(d, bucket)) {
      const episode = !this.hotNear(d, bucket);
      d.hot[bucket % this.buckets] = bucket;
      if (episode || !this.emitter.quiet('dha_distributed', domain, s.ms)) {
        this.emitter.fire({
          detector: 'dha_distributed',
          subject: domain,
          subjectKind: 'domain',
          reason: `${total} unknown recipients at ${domain} within ${this.cfg.rate_window_s} s, baseline ${this.baselineWindow(d).toFixed(1)}: harvest under way`,
          confidence: this.cfg.confidence,
          evidence: {
            counts: {
              user_unknown: total,
              user_unknown_window: this.total(d, d.epoch, this.buckets),
              sources: d.sources.size,
            },
            window_s: this.cfg.rate_window_s,
            threshold: { unknown: threshold, factor: this.cfg.factor, baseline: this.baselineWindow(d) },
            sample_event_ids: src.ids.slice(0, 5),
          },
          atMs: s.ms,
          windowMs: this.windowMs,
        });
      }
      // Sources that probed before the harvest was recognized take part too.
      for (const [ip, t] of d.sources) this.checkSource(d, domain, ip, t, s.ms);
    } else if (this.hotNear(d, bucket)) {
      this.checkSource(d, domain, s.ip, src, s.ms);
    }
    this.decideDue(d, domain, s.ms);
  }

  /** Decides the pending sources whose grace has passed and that still qualify. */
  private decideDue(d: DomainState, domain: string, atMs: number): void {
    if (d.pending.size === 0) return;
    for (const [ip, due] of d.pending) {
      if (due > d.newestMs) continue;
      d.pending.delete(ip);
      const t = d.sources.get(ip);
      if (t === undefined || !this.qualifies(d, t)) continue;
      this.fireSource(domain, ip, t, Math.max(atMs, due));
    }
  }

  /** End of input (replay): sources still in their grace are decided if log time has passed it. */
  flush(newestMs: number): void {
    for (const [domain, d] of this.domains) {
      if (newestMs > d.newestMs) d.newestMs = newestMs;
      this.decideDue(d, domain, d.newestMs);
    }
  }

  private isHot(d: DomainState, bucket: number): boolean {
    return d.hot[bucket % this.buckets] === bucket;
  }

  /** A hot bucket within a window of `bucket` (either side): the harvest the source's probes belong to. */
  private hotNear(d: DomainState, bucket: number): boolean {
    for (let i = 0; i < this.buckets; i++) {
      const h = d.hot[i]!;
      if (h >= 0 && Math.abs(h - bucket) < this.buckets) return true;
    }
    return false;
  }

  private qualifies(d: DomainState, t: SourceTally): boolean {
    if (t.unk < this.cfg.source_min_unknown || t.acc > this.cfg.source_max_accepted) return false;
    return this.hotNear(d, Math.floor(t.lastMs / this.bucketMs));
  }

  /**
   * A qualifying source is decided only after `grace_s` of log time past its last probe: long
   * enough for the message its session may still be delivering to show (an 'a' signal clears it).
   */
  private checkSource(d: DomainState, _domain: string, ip: string, t: SourceTally, _atMs: number): void {
    if (!this.qualifies(d, t)) return;
    const due = t.lastMs + this.cfg.grace_s * 1000;
    if ((d.pending.get(ip) ?? Number.NEGATIVE_INFINITY) < due) d.pending.set(ip, due);
  }

  private fireSource(domain: string, ip: string, t: SourceTally, atMs: number): void {
    if (this.emitter.quiet('dha_distributed', ip, atMs)) return;
    this.emitter.fire({
      detector: 'dha_distributed',
      subject: ip,
      subjectKind: 'ip',
      target: ip,
      reply: this.cfg.reply,
      reason: `${t.unk} unknown recipients at ${domain} and no accepted mail from ${ip} during a harvest of ${domain}`,
      confidence: this.cfg.confidence,
      evidence: {
        counts: { user_unknown: t.unk, accepted_messages: t.acc },
        window_s: this.cfg.window_s,
        threshold: {
          source_min_unknown: this.cfg.source_min_unknown,
          source_max_accepted: this.cfg.source_max_accepted,
        },
        sample_event_ids: t.ids.slice(0, 5),
        hosts: t.hosts.slice(),
      },
      // Log time at which the grace ran out (the signal that showed it): never before the evidence.
      atMs,
      windowMs: this.windowMs,
    });
  }

  /** Moves the domain's ring to `bucket`, folding completed buckets into the baseline. */
  /**
   * Moves the domain's ring to `bucket`. A bucket folds into the baseline only once no late signal
   * can reach it any more (allowed lateness behind the newest), so partitions running a little
   * behind others still count in the baseline.
   */
  private advance(d: DomainState, bucket: number, ms: number): void {
    if (bucket <= d.epoch) return;
    const steps = bucket - d.epoch;
    const loops = Math.min(steps, this.buckets + this.lateBuckets + 1);
    for (let i = 1; i <= loops; i++) {
      const b = d.epoch + i;
      const final = b - 1 - this.lateBuckets;
      if (final >= d.first) this.fold(d, i > this.buckets ? 0 : d.ring[final % this.buckets]!, final);
      d.ring[b % this.buckets] = 0;
    }
    if (steps > loops) {
      // A long gap of empty buckets: decay the baseline in one step.
      d.baseline *= (1 - this.alpha) ** (steps - loops);
      d.learned += steps - loops;
    }
    d.epoch = bucket;
    // Sources whose window has passed leave the domain (Map order is insertion order: oldest first).
    for (const [ip, t] of d.sources) {
      if (ms - t.lastMs <= this.windowMs) break;
      d.sources.delete(ip);
    }
  }

  private fold(d: DomainState, count: number, bucket: number): void {
    const warm = this.warm(d);
    if (warm && this.isHot(d, bucket)) return;
    // Clipped once warm: a harvest ramping up slowly must not raise its own bar.
    const x = warm ? Math.min(count, Math.max(1, this.perBucket(d)) * this.cfg.factor) : count;
    d.baseline += this.alpha * (x - d.baseline);
    d.learned++;
  }

  /** Unknown recipients in the n buckets ending at `bucket` (those the ring still holds). */
  private total(d: DomainState, bucket: number, n: number): number {
    let sum = 0;
    const oldest = d.epoch - this.buckets;
    for (let b = bucket; b > bucket - n && b > oldest; b--) sum += d.ring[b % this.buckets]!;
    return sum;
  }

  /** Bias-corrected EWMA of unknown recipients per bucket. */
  private perBucket(d: DomainState): number {
    const weight = 1 - (1 - this.alpha) ** d.learned;
    return weight > 0 ? d.baseline / weight : 0;
  }

  /**
   * The baseline for what the rate window holds (only the buckets seen so far while the domain's
   * history is shorter than it).
   */
  private baselineWindow(d: DomainState): number {
    return this.perBucket(d) * Math.min(this.recent, d.learned + 1);
  }

  private warm(d: DomainState): boolean {
    return d.learned * this.cfg.bucket_s >= this.cfg.warmup_s;
  }

  private threshold(d: DomainState): number {
    const floor = this.warm(d)
      ? this.cfg.min_unknown
      : Math.max(this.cfg.min_unknown, this.cfg.cold_min_unknown);
    return Math.max(floor, this.cfg.factor * this.baselineWindow(d));
  }

  /** Forgets domains idle for longer than a window (their baseline goes with them). */
  sweep(watermarkMs: number): void {
    const b = Math.floor(watermarkMs / this.bucketMs);
    for (const [name, d] of this.domains) {
      if (b - d.epoch > this.buckets * 24) this.domains.delete(name);
    }
  }
}
