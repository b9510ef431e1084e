import type { Decision } from '../decision/decision.js';
import type { RespondSafetyConfig } from '../respond/config.js';
import { compareEntries } from '../respond/entry.js';
import { type PostfixMapType, postfixKey } from '../respond/postfix/access-map.js';
import { check, type Rule, type SafetyContext } from '../respond/safety.js';
import { sendmailKey, sendmailValue } from '../respond/sendmail/access-db.js';
import { octets, parseTarget, type Target } from '../respond/target.js';

// The mitigation feed for MTAs that cannot run the agent: the decisions in force, passed through
// the agent's own safety rules (src/respond/safety.ts: 4xx replies only, expiry, prefix width,
// loopback, whitelist, the map's limits, max entries, TTL clamp), rendered as a Postfix
// check_client_access table, a Sendmail access db source, or JSON. A host fetches it on a short
// timer (cron, systemd timer) and builds its map; an entry leaves the feed when it expires or is
// lifted, so the map forgets it at the next fetch.

export type FeedFormat = { kind: 'postfix'; type: PostfixMapType } | { kind: 'sendmail' } | { kind: 'json' };

export interface FeedEntry {
  target: string;
  /** The access map key for the format asked for (absent for json). */
  key?: string;
  reply: string;
  expires_at: string;
  decision_id: string;
  detector: string;
  origin: string;
  created_at: string;
}

export interface FeedSkip {
  target: string;
  decision_id: string;
  rule: Rule;
  message: string;
}

export interface Feed {
  generated_at: string;
  entries: FeedEntry[];
  skipped: FeedSkip[];
}

/** Decisions in force (as stored) plus what the feed needs of each. */
export type FeedDecision = Pick<Decision, 'id' | 'target' | 'reply' | 'action' | 'state' | 'created_at'> & {
  expires_at: string;
  detector?: string;
  origin?: string;
};

function keyOf(t: Target, format: FeedFormat): { key: string } | { error: string } {
  if (format.kind === 'postfix') return postfixKey(t, format.type);
  if (format.kind === 'sendmail') return sendmailKey(t);
  return { key: t.text };
}

/** Builds the feed at `now` from decisions in force. Pure: every refusal is reported, never thrown. */
export function buildFeed(
  decisions: readonly FeedDecision[],
  format: FeedFormat,
  safety: { cfg: RespondSafetyConfig; whitelist: readonly Target[] },
  now: number,
): Feed {
  // Newest expiry first, so that of two decisions for one target the longer one wins.
  const ordered = [...decisions].sort((a, b) => Date.parse(b.expires_at) - Date.parse(a.expires_at));
  const chosen = new Map<string, { entry: FeedEntry; prefix: number; bytes: number[] }>();
  const skipped: FeedSkip[] = [];
  for (const d of ordered) {
    const parsed = parseTarget(d.target);
    const already = parsed.ok && chosen.has(parsed.target.text);
    if (already) continue;
    const ctx: SafetyContext = {
      cfg: safety.cfg,
      whitelist: safety.whitelist,
      ownAddresses: [],
      mapCannotHold: (t) => {
        const k = keyOf(t, format);
        return 'error' in k ? k.error : null;
      },
      handManaged: [],
      entryCount: chosen.size,
      has: (t) => chosen.has(t),
      now,
    };
    const v = check(d, ctx);
    if (v.kind === 'refuse') {
      skipped.push({ target: d.target, decision_id: d.id, rule: v.rule, message: v.message });
      continue;
    }
    if (v.kind !== 'add') continue;
    const t = parseTarget(v.entry.target);
    if (!t.ok) continue;
    const k = keyOf(t.target, format);
    if ('error' in k) continue;
    chosen.set(v.entry.target, {
      prefix: t.target.prefix,
      bytes: octets(t.target),
      entry: {
        target: v.entry.target,
        ...(format.kind === 'json' ? {} : { key: k.key }),
        reply: v.entry.reply,
        expires_at: new Date(v.entry.expires_at).toISOString(),
        decision_id: d.id,
        detector: d.detector ?? '',
        origin: d.origin ?? d.detector ?? '',
        created_at: d.created_at,
      },
    });
  }
  const entries = [...chosen.values()].sort(compareEntries).map((c) => c.entry);
  return { generated_at: new Date(now).toISOString(), entries, skipped };
}

/** Text of a Postfix access table or a Sendmail access source: comments, then `KEY<sep>VALUE` lines. */
export function renderFeed(feed: Feed, format: Exclude<FeedFormat, { kind: 'json' }>): string {
  const lines: string[] = [];
  if (format.kind === 'postfix') {
    lines.push(
      `# mizugiwa mitigation feed for Postfix, generated ${feed.generated_at}`,
      `# Use as: smtpd_client_restrictions = check_client_access ${format.type}:/etc/postfix/mizugiwa_feed`,
      format.type === 'cidr'
        ? '# (cidr: reload Postfix after replacing the file)'
        : `# (run postmap ${format.type}:FILE after replacing the file)`,
    );
  } else {
    lines.push(
      `# mizugiwa mitigation feed for Sendmail FEATURE(access_db), generated ${feed.generated_at}`,
      '# Build with: makemap hash /etc/mail/mizugiwa_access < FILE (or merge into your access file)',
    );
  }
  lines.push(
    `# ${feed.entries.length} entries; refetch often: an entry disappears when it expires or is lifted`,
  );
  for (const s of feed.skipped) {
    lines.push(`# skipped ${safeComment(s.target)} (${s.rule}): ${safeComment(s.message)}`);
  }
  for (const e of feed.entries) {
    lines.push(`# decision ${safeComment(e.decision_id)} expires ${e.expires_at}`);
    lines.push(format.kind === 'postfix' ? `${e.key}  ${e.reply}` : `${e.key}\t${sendmailValue(e.reply)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Stored values are echoed in comments: no line breaks or control characters may leave them. */
function safeComment(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 200);
}
