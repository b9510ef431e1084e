import type { ClickHouse } from '../clickhouse/client.js';
import type { Decision, DecisionState } from '../decision/decision.js';
import type { MailEvent } from '../event/mail-event.js';
import { ipRange } from './ip-range.js';
import { EVENT_FIELD_LIST, utcTime } from './rows.js';

// The named queries the API and the dashboards use (documented in src/store/README.md). All run
// with server-side query parameters (current dialect). Events are read with `LIMIT 1 BY id`: a
// redelivered event is one result even before ReplacingMergeTree has merged its copies.

/** A time range; either end may be left open. ISO 8601 strings, Dates or ms since epoch. */
export interface TimeRange {
  from?: string | Date | number;
  to?: string | Date | number;
}

export interface SearchOptions extends TimeRange {
  /** Most rows returned, newest first (default 1000, at most 100000). */
  limit?: number;
}

/** A stored MailEvent; `ingested_at` is when ClickHouse took it. */
export type StoredEvent = MailEvent & { ingested_at?: string };

export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 100_000;

// The MailEvent columns in table order, then what the store adds.
const EVENT_COLUMNS = [...EVENT_FIELD_LIST.filter((f) => f !== 'raw'), 'extra', 'raw', 'ingested_at'];

// Plain columns only: an alias named like a column would shadow it in WHERE. Times come back as
// `YYYY-MM-DD hh:mm:ss[.f]` UTC and are made ISO 8601 in isoTime().
const SELECT_EVENT = EVENT_COLUMNS.join(', ');

/** ClickHouse UTC time text to ISO 8601 with Z. */
export function isoTime(v: unknown): string {
  return `${String(v).replace(' ', 'T')}Z`;
}

/** ::ffff:a.b.c.d back to a.b.c.d (the MailEvent form). */
export function plainIp(v: string): string {
  return v.startsWith('::ffff:') && /^::ffff:\d+\.\d+\.\d+\.\d+$/.test(v) ? v.slice(7) : v;
}

function timeParams(r: TimeRange): { from: string; to: string } {
  return {
    from: r.from === undefined ? '1900-01-01 00:00:00.000000' : utcTime(toIso(r.from), 6, 'from'),
    to: r.to === undefined ? '2299-12-31 23:59:59.999999' : utcTime(toIso(r.to), 6, 'to'),
  };
}

function toIso(v: string | Date | number): string {
  return v instanceof Date ? v.toISOString() : typeof v === 'number' ? new Date(v).toISOString() : v;
}

function limitOf(o: SearchOptions): number {
  const n = o.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`limit must be a positive integer, got ${n}`);
  return Math.min(n, MAX_LIMIT);
}

/** Turns a row back into the MailEvent shape: empty columns become absent fields again. */
export function eventFromRow(r: Record<string, unknown>): StoredEvent {
  const e: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (k === 'extra') {
      if (typeof v === 'string' && v !== '') Object.assign(e, JSON.parse(v));
      continue;
    }
    if (k === 'sender') {
      if (v !== null) e.sender = v;
      continue;
    }
    if (v === '' || v === 0 || v === false || v === null || (Array.isArray(v) && v.length === 0)) continue;
    if (k === 'client_ip' && v === '::') continue;
    if (k === 'client_ip') e[k] = plainIp(v as string);
    else if (k === 'ts' || k === 'ingested_at') e[k] = isoTime(v);
    else if (k === 'command_counts') e[k] = JSON.parse(v as string);
    else if (typeof v === 'string' && /^(size|count)$/.test(k)) e[k] = Number(v);
    else e[k] = v;
  }
  return e as unknown as StoredEvent;
}

