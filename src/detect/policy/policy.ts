import type { Decision, DetectorName, Evidence } from '../../decision/decision.js';
import type { Logger } from '../../log/logger.js';
import type { DetectConfig } from '../config.js';
import { decisionId } from '../ids.js';
import { activeDecisions, capReachedTotal, decisionsTotal, refusedTotal } from '../metrics.js';
import { Whitelist } from './whitelist.js';

// The one place that turns a detection into a decision: whitelist, dry-run, the safety valves
// (active decisions, new decisions per minute), one active decision per target (extend, never
// duplicate), repeat-offender escalation, and the 4xx reply and expiry every decision carries.
// Time is log time throughout: created_at is the time of the triggering event.

export interface DecisionRequest {
  detector: DetectorName;
  target: string;
  reason: string;
  confidence: number;
  evidence: Evidence;
  reply: string;
  /** Log time of the triggering event. */
  atMs: number;
  /** Start of the window the detection belongs to; part of the deterministic decision id. */
  windowStartMs: number;
  detectionId: string;
}

export type Refusal = 'whitelisted' | 'dry_run' | 'cap_active' | 'cap_rate';

export type PolicyOutcome =
  | { kind: 'new' | 'extended'; decision: Decision }
  /** Already active and the extension would not move expiry enough: nothing to publish. */
  | { kind: 'unchanged'; decision: Decision }
  | { kind: 'refused'; refusal: Refusal };

interface Offender {
  count: number;
  lastMs: number;
}

