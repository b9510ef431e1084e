// Decision and Detection: contract v1 (schemas/decision.schema.json, schemas/detection.schema.json).

export type DecisionState = 'active' | 'expired' | 'lifted';

export interface Evidence {
  /** What was counted: e.g. { user_unknown: 14, rcpt: 15 }. */
  counts: Record<string, number>;
  /** Window in seconds over which it was counted. */
  window_s: number;
  /** Threshold(s) that were crossed. */
  threshold?: Record<string, number>;
  /** A few ids of the events that triggered it. */
  sample_event_ids: string[];
  /** Servers (hosts) that saw it. */
  hosts?: string[];
  /** Start of the window (log time, ISO 8601); with window_s it says exactly what was counted. */
  window_start?: string;
}

/** The detectors of src/detect/, as they appear in `detector` fields and metric labels. */
export type DetectorName = 'dha_source' | 'dha_prefix' | 'dha_distributed' | 'bot_flow' | 'bounce_storm';

export interface Decision {
  id: string;
  /** An IP address or a CIDR prefix. */
  target: string;
  action: 'tempfail';
  /** 4xx reply the MTA sends, e.g. "450 4.7.1 Too many unknown recipients; try later". */
  reply: string;
  detector: string;
  reason: string;
  confidence: number;
  evidence: Evidence;
  created_at: string;
  expires_at: string;
  state: DecisionState;
  /** Who made or changed it: a detector name, or `operator:<name>`. */
  origin?: string;
  /** Id of the detection that caused (or last extended) it. */
  detection_id?: string;
  /** Nth decision for this target within the repeat-offender memory (1 = first); sets its length. */
  offense?: number;
  /** Log time of the last change (an extension); absent when never changed. */
  updated_at?: string;
}

export interface Detection {
  id: string;
  detector: string;
  /** What the detection is about: an IP, a prefix, a recipient domain, a host. */
  subject: string;
  subject_kind: 'ip' | 'prefix' | 'domain' | 'host' | 'fleet';
  reason: string;
  confidence: number;
  evidence: Evidence;
  /** Log time of the event that triggered it. */
  ts: string;
  /** Id of the decision it led to, if any. */
  decision_id?: string;
  /**
   * Why no decision followed when none did: `whitelisted`, `dry_run`, `cap_active`, `cap_rate`,
   * `not_decided` (a detector that only reports, e.g. bounce_storm without decide_top_n).
   */
  no_decision?: string;
}
