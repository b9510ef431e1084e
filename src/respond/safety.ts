import type { RespondSafetyConfig } from './config.js';
import type { Entry } from './entry.js';
import { overlaps, parseTarget, rangeOf, type Target } from './target.js';

// Every reason the agent refuses to put a decision into a production access map, one named rule
// each. A refusal is a value (logged and counted by the caller with its rule as the metric label),
// never an exception: a bad decision must not stop the agent from applying the good ones.

export const RULES = [
  'malformed',
  'action',
  'no_expiry',
  'any_prefix',
  'prefix_too_wide',
  'not_unicast',
  'loopback',
  'own_address',
  'whitelisted',
  'reply',
  'map_cannot_hold',
  'hand_managed',
  'max_entries',
] as const;
export type Rule = (typeof RULES)[number];

export interface Refusal {
  kind: 'refuse';
  rule: Rule;
  message: string;
  decision_id?: string;
  target?: string;
}

export type Verdict =
  | { kind: 'add'; entry: Entry; clamped_from?: string }
  | { kind: 'remove'; target: string; why: 'lifted' | 'expired' | 'past_expiry' }
  | Refusal;

export interface SafetyContext {
  cfg: RespondSafetyConfig;
  whitelist: readonly Target[];
  ownAddresses: readonly Target[];
  /** The access map's own limits: null if it can hold the target, else why not. */
  mapCannotHold(t: Target): string | null;
  /** Address keys the administrator keeps in the map by hand (they win over the agent). */
  handManaged: readonly Target[];
  entryCount: number;
  has(target: string): boolean;
  /** The agent's clock, ms since epoch. */
  now: number;
}

function refuse(rule: Rule, message: string, d?: { id?: unknown; target?: unknown }): Refusal {
  const r: Refusal = { kind: 'refuse', rule, message };
  if (d && typeof d.id === 'string') r.decision_id = d.id.slice(0, 200);
  if (d && typeof d.target === 'string') r.target = d.target.slice(0, 64);
  return r;
}

// ---- the rules, each testable on its own -------------------------------------------------------

type DecisionLike = Record<string, unknown>;

/** Shape: an object with string id, target, reply, created_at; a known state. */
export function ruleMalformed(d: unknown): Refusal | null {
  if (typeof d !== 'object' || d === null || Array.isArray(d))
    return refuse('malformed', 'not a JSON object');
  const o = d as DecisionLike;
  if (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > 200) {
    return refuse('malformed', 'id is missing, not a string or longer than 200 characters', o);
  }
  const target = parseTarget(o.target);
  if (!target.ok) return refuse('malformed', target.error, o);
  if (o.state !== undefined && o.state !== 'active' && o.state !== 'expired' && o.state !== 'lifted') {
    return refuse('malformed', `unknown state ${JSON.stringify(String(o.state).slice(0, 20))}`, o);
  }
  if (o.created_at !== undefined && !isTime(o.created_at)) {
    return refuse('malformed', 'created_at is not an ISO 8601 time', o);
  }
  if (o.expires_at !== undefined && o.expires_at !== null && o.expires_at !== '' && !isTime(o.expires_at)) {
    return refuse('malformed', 'expires_at is not an ISO 8601 time', o);
  }
  return null;
}

export function ruleAction(d: DecisionLike): Refusal | null {
  return d.action === 'tempfail'
    ? null
    : refuse('action', `action ${JSON.stringify(d.action)} is not tempfail; mizugiwa never rejects`, d);
}

export function ruleNoExpiry(d: DecisionLike): Refusal | null {
  return d.expires_at === undefined || d.expires_at === null || d.expires_at === ''
    ? refuse('no_expiry', 'no expires_at: every entry must lift by itself', d)
    : null;
}

export function ruleAnyPrefix(t: Target, d?: DecisionLike): Refusal | null {
  return t.prefix === 0 ? refuse('any_prefix', `${t.text} covers every address`, d) : null;
}

export function rulePrefixTooWide(t: Target, cfg: RespondSafetyConfig, d?: DecisionLike): Refusal | null {
  const min = t.family === 4 ? cfg.min_prefix_v4 : cfg.min_prefix_v6;
  return t.prefix < min
    ? refuse('prefix_too_wide', `${t.text} is wider than the allowed /${min} for IPv${t.family}`, d)
    : null;
}

/** Unspecified, broadcast and multicast addresses are never a client. */
export function ruleNotUnicast(t: Target, d?: DecisionLike): Refusal | null {
  const range = rangeOf(t);
  return range === 'unspecified' || range === 'broadcast' || range === 'multicast'
    ? refuse('not_unicast', `${t.text} is a ${range} address, not a client`, d)
    : null;
}

export function ruleLoopback(t: Target, cfg: RespondSafetyConfig, d?: DecisionLike): Refusal | null {
  if (cfg.allow_loopback) return null;
  const loop = t.family === 4 ? LOOPBACK_V4 : LOOPBACK_V6;
  return overlaps(t, loop)
    ? refuse('loopback', `${t.text} is loopback (set respond.safety.allow_loopback for test setups)`, d)
    : null;
}

export function ruleOwnAddress(
  t: Target,
  own: readonly Target[],
  cfg: RespondSafetyConfig,
  d?: DecisionLike,
): Refusal | null {
  if (!cfg.protect_own_addresses) return null;
  const hit = own.find((o) => overlaps(t, o));
  return hit ? refuse('own_address', `${t.text} covers this host's own address ${hit.text}`, d) : null;
}

