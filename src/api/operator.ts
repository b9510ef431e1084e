import { randomUUID } from 'node:crypto';
import type { Producer } from '../bus/bus.js';
import type { Decision } from '../decision/decision.js';
import type { RespondSafetyConfig } from '../respond/config.js';
import { postfixKey } from '../respond/postfix/access-map.js';
import { check, type Rule } from '../respond/safety.js';
import { sendmailKey } from '../respond/sendmail/access-db.js';
import { overlaps, parseTarget, type Target } from '../respond/target.js';
import type { DecisionAt } from '../store/queries.js';

// Operator actions on decisions, published on the compacted decisions topic keyed by target,
// exactly as the detector publishes its own: an `add` is an active tempfail decision with origin
// operator:<name>; a `lift` republishes the decision with state `lifted` (agents remove the entry,
// detectors forget the target, the store records the change in the audit trail). The same
// safety rules the agents apply (src/respond/safety.ts) are checked first, so an operator gets
// the refusal at once instead of every agent logging it.

export interface AddRequest {
  target: string;
  reason: string;
  reply?: string;
  ttl_s?: number;
  expires_at?: string;
}

export class OperatorError extends Error {
  override name = 'OperatorError';
  constructor(
    message: string,
    readonly status: 400 | 404 | 409,
    readonly rule?: Rule | 'expiry' | 'not_found',
  ) {
    super(message);
  }
}

export interface AddResult {
  decision: Decision;
  /** The requested expiry, when it was clamped to api.max_operator_ttl_s. */
  clamped_from?: string;
  /** The decision in force for this target before, which this add changed (it keeps its id). */
  replaced: { id: string; origin: string; reply: string; expires_at: string } | null;
  /** Maps that cannot hold the target (their agents will refuse it). */
  warnings: string[];
}

export interface OperatorContext {
  producer: Producer;
  topic: string;
  safety: RespondSafetyConfig;
  maxTtlS: number;
  defaultReply: string;
  whitelist: readonly Target[];
  now: () => number;
}

/** Validates and publishes an operator decision; `inForce` are the decisions in force now. */
export async function addDecision(
  ctx: OperatorContext,
  req: AddRequest,
  operator: string,
  inForce: readonly DecisionAt[],
): Promise<AddResult> {
  const now = ctx.now();
  const parsed = parseTarget(req.target);
  if (!parsed.ok) throw new OperatorError(parsed.error, 400, 'malformed');
  const t = parsed.target;
  if (req.ttl_s === undefined && req.expires_at === undefined) {
    throw new OperatorError('an expiry is required: give ttl_s or expires_at', 400, 'expiry');
  }
  if (req.ttl_s !== undefined && req.expires_at !== undefined) {
    throw new OperatorError('give ttl_s or expires_at, not both', 400, 'expiry');
  }
  const expiresMs = req.ttl_s !== undefined ? now + req.ttl_s * 1000 : Date.parse(req.expires_at!);
  if (!Number.isFinite(expiresMs))
    throw new OperatorError('expires_at is not an ISO 8601 time', 400, 'expiry');
  if (expiresMs <= now) throw new OperatorError('expires_at is in the past', 400, 'expiry');

  const createdAt = new Date(now).toISOString();
  const decision: Decision = {
    id: `op-${randomUUID()}`,
    target: t.text,
    action: 'tempfail',
    reply: req.reply ?? ctx.defaultReply,
    detector: 'operator',
    reason: req.reason,
    confidence: 1,
    evidence: { counts: {}, window_s: 0, sample_event_ids: [] },
    created_at: createdAt,
    expires_at: new Date(expiresMs).toISOString(),
    state: 'active',
    origin: `operator:${operator}`,
  };
  const same = inForce.filter((d) => sameTarget(d.target, t));
  const verdict = check(decision, {
    cfg: { ...ctx.safety, max_ttl_s: ctx.maxTtlS },
    whitelist: ctx.whitelist,
    ownAddresses: [],
    mapCannotHold: () => null,
    handManaged: [],
    entryCount: new Set(inForce.map((d) => d.target)).size,
    has: () => same.length > 0,
    now,
  });
  if (verdict.kind === 'refuse') {
    const status = verdict.rule === 'whitelisted' || verdict.rule === 'max_entries' ? 409 : 400;
    throw new OperatorError(verdict.message, status, verdict.rule);
  }
  if (verdict.kind !== 'add') throw new OperatorError('the decision would already be expired', 400, 'expiry');
  let clamped: string | undefined;
  if (verdict.clamped_from) {
    clamped = verdict.clamped_from;
    decision.expires_at = new Date(verdict.entry.expires_at).toISOString();
  }

  // One decision per target: on a compacted topic keyed by target a second one would replace the
  // first anyway (and its record could be compacted away before the store saw it). So an add for a
  // target already under a decision changes that decision (same id; the audit trail shows who).
  const current = [...same].sort((a, b) => (a.created_at < b.created_at ? 1 : -1))[0];
  if (current) {
    decision.id = current.id;
    decision.updated_at = createdAt;
  }
  await ctx.producer.send(ctx.topic, [{ key: t.text, value: JSON.stringify(decision) }]);
  return {
    decision,
    ...(clamped ? { clamped_from: clamped } : {}),
    replaced: current
      ? {
          id: current.id,
          origin: current.origin ?? current.detector,
          reply: current.reply,
          expires_at: current.expires_at,
        }
      : null,
    warnings: mapWarnings(t),
  };
}

