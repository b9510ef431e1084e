import type { DetectConfig } from '../config.js';
import type { Emitter } from '../emit.js';
import { droppedTotal } from '../metrics.js';
import type { Signal } from '../signal.js';

const KINDS = ['n', 'x', 'b'] as const;
const LABEL: Record<(typeof KINDS)[number], string> = {
  n: 'inbound null-sender DSNs',
  x: 'double bounces to postmaster',
  b: 'bounces generated here',
};

/**
 * bounce_storm, fleet-wide (stage 2, one key): inbound null-sender DSNs (backscatter of forged
 * senders — the reflected DDoS), double bounces to postmaster and our own bounce generation, each
 * against its own baseline. Always a detection; decisions only against the top DSN sources, and
 * only when decide_top_n > 0.
 */
export class BounceStorm {
  /** Buckets in the window compared with the baseline. */
  private readonly buckets: number;
  /** Buckets kept: an hour or the window, whichever is longer, so late signals still find theirs. */
  private readonly ringLen: number;
  private readonly bucketMs: number;
  private readonly alpha: number;
  private readonly rings = KINDS.map(() => new Uint32Array(0));
  private readonly baseline = KINDS.map(() => 0);
  private readonly storming = KINDS.map(() => false);
  /** Buckets folded into each baseline, for the bias correction of a young EWMA. */
  private readonly learned = KINDS.map(() => 0);
  private epoch = Number.NEGATIVE_INFINITY;
  private first = Number.POSITIVE_INFINITY;
  private readonly lateBuckets: number;
  private readonly sources = new Map<string, { n: number; lastMs: number; hosts: Set<string> }>();
  private readonly ids: string[] = [];
  private readonly hosts = new Set<string>();

  constructor(
    private readonly cfg: DetectConfig['bounce_storm'],
    private readonly emitter: Emitter,
    latenessS: number,
  ) {
    this.bucketMs = cfg.bucket_s * 1000;
    this.buckets = Math.max(1, Math.ceil(cfg.window_s / cfg.bucket_s));
    this.alpha = 1 - 2 ** (-cfg.bucket_s / cfg.baseline_half_life_s);
    this.ringLen = Math.max(this.buckets, Math.ceil(3600 / cfg.bucket_s));
    this.lateBuckets = Math.min(Math.ceil(latenessS / cfg.bucket_s), this.ringLen - 2);
    for (let i = 0; i < KINDS.length; i++) this.rings[i] = new Uint32Array(this.ringLen);
  }

  onSignal(s: Signal): void {
    if (!this.cfg.enabled) return;
    const k = KINDS.indexOf(s.t as (typeof KINDS)[number]);
    if (k < 0) return;
    const bucket = Math.floor(s.ms / this.bucketMs);
    if (this.epoch === Number.NEGATIVE_INFINITY) {
      this.epoch = bucket;
      this.first = bucket;
    }
    if (bucket <= this.epoch - this.ringLen) {
      droppedTotal.inc({ stage: 'bounce' });
      return;
    }
    this.advance(bucket);
    const ring = this.rings[k]!;
    ring[bucket % this.ringLen]!++;
    this.hosts.add(s.h);
    if (s.id !== undefined) {
      if (this.ids.length >= 5) this.ids.shift();
      this.ids.push(s.id);
    }
    if (s.ip !== undefined && s.t === 'n') {
      const src = this.sources.get(s.ip);
      if (src === undefined) this.sources.set(s.ip, { n: 1, lastMs: s.ms, hosts: new Set([s.h]) });
      else {
        src.n++;
        src.lastMs = Math.max(src.lastMs, s.ms);
        src.hosts.add(s.h);
      }
    }

    // The window ending at this signal's bucket: a late signal is judged where it belongs.
    let count = 0;
    const oldest = this.epoch - this.ringLen;
    for (let b = bucket; b > bucket - this.buckets && b > oldest; b--) count += ring[b % this.ringLen]!;
    const weight = 1 - (1 - this.alpha) ** this.learned[k]!;
    const base = weight > 0 ? (this.baseline[k]! / weight) * this.buckets : 0;
    const threshold = Math.max(this.cfg.min_count, this.cfg.factor * base);
    if (count < threshold) {
      if (count < threshold / 2) this.storming[k] = false;
      return;
    }
    this.storming[k] = true;
    const top = this.topSources(10);
    const det = this.emitter.fire({
      detector: 'bounce_storm',
      subject: `fleet:${KINDS[k]}`,
      subjectKind: 'fleet',
      reason: `${count} ${LABEL[KINDS[k]!]} within ${this.cfg.window_s} s, baseline ${base.toFixed(1)}`,
      confidence: this.cfg.confidence,
      evidence: {
        counts: Object.fromEntries([[KINDS[k]!, count], ...top.map(([ip, n]) => [`source:${ip}`, n])]),
        window_s: this.cfg.window_s,
        threshold: { count: threshold, factor: this.cfg.factor, baseline: base },
        sample_event_ids: [...this.ids],
        hosts: [...this.hosts],
      },
      atMs: s.ms,
      windowMs: this.buckets * this.bucketMs,
    });
    if (det === undefined || this.cfg.decide_top_n === 0 || KINDS[k] !== 'n') return;
    for (const [ip, n] of this.topSources(this.cfg.decide_top_n)) {
      if (n < this.cfg.source_min) break;
      this.emitter.fire({
        detector: 'bounce_storm',
        subject: ip,
        subjectKind: 'ip',
        target: ip,
        reply: this.cfg.reply,
        reason: `${n} null-sender DSNs from ${ip} within ${this.cfg.window_s} s during a bounce storm`,
        confidence: this.cfg.confidence,
        evidence: {
          counts: { dsn: n, storm_total: count },
          window_s: this.cfg.window_s,
          threshold: { source_min: this.cfg.source_min, decide_top_n: this.cfg.decide_top_n },
          sample_event_ids: [...this.ids],
          hosts: [...(this.sources.get(ip)?.hosts ?? [])],
        },
        atMs: s.ms,
        windowMs: this.buckets * this.bucketMs,
      });
    }
  }

  private topSources(n: number): [string, number][] {
    const all: [string, number][] = [];
    for (const [ip, s] of this.sources) all.push([ip, s.n]);
    all.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    return all.slice(0, n);
  }

  /** Moves the rings to `bucket`; a bucket folds into its baseline once the allowed lateness has passed it. */
  private advance(bucket: number): void {
    if (bucket <= this.epoch) return;
    const steps = bucket - this.epoch;
    const n = this.ringLen;
    const loops = Math.min(steps, n + this.lateBuckets + 1);
    for (let k = 0; k < KINDS.length; k++) {
      const ring = this.rings[k]!;
      for (let i = 1; i <= loops; i++) {
        const b = this.epoch + i;
        const final = b - 1 - this.lateBuckets;
        if (final >= this.first && !this.storming[k]) {
          this.baseline[k]! += this.alpha * ((i > n ? 0 : ring[final % n]!) - this.baseline[k]!);
          this.learned[k]!++;
        }
        ring[b % n] = 0;
      }
      if (steps > loops && !this.storming[k]) {
        this.baseline[k]! *= (1 - this.alpha) ** (steps - loops);
        this.learned[k]! += steps - loops;
      }
    }
    const oldestMs = (bucket - n + 1) * this.bucketMs;
    for (const [ip, s] of this.sources) if (s.lastMs < oldestMs) this.sources.delete(ip);
    if (steps >= this.buckets) this.hosts.clear();
    this.epoch = bucket;
  }
}