export function ruleWhitelisted(t: Target, whitelist: readonly Target[], d?: DecisionLike): Refusal | null {
  const hit = whitelist.find((w) => overlaps(t, w));
  return hit ? refuse('whitelisted', `${t.text} overlaps whitelisted ${hit.text}`, d) : null;
}

// "450 4.7.1 text": a 4xx code, the same class in the enhanced status code, then text. The text is
// written into map files and, for Sendmail, inside a quoted string that also substitutes %N: a
// conservative character set keeps it from ever meaning anything but text.
const REPLY = /^(4[0-9][0-9]) (4)\.([0-9]{1,3})\.([0-9]{1,3}) (\S.*)$/;
const REPLY_TEXT = /^[A-Za-z0-9 .,;:()[\]<>/_+=@'!?&*-]+$/;

export function ruleReply(d: DecisionLike, cfg: RespondSafetyConfig): Refusal | null {
  const r = d.reply;
  if (typeof r !== 'string') return refuse('reply', 'reply is not a string', d);
  if (r.length > cfg.max_reply_length) {
    return refuse('reply', `reply is longer than ${cfg.max_reply_length} characters`, d);
  }
  const m = REPLY.exec(r);
  if (!m) {
    return refuse(
      'reply',
      `reply ${JSON.stringify(r.slice(0, 40))} is not "4NN 4.X.Y text" (a temporary failure with its enhanced code)`,
      d,
    );
  }
  if (!REPLY_TEXT.test(m[5]!)) {
    return refuse(
      'reply',
      "reply text holds characters outside letters, digits, space and .,;:()[]<>/_+=@'!?&*-",
      d,
    );
  }
  if (m[5]!.trim() !== m[5]) return refuse('reply', 'reply text ends in white space', d);
  return null;
}

// ---- the whole check ---------------------------------------------------------------------------

const LOOPBACK_V4 = parseTargets(['127.0.0.0/8'], 'loopback')[0]!;
const LOOPBACK_V6 = parseTargets(['::1'], 'loopback')[0]!;

/** Decides what one decision does to the map: add or replace an entry, remove one, or nothing (a refusal). */
export function check(input: unknown, ctx: SafetyContext): Verdict {
  const bad = ruleMalformed(input);
  if (bad) return bad;
  const d = input as DecisionLike;
  const parsed = parseTarget(d.target);
  if (!parsed.ok) return refuse('malformed', parsed.error, d);
  const t = parsed.target;

  if (d.state === 'lifted' || d.state === 'expired') return { kind: 'remove', target: t.text, why: d.state };

  const basic = ruleAction(d) ?? ruleNoExpiry(d);
  if (basic) return basic;
  const expires = Date.parse(d.expires_at as string);
  if (expires <= ctx.now) return { kind: 'remove', target: t.text, why: 'past_expiry' };

  const about =
    ruleAnyPrefix(t, d) ??
    rulePrefixTooWide(t, ctx.cfg, d) ??
    ruleNotUnicast(t, d) ??
    ruleLoopback(t, ctx.cfg, d) ??
    ruleOwnAddress(t, ctx.ownAddresses, ctx.cfg, d) ??
    ruleWhitelisted(t, ctx.whitelist, d) ??
    ruleReply(d, ctx.cfg);
  if (about) return about;

  const cannot = ctx.mapCannotHold(t);
  if (cannot) return refuse('map_cannot_hold', cannot, d);
  const hand = ctx.handManaged.find((h) => overlaps(t, h));
  if (hand) {
    return refuse(
      'hand_managed',
      `${t.text} overlaps ${hand.text}, which the administrator manages in the map by hand`,
      d,
    );
  }
  if (!ctx.has(t.text) && ctx.entryCount >= ctx.cfg.max_entries) {
    return refuse(
      'max_entries',
      `already ${ctx.entryCount} entries in force (respond.safety.max_entries)`,
      d,
    );
  }

  // Clamp rather than refuse an over-long life: the source still deserves its tempfail, and the
  // block still lifts by itself. Measured from the decision's last change (created_at, or
  // updated_at of an extension), not from now, so that replaying the compacted topic after a
  // restart does not extend it again.
  const created = typeof d.created_at === 'string' ? Date.parse(d.created_at) : ctx.now;
  const updated = isTime(d.updated_at) ? Date.parse(d.updated_at as string) : created;
  const limit = Math.min(Math.max(created, updated), ctx.now) + ctx.cfg.max_ttl_s * 1000;
  const entry: Entry = {
    target: t.text,
    reply: d.reply as string,
    expires_at: Math.min(expires, limit),
    decision_id: d.id as string,
    detector: typeof d.detector === 'string' ? d.detector.slice(0, 100) : '',
    created_at: typeof d.created_at === 'string' ? d.created_at : new Date(ctx.now).toISOString(),
  };
  if (expires > limit) {
    if (limit <= ctx.now) return { kind: 'remove', target: t.text, why: 'past_expiry' };
    return { kind: 'add', entry, clamped_from: d.expires_at as string };
  }
  return { kind: 'add', entry };
}

function isTime(v: unknown): boolean {
  return (
    typeof v === 'string' &&
    v.length <= 40 &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/.test(v) &&
    Number.isFinite(Date.parse(v))
  );
}

/** Parses the whitelist and own addresses once; a bad whitelist entry is a configuration error. */
export function parseTargets(list: readonly string[], what: string): Target[] {
  return list.map((s) => {
    const r = parseTarget(s);
    if (!r.ok) throw new Error(`${what}: ${r.error}`);
    return r.target;
  });
}