async function rows<T>(ch: ClickHouse, query: string, params: Record<string, unknown>): Promise<T[]> {
  const rs = await ch.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

async function searchWhere(
  ch: ClickHouse,
  where: string,
  params: Record<string, unknown>,
  opts: SearchOptions,
): Promise<StoredEvent[]> {
  const query = `SELECT ${SELECT_EVENT} FROM ${ch.database}.mail_events
WHERE ${where} AND ts >= {from:DateTime64(6, 'UTC')} AND ts <= {to:DateTime64(6, 'UTC')}
ORDER BY ts DESC, id LIMIT 1 BY id LIMIT {limit:UInt32}`;
  const r = await rows<Record<string, unknown>>(ch, query, {
    ...params,
    ...timeParams(opts),
    limit: limitOf(opts),
  });
  return r.map(eventFromRow);
}

/** Events of a client address or prefix (`192.0.2.7`, `192.0.2.0/24`, `2001:db8::/64`), newest first. */
export async function searchByIp(
  ch: ClickHouse,
  ipOrPrefix: string,
  opts: SearchOptions = {},
): Promise<StoredEvent[]> {
  const r = ipRange(ipOrPrefix);
  return searchWhere(ch, 'client_ip BETWEEN {low:IPv6} AND {high:IPv6}', { low: r.low, high: r.high }, opts);
}

/** Events with this envelope sender (case-insensitive; `""` or `<>` is the null sender). */
export async function searchBySender(
  ch: ClickHouse,
  sender: string,
  opts: SearchOptions = {},
): Promise<StoredEvent[]> {
  const s = sender === '<>' ? '' : sender.replace(/^<(.*)>$/, '$1');
  return searchWhere(ch, "lower(ifNull(sender, '')) = lower({s:String}) AND isNotNull(sender)", { s }, opts);
}

/** Events naming this recipient (as `recipient` or in `recipients`; case-insensitive). */
export async function searchByRecipient(
  ch: ClickHouse,
  recipient: string,
  opts: SearchOptions = {},
): Promise<StoredEvent[]> {
  const r = recipient.replace(/^<(.*)>$/, '$1').toLowerCase();
  return searchWhere(
    ch,
    '(lower(recipient) = {r:String} OR has(arrayMap(x -> lower(x), recipients), {r:String}))',
    { r },
    opts,
  );
}

/** Events of a queue id, optionally on one host (queue ids are per host and recycled over time). */
export async function searchByQueueId(
  ch: ClickHouse,
  queueId: string,
  opts: SearchOptions & { host?: string } = {},
): Promise<StoredEvent[]> {
  const hostCond = opts.host === undefined ? '' : ' AND host = {host:String}';
  return searchWhere(ch, `queue_id = {q:String}${hostCond}`, { q: queueId, host: opts.host ?? '' }, opts);
}

/** Events carrying this Message-ID (with or without angle brackets). */
export async function searchByMessageId(
  ch: ClickHouse,
  messageId: string,
  opts: SearchOptions = {},
): Promise<StoredEvent[]> {
  return searchWhere(ch, 'message_id = {m:String}', { m: stripAngles(messageId) }, opts);
}

function stripAngles(s: string): string {
  return s.trim().replace(/^<(.*)>$/, '$1');
}

/** One queue (a message on one host) in a trace. */
export interface TraceHop {
  host: string;
  queue_id: string;
  first_ts: string;
  last_ts: string;
  /** Where it came from: the client of the `client` event (the previous hop for an inner host). */
  client_ip?: string;
  client_host?: string;
  sender?: string;
  deliveries: Array<{
    ts: string;
    recipient?: string;
    relay?: string;
    status?: string;
    dsn?: string;
    text?: string;
    /** The queue id the next server gave it (`queued as X`), when logged. */
    next_queue_id?: string;
    /** That next queue, when it is part of this trace: `host/queue_id`. */
    next_hop?: string;
  }>;
  /** A bounce or delay notice this queue created: its queue id on the same host. */
  bounce_queue_id?: string;
  events: StoredEvent[];
}

export interface MessageTrace {
  message_id: string;
  hops: TraceHop[];
}

const QUEUED_AS = /queued as ([0-9A-Za-z]+)/;

/**
 * Follows a message across hosts: every (host, queue id) that logged this Message-ID, plus the
 * bounce/delay notices they created, with all events of those queues, ordered by first log
 * time; each delivery is linked to the next hop by the `queued as` id the next server answered.
 * Without a time range the queues are looked up from a day before the Message-ID was first seen
 * to a week after it was last seen (queue ids are recycled).
 */
export async function traceMessage(
  ch: ClickHouse,
  messageId: string,
  opts: TimeRange = {},
): Promise<MessageTrace> {
  const m = stripAngles(messageId);
  const db = ch.database;
  const seen = await rows<{ host: string; queue_id: string; first: string; last: string }>(
    ch,
    `SELECT host, queue_id, toString(min(ts)) AS first, toString(max(ts)) AS last FROM ${db}.mail_events
     WHERE message_id = {m:String} AND queue_id != '' AND ts >= {from:DateTime64(6, 'UTC')} AND ts <= {to:DateTime64(6, 'UTC')}
     GROUP BY host, queue_id`,
    { m, ...timeParams(opts) },
  );
  if (seen.length === 0) return { message_id: m, hops: [] };
  const firstSeen = seen.map((s) => s.first).sort()[0]!;
  const lastSeen = seen
    .map((s) => s.last)
    .sort()
    .at(-1)!;
  const range =
    opts.from !== undefined || opts.to !== undefined
      ? timeParams(opts)
      : {
          from: utcTime(Date.parse(`${firstSeen.replace(' ', 'T')}Z`) - 86_400_000, 6, 'from'),
          to: utcTime(Date.parse(`${lastSeen.replace(' ', 'T')}Z`) + 7 * 86_400_000, 6, 'to'),
        };
  const keys = new Set(seen.map((s) => `${s.host} ${s.queue_id}`));
  const query = (qids: string[]) =>
    rows<Record<string, unknown>>(
      ch,
      `SELECT ${SELECT_EVENT} FROM ${db}.mail_events
       WHERE queue_id IN {qids:Array(String)} AND has({keys:Array(String)}, concat(host, ' ', queue_id))
         AND ts >= {from:DateTime64(6, 'UTC')} AND ts <= {to:DateTime64(6, 'UTC')}
       ORDER BY ts, id LIMIT 1 BY id LIMIT ${MAX_LIMIT}`,
      { qids, keys: [...keys], ...range },
    );
  let events = (await query([...new Set(seen.map((s) => s.queue_id))])).map(eventFromRow);
  // Notices (bounces, delay warnings) the message caused are queues of their own.
  const notices = events.filter(
    (e) => e.bounce_queue_id && e.host && !keys.has(`${e.host} ${e.bounce_queue_id}`),
  );
  if (notices.length > 0) {
    for (const e of notices) keys.add(`${e.host} ${e.bounce_queue_id}`);
    events = (await query([...new Set([...keys].map((k) => k.split(' ')[1]!))])).map(eventFromRow);
  }
  return { message_id: m, hops: buildHops(events) };
}

function buildHops(events: StoredEvent[]): TraceHop[] {
  const byQueue = new Map<string, TraceHop>();
  for (const e of events) {
    const key = `${e.host ?? ''}/${e.queue_id ?? ''}`;
    let hop = byQueue.get(key);
    if (!hop) {
      hop = {
        host: e.host ?? '',
        queue_id: e.queue_id ?? '',
        first_ts: e.ts ?? '',
        last_ts: e.ts ?? '',
        deliveries: [],
        events: [],
      };
      byQueue.set(key, hop);
    }
    hop.events.push(e);
    if (e.ts && e.ts < hop.first_ts) hop.first_ts = e.ts;
    if (e.ts && e.ts > hop.last_ts) hop.last_ts = e.ts;
    if (e.kind === 'client' || (e.client_ip && !hop.client_ip)) {
      if (e.client_ip) hop.client_ip = e.client_ip;
      if (e.client_host) hop.client_host = e.client_host;
    }
    if (e.sender !== undefined && hop.sender === undefined) hop.sender = e.sender;
    if (e.bounce_queue_id) hop.bounce_queue_id = e.bounce_queue_id;
    if (e.kind === 'delivery') {
      const next = e.text ? QUEUED_AS.exec(e.text)?.[1] : undefined;
      hop.deliveries.push({
        ts: e.ts ?? '',
        recipient: e.recipient,
        relay: e.relay,
        status: e.status,
        dsn: e.dsn,
        text: e.text,
        ...(next ? { next_queue_id: next } : {}),
      });
    }
  }
  const hops = [...byQueue.values()].sort((a, b) =>
    a.first_ts < b.first_ts ? -1 : a.first_ts > b.first_ts ? 1 : 0,
  );
  for (const hop of hops) {
    for (const d of hop.deliveries) {
      if (!d.next_queue_id) continue;
      const next = hops.find((h) => h !== hop && h.queue_id === d.next_queue_id);
      if (next) d.next_hop = `${next.host}/${next.queue_id}`;
    }
  }
  return hops;
}

export interface UnknownRecipientSource {
  /** The address, or the prefix as CIDR when grouped by prefix. */
  source: string;
  /** Unknown-recipient rejections (deduplicated events). */
  unknown_users: number;
  /** Distinct recipients tried. */
  recipients: number;
  /** Addresses seen inside the prefix (1 when not grouped). */
  addresses: number;
  hosts: string[];
  first_seen: string;
  last_seen: string;
}

/**
 * Sources with the most unknown-recipient rejections in a window, per address or per prefix
 * (`v4_prefix: 24`, `v6_prefix: 64` group a harvest spread over a network).
 */
export async function topUnknownRecipientSources(
  ch: ClickHouse,
  opts: TimeRange & { limit?: number; v4_prefix?: number; v6_prefix?: number } = {},
): Promise<UnknownRecipientSource[]> {
  const v4 = opts.v4_prefix ?? 32;
  const v6 = opts.v6_prefix ?? 128;
  if (!(Number.isInteger(v4) && v4 >= 0 && v4 <= 32))
    throw new RangeError(`v4_prefix must be 0..32, got ${v4}`);
  if (!(Number.isInteger(v6) && v6 >= 0 && v6 <= 128))
    throw new RangeError(`v6_prefix must be 0..128, got ${v6}`);
  const r = await rows<Record<string, string | string[]>>(
    ch,
    `SELECT
       isIPAddressInRange(IPv6NumToString(client_ip), '::ffff:0.0.0.0/96') AS v4,
       IPv6CIDRToRange(client_ip, toUInt8(if(v4, 96 + {v4:UInt8}, {v6:UInt8}))).1 AS net,
       if(v4, {v4:UInt8}, {v6:UInt8}) AS bits,
       uniqExact(id) AS unknown_users,
       uniqExact(lower(recipient)) AS recipients,
       uniqExact(client_ip) AS addresses,
       groupUniqArray(host) AS hosts,
       min(ts) AS first_seen,
       max(ts) AS last_seen
     FROM ${ch.database}.mail_events
     WHERE reason = 'user_unknown' AND client_ip != toIPv6('::')
       AND ts >= {from:DateTime64(6, 'UTC')} AND ts <= {to:DateTime64(6, 'UTC')}
     GROUP BY v4, net, bits
     ORDER BY unknown_users DESC, net
     LIMIT {limit:UInt32}`,
    { v4, v6, limit: limitOf({ limit: opts.limit ?? 20 }), ...timeParams(opts) },
  );
  return r.map((x) => {
    const net = plainIp(String(x.net));
    const isV4 = Number(x.v4) === 1;
    const full = isV4 ? v4 === 32 : v6 === 128;
    return {
      source: full ? net : `${net}/${isV4 ? v4 : v6}`,
      unknown_users: Number(x.unknown_users),
      recipients: Number(x.recipients),
      addresses: Number(x.addresses),
      hosts: (x.hosts as string[]).slice().sort(),
      first_seen: isoTime(x.first_seen),
      last_seen: isoTime(x.last_seen),
    };
  });
}

/** A decision as it stood at a moment, with when it last changed. */
export type DecisionAt = Omit<Decision, 'evidence'> & { evidence: unknown; changed_at: string };

const DECISION_FIELDS = `
  argMax(target, v) AS target, argMax(action, v) AS action, argMax(reply, v) AS reply,
  argMax(detector, v) AS detector, argMax(reason, v) AS reason, argMax(confidence, v) AS confidence,
  argMax(evidence, v) AS evidence, argMax(origin, v) AS origin, argMax(detection_id, v) AS detection_id,
  argMax(offense, v) AS offense, argMax(state, v) AS state,
  argMax(created_at, v) AS created_at, argMax(expires_at, v) AS expires_at, max(changed_at) AS changed_at,
  argMax(target_low, v) AS low, argMax(target_high, v) AS high`;

/**
 * Decisions in force at `at`: the latest change of each decision made up to `at` is `active`,
 * and `at` lies between its created_at and expires_at. With `ip`, only decisions whose target
 * covers that address.
 */
export async function decisionsInForce(
  ch: ClickHouse,
  at: string | Date | number,
  opts: { ip?: string; limit?: number } = {},
): Promise<DecisionAt[]> {
  const t = utcTime(toIso(at), 3, 'at');
  const ipCond =
    opts.ip === undefined ? '' : ' AND low <= toIPv6({ip:String}) AND high >= toIPv6({ip:String})';
  const r = await rows<Record<string, unknown>>(
    ch,
    `SELECT id, ${DECISION_FIELDS}
     FROM (SELECT *, (changed_at, indexOf(['active', 'expired', 'lifted'], state)) AS v
           FROM ${ch.database}.decisions WHERE changed_at <= {t:DateTime64(3, 'UTC')})
     GROUP BY id
     HAVING state = 'active' AND created_at <= {t:DateTime64(3, 'UTC')} AND expires_at > {t:DateTime64(3, 'UTC')}${ipCond}
     ORDER BY created_at, id
     LIMIT {limit:UInt32}`,
    {
      t,
      ip: opts.ip === undefined ? '' : ipRange(opts.ip).low,
      limit: limitOf({ limit: opts.limit ?? MAX_LIMIT }),
    },
  );
  return r.map(decisionFromRow);
}

function decisionFromRow(r: Record<string, unknown>): DecisionAt {
  const { low: _low, high: _high, detection_id, offense, evidence, ...rest } = r;
  return {
    ...(rest as unknown as DecisionAt),
    created_at: isoTime(r.created_at),
    expires_at: isoTime(r.expires_at),
    changed_at: isoTime(r.changed_at),
    evidence: JSON.parse(String(evidence || '{}')),
    confidence: Number(r.confidence),
    ...(detection_id ? { detection_id: String(detection_id) } : {}),
    ...(offense ? { offense: Number(offense) } : {}),
  };
}

/** One entry of a decision's audit trail. */
export interface DecisionChange {
  change: 'created' | 'extended' | 'changed' | 'expired' | 'lifted';
  state: DecisionState;
  changed_at: string;
  recorded_at: string;
  expires_at: string;
  origin: string;
  reason: string;
}

/** The audit trail of one decision: every state change, oldest first, with who made it. */
export async function decisionHistory(ch: ClickHouse, id: string): Promise<DecisionChange[]> {
  const r = await rows<Omit<DecisionChange, 'change'>>(
    ch,
    `SELECT state, changed_at, recorded_at, expires_at, origin, reason
     FROM ${ch.database}.decisions WHERE id = {id:String}
     ORDER BY changed_at, indexOf(['active', 'expired', 'lifted'], state), expires_at
     LIMIT 1 BY changed_at, state, expires_at`,
    { id },
  );
  let prev: Omit<DecisionChange, 'change'> | undefined;
  return r.map((row) => {
    const x = {
      ...row,
      changed_at: isoTime(row.changed_at),
      recorded_at: isoTime(row.recorded_at),
      expires_at: isoTime(row.expires_at),
    };
    const change: DecisionChange['change'] =
      x.state === 'lifted'
        ? 'lifted'
        : x.state === 'expired'
          ? 'expired'
          : prev === undefined
            ? 'created'
            : x.expires_at > prev.expires_at
              ? 'extended'
              : 'changed';
    prev = x;
    return { change, ...x };
  });
}