/** Lifts the decisions in force for a target (or with an id): each is republished as lifted. */
export async function liftDecisions(
  ctx: OperatorContext,
  ref: string,
  reason: string,
  operator: string,
  inForce: readonly DecisionAt[],
): Promise<Decision[]> {
  const parsed = parseTarget(ref);
  const hit = parsed.ok
    ? inForce.filter((d) => sameTarget(d.target, parsed.target))
    : inForce.filter((d) => d.id === ref);
  if (hit.length === 0) {
    throw new OperatorError(
      `no decision in force for ${ref} (one added in the last seconds may not be stored yet)`,
      404,
      'not_found',
    );
  }
  return publishLifts(ctx, hit, reason, operator);
}

/** Lifts every decision in force whose target overlaps `t` (a new whitelist entry). */
export async function liftOverlapping(
  ctx: OperatorContext,
  t: Target,
  reason: string,
  operator: string,
  inForce: readonly DecisionAt[],
): Promise<Decision[]> {
  const hit = inForce.filter((d) => {
    const p = parseTarget(d.target);
    return p.ok && overlaps(p.target, t);
  });
  return hit.length === 0 ? [] : publishLifts(ctx, hit, reason, operator);
}

async function publishLifts(
  ctx: OperatorContext,
  hit: readonly DecisionAt[],
  reason: string,
  operator: string,
): Promise<Decision[]> {
  const now = ctx.now();
  const out = hit.map((d) => lifted(d, operator, reason, now));
  // Keyed by the decision's own target, as it was published: the lift replaces it under compaction.
  await ctx.producer.send(
    ctx.topic,
    out.map((d) => ({ key: keyOf(d.target), value: JSON.stringify(d) })),
  );
  return out;
}

function lifted(d: DecisionAt, operator: string, reason: string, now: number): Decision {
  const { changed_at: _c, evidence, ...rest } = d;
  return {
    ...rest,
    evidence: (evidence ?? { counts: {}, window_s: 0, sample_event_ids: [] }) as Decision['evidence'],
    state: 'lifted',
    updated_at: new Date(now).toISOString(),
    origin: `operator:${operator}`,
    reason: `lifted: ${reason}`,
  };
}

function keyOf(target: string): string {
  const p = parseTarget(target);
  return p.ok ? p.target.text : target;
}

function sameTarget(stored: string, t: Target): boolean {
  const p = parseTarget(stored);
  return p.ok && p.target.text === t.text;
}

function mapWarnings(t: Target): string[] {
  const out: string[] = [];
  const hash = postfixKey(t, 'hash');
  if ('error' in hash) out.push(`postfix agents with map_type hash/lmdb will refuse it: ${hash.error}`);
  const sm = sendmailKey(t);
  if ('error' in sm) out.push(`sendmail agents will refuse it: ${sm.error}`);
  return out;
}
