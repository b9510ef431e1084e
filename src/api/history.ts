import type { ClickHouse } from '../clickhouse/client.js';
import { ipRange } from '../store/ip-range.js';
import { isoTime } from '../store/queries.js';
import { utcTime } from '../store/rows.js';

// Decisions made in a time range with how each ended: for forensics ("who was blocked, when,
// why, and when did it lift"). The in-force view at one moment is decisionsInForce in
// src/store/queries.ts; this one lists every decision created in [from, to], newest first.

export interface DecisionSummary {
  id: string;
  target: string;
  detector: string;
  origin: string;
  /** Why it was made (the reason of its first record). */
  reason: string;
  reply: string;
  /** active (in force now), expired (ran out by itself) or lifted (by an operator or a whitelist entry). */
  state: 'active' | 'expired' | 'lifted';
  created_at: string;
  expires_at: string;
  /** When it last changed: created, extended, lifted. */
  changed_at: string;
  /** Who made the last change, and why (a lift names the operator and the reason). */
  last_origin: string;
  last_reason: string;
  changes: number;
}

export async function decisionsMade(
  ch: ClickHouse,
  opts: { from: string; to: string; ip?: string; limit: number; now: number },
): Promise<DecisionSummary[]> {
  const ipCond =
    opts.ip === undefined ? '' : 'HAVING low <= toIPv6({ip:String}) AND high >= toIPv6({ip:String})';
  const rs = await ch.client.query({
    query: `SELECT id,
         argMax(target, v) AS target, argMax(detector, v) AS detector, argMin(origin, v) AS first_origin,
         argMin(reason, v) AS first_reason, argMax(reply, v) AS reply, argMax(state, v) AS st,
         min(created_at) AS created, argMax(expires_at, v) AS expires, max(changed_at) AS changed,
         argMax(origin, v) AS last_origin, argMax(reason, v) AS last_reason, count() AS changes,
         argMax(target_low, v) AS low, argMax(target_high, v) AS high
       FROM (SELECT *, (changed_at, indexOf(['active', 'expired', 'lifted'], state)) AS v
             FROM ${ch.database}.decisions
             WHERE created_at >= {from:DateTime64(3, 'UTC')} AND created_at <= {to:DateTime64(3, 'UTC')})
       GROUP BY id ${ipCond}
       ORDER BY created DESC, id
       LIMIT {limit:UInt32}`,
    query_params: {
      from: utcTime(opts.from, 3, 'from'),
      to: utcTime(opts.to, 3, 'to'),
      ip: opts.ip === undefined ? '' : ipRange(opts.ip).low,
      limit: opts.limit,
    },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<Record<string, string | number>>();
  return rows.map((r) => {
    const expires = isoTime(r.expires);
    const st = String(r.st);
    const state: DecisionSummary['state'] =
      st === 'lifted' ? 'lifted' : st === 'expired' || Date.parse(expires) <= opts.now ? 'expired' : 'active';
    return {
      id: String(r.id),
      target: String(r.target),
      detector: String(r.detector),
      origin: String(r.first_origin),
      reason: String(r.first_reason),
      reply: String(r.reply),
      state,
      created_at: isoTime(r.created),
      expires_at: expires,
      changed_at: isoTime(r.changed),
      last_origin: String(r.last_origin),
      last_reason: String(r.last_reason),
      changes: Number(r.changes),
    };
  });
}