export class DecisionPolicy {
  private readonly whitelist: Whitelist;
  private readonly active = new Map<string, Decision>();
  private readonly activeExpiry = new Map<string, number>();
  private readonly offenders = new Map<string, Offender>();
  private minute = -1;
  private newThisMinute = 0;
  private readonly loudAt = new Map<string, number>();
  private lastExpiryScan = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly cfg: DetectConfig['policy'],
    private readonly log: Logger,
  ) {
    this.whitelist = new Whitelist(cfg.whitelist);
  }

  get activeCount(): number {
    return this.active.size;
  }

  activeFor(target: string): Decision | undefined {
    return this.active.get(target);
  }

  isWhitelisted(target: string): boolean {
    return this.whitelist.covers(target);
  }

  decide(req: DecisionRequest): PolicyOutcome {
    if (this.whitelist.covers(req.target)) return this.refuse('whitelisted');
    if (this.cfg.dry_run) return this.refuse('dry_run');
    this.expire(req.atMs);

    const current = this.active.get(req.target);
    if (current !== undefined) {
      const offense = current.offense ?? 1;
      const expiresMs = req.atMs + this.durationMs(offense);
      const currentExpiry = this.activeExpiry.get(req.target) ?? 0;
      if (expiresMs < currentExpiry + this.cfg.extend_min_s * 1000)
        return { kind: 'unchanged', decision: current };
      const extended: Decision = {
        ...current,
        expires_at: iso(expiresMs),
        updated_at: iso(req.atMs),
        detection_id: req.detectionId,
        evidence: req.evidence,
        confidence: Math.max(current.confidence, req.confidence),
      };
      this.remember(extended, expiresMs);
      this.offenders.set(req.target, { count: offense, lastMs: req.atMs });
      decisionsTotal.inc({ detector: extended.detector, kind: 'extended' });
      return { kind: 'extended', decision: extended };
    }

    if (this.active.size >= this.cfg.max_active) return this.cap('cap_active', req);
    const minute = Math.floor(req.atMs / 60_000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.newThisMinute = 0;
    }
    if (this.newThisMinute >= this.cfg.max_new_per_minute) return this.cap('cap_rate', req);
    this.newThisMinute++;

    const prior = this.offenders.get(req.target);
    const offense =
      prior !== undefined && req.atMs - prior.lastMs <= this.cfg.repeat_memory_s * 1000 ? prior.count + 1 : 1;
    const expiresMs = req.atMs + this.durationMs(offense);
    const decision: Decision = {
      id: decisionId(req.target, req.detector, req.windowStartMs),
      target: req.target,
      action: 'tempfail',
      reply: req.reply,
      detector: req.detector,
      reason: req.reason,
      confidence: req.confidence,
      evidence: req.evidence,
      created_at: iso(req.atMs),
      expires_at: iso(expiresMs),
      state: 'active',
      origin: req.detector,
      detection_id: req.detectionId,
      offense,
    };
    this.remember(decision, expiresMs);
    this.offenders.set(req.target, { count: offense, lastMs: req.atMs });
    decisionsTotal.inc({ detector: req.detector, kind: 'new' });
    return { kind: 'new', decision };
  }

  /**
   * A decision read back from the decisions topic (another instance, an earlier run, an operator):
   * an active one blocks duplicates and counts for the caps; lifted/expired ones free the target.
   */
  observe(d: Decision): void {
    const expiresMs = Date.parse(d.expires_at);
    if (d.state !== 'active' || !Number.isFinite(expiresMs)) {
      if (this.active.get(d.target)?.id === d.id || d.state === 'lifted') this.forget(d.target);
      return;
    }
    const current = this.activeExpiry.get(d.target);
    if (current === undefined || expiresMs >= current) this.remember(d, expiresMs);
    const createdMs = Date.parse(d.created_at);
    const prior = this.offenders.get(d.target);
    const offense = d.offense ?? 1;
    if (prior === undefined || prior.count < offense) {
      this.offenders.set(d.target, {
        count: offense,
        lastMs: Number.isFinite(createdMs) ? createdMs : expiresMs,
      });
    }
  }

  /** A tombstone on the decisions topic: the target has no decision any more. */
  forget(target: string): void {
    this.active.delete(target);
    this.activeExpiry.delete(target);
    activeDecisions.set(this.active.size);
  }

  /** Drops decisions whose expiry has passed (log time); scans at most every 10 s of log time. */
  expire(nowMs: number): void {
    if (nowMs - this.lastExpiryScan < 10_000) return;
    this.lastExpiryScan = nowMs;
    for (const [target, exp] of this.activeExpiry) {
      if (exp <= nowMs) {
        this.active.delete(target);
        this.activeExpiry.delete(target);
      }
    }
    const memoryMs = this.cfg.repeat_memory_s * 1000;
    if (this.offenders.size > 100_000) {
      for (const [target, o] of this.offenders)
        if (nowMs - o.lastMs > memoryMs) this.offenders.delete(target);
    }
    activeDecisions.set(this.active.size);
  }

  private durationMs(offense: number): number {
    const s = this.cfg.duration_s * this.cfg.repeat_factor ** (offense - 1);
    return Math.min(s, this.cfg.max_duration_s) * 1000;
  }

  private remember(d: Decision, expiresMs: number): void {
    this.active.set(d.target, d);
    this.activeExpiry.set(d.target, expiresMs);
    activeDecisions.set(this.active.size);
  }

  private refuse(refusal: Refusal): PolicyOutcome {
    refusedTotal.inc({ reason: refusal });
    return { kind: 'refused', refusal };
  }

  private cap(refusal: 'cap_active' | 'cap_rate', req: DecisionRequest): PolicyOutcome {
    capReachedTotal.inc({ cap: refusal === 'cap_active' ? 'active' : 'rate' });
    // Loud, but once per minute of log time per cap: an attack must not turn into a log flood.
    const minute = Math.floor(req.atMs / 60_000);
    if (this.loudAt.get(refusal) !== minute) {
      this.loudAt.set(refusal, minute);
      this.log.error(
        {
          cap: refusal,
          active: this.active.size,
          max_active: this.cfg.max_active,
          new_this_minute: this.newThisMinute,
          max_new_per_minute: this.cfg.max_new_per_minute,
          target: req.target,
          detector: req.detector,
          at: iso(req.atMs),
        },
        'DECISION CAP REACHED: detections continue but no new decisions are made; raise detect.policy caps if this is a real attack',
      );
    }
    return this.refuse(refusal);
  }
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
