import type { Decision, Detection, DetectorName, Evidence } from '../decision/decision.js';
import type { Logger } from '../log/logger.js';
import { detectionId } from './ids.js';
import { detectionsTotal } from './metrics.js';
import { type DecisionPolicy, iso } from './policy/policy.js';
import type { Signal } from './signal.js';

/** Where an engine's output goes: callbacks, so the same engine serves replay, `run` and the Kafka service. */
export interface DetectSink {
  detection(d: Detection): void;
  decision(d: Decision): void;
  /** Stage-1 output for stage 2 when the stages run apart (the service); unused when both run in-process. */
  signal?(s: Signal): void;
}

export interface Firing {
  detector: DetectorName;
  subject: string;
  subjectKind: Detection['subject_kind'];
  reason: string;
  confidence: number;
  evidence: Omit<Evidence, 'window_start'>;
  atMs: number;
  windowMs: number;
  /** Target to decide on (IP or CIDR); absent for detections that never decide (a domain, the fleet). */
  target?: string;
  reply?: string;
}

/**
 * Turns detector firings into detections and (through the policy) decisions. A subject that
 * fired is quiet for `refireMs` of log time: an attack yields one detection per period, and an
 * active decision is re-requested (extended) at that pace, not on every event.
 */
export class Emitter {
  muted = false;
  private readonly quietUntil = new Map<string, number>();
  private lastSweep = 0;

  constructor(
    private readonly policy: DecisionPolicy,
    private readonly sink: DetectSink,
    private readonly refireMs: number,
    readonly log: Logger,
  ) {}

  /** True when `subject` fired for `detector` recently: detectors skip the work of building evidence. */
  quiet(detector: DetectorName, subject: string, atMs: number): boolean {
    const until = this.quietUntil.get(`${detector}|${subject}`);
    return until !== undefined && atMs < until;
  }

  fire(f: Firing): Detection | undefined {
    const qk = `${f.detector}|${f.subject}`;
    const until = this.quietUntil.get(qk);
    if (until !== undefined && f.atMs < until) return undefined;
    this.quietUntil.set(qk, f.atMs + this.refireMs);
    if (this.muted) return undefined;

    const windowStartMs = Math.floor(f.atMs / f.windowMs) * f.windowMs;
    const evidence: Evidence = { ...f.evidence, window_start: iso(f.atMs - f.windowMs) };
    const detection: Detection = {
      id: detectionId(f.subject, f.detector, windowStartMs),
      detector: f.detector,
      subject: f.subject,
      subject_kind: f.subjectKind,
      reason: f.reason,
      confidence: f.confidence,
      evidence,
      ts: iso(f.atMs),
    };
    let decision: Decision | undefined;
    if (f.target === undefined || f.reply === undefined) {
      detection.no_decision = 'not_decided';
    } else {
      const out = this.policy.decide({
        detector: f.detector,
        target: f.target,
        reason: f.reason,
        confidence: f.confidence,
        evidence,
        reply: f.reply,
        atMs: f.atMs,
        windowStartMs,
        detectionId: detection.id,
      });
      if (out.kind === 'refused') detection.no_decision = out.refusal;
      else {
        detection.decision_id = out.decision.id;
        if (out.kind !== 'unchanged') decision = out.decision;
      }
    }
    detectionsTotal.inc({ detector: f.detector });
    this.sink.detection(detection);
    if (decision !== undefined) this.sink.decision(decision);
    return detection;
  }

  /** Forgets quiet periods that have ended (bounded state); call as the watermark moves. */
  sweep(watermarkMs: number): void {
    if (watermarkMs - this.lastSweep < 60_000) return;
    this.lastSweep = watermarkMs;
    for (const [k, until] of this.quietUntil) if (until <= watermarkMs) this.quietUntil.delete(k);
  }
}
