import { createHash } from 'node:crypto';
import type { DialectName } from '../clickhouse/dialect.js';
import { ipRange } from './ip-range.js';

// Records as they arrive (MailEvent, Detection, Decision, parsed from JSON) turned into rows
// for JSONEachRow. Only what ClickHouse cannot do itself happens here: time stamps to UTC,
// nested values to JSON text, IP ranges for decision targets. Type checks of plain fields are
// left to ClickHouse: a value it refuses sends the record to the dead letters (see writer.ts).

export type Row = Record<string | symbol, unknown>;

/** Where a record came from on the bus (absent for in-process writes). */
export interface Origin {
  topic?: string;
  partition?: number;
  offset?: string;
  /** Bus timestamp, ms since epoch. */
  timestamp?: number;
  /** The record's text as it came, when the origin carries it (see StoreWriter.acceptValues). */
  readonly value?: Buffer | null;
}

export class RecordError extends Error {
  override name = 'RecordError';
}

const TS_RE =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * ISO 8601 (with offset; none means UTC) to ClickHouse's `YYYY-MM-DD hh:mm:ss[.f]` in UTC,
 * keeping `digits` fraction digits (0 for DateTime). Throws RecordError when it is not a time.
 */
export function utcTime(value: unknown, digits: number, field: string): string {
  if (typeof value === 'number' && Number.isFinite(value)) value = new Date(value).toISOString();
  if (typeof value !== 'string')
    throw new RecordError(`${field}: expected an ISO 8601 time, got ${typeof value}`);
  const end = fractionEnd(value);
  const seconds = isoSeconds(value, end, field);
  if (seconds !== lastFormatted) {
    lastBase = new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
    lastFormatted = seconds;
  }
  if (digits === 0) return lastBase;
  const frac = end > 20 ? value.slice(20, end) : '';
  return `${lastBase}.${frac.padEnd(digits, '0').slice(0, digits)}`;
}

let lastFormatted = Number.NaN;
let lastBase = '';

/** Index after `YYYY-MM-DDThh:mm:ss[.fraction]`. */
export function fractionEnd(value: string): number {
  let i = 19;
  if (value[i] === '.' || value[i] === ',') {
    i++;
    while (i < value.length && value.charCodeAt(i) >= 48 && value.charCodeAt(i) <= 57) i++;
  }
  return i;
}

// Consecutive events mostly share their second and offset: the last conversion is remembered,
// and only the fraction is read again.
let lastHead = '';
let lastTail = '';
let lastSeconds = 0;

/**
 * Whole seconds since the epoch of the ISO 8601 time `value` (no offset means UTC); `end` is
 * fractionEnd(value). Throws RecordError naming `field` when it is not a time or out of range.
 */
export function isoSeconds(value: string, end: number, field: string): number {
  const tail = value.slice(end);
  // (end <= 29: at most 9 fraction digits, as TS_RE allows)
  if (lastHead !== '' && end <= 29 && tail === lastTail && value.startsWith(lastHead)) return lastSeconds;
  const m = TS_RE.exec(value);
  if (!m) throw new RecordError(`${field}: not an ISO 8601 time: ${JSON.stringify(value.slice(0, 64))}`);
  const [, y, mo, d, h, mi, s, , off = 'Z'] = m;
  let ms = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!);
  if (off.toUpperCase() !== 'Z') {
    const sign = off[0] === '-' ? -1 : 1;
    const digitsOnly = off.slice(1).replace(':', '');
    ms -= sign * (Number(digitsOnly.slice(0, 2)) * 60 + Number(digitsOnly.slice(2, 4) || '0')) * 60_000;
  }
  const year = new Date(ms).getUTCFullYear();
  if (
    !Number.isFinite(ms) ||
    year < 1900 ||
    year > 2299 ||
    +mo! > 12 ||
    +d! > 31 ||
    +h! > 23 ||
    +mi! > 59 ||
    +s! > 60
  ) {
    throw new RecordError(`${field}: time out of range: ${JSON.stringify(value)}`);
  }
  lastHead = value.slice(0, 19);
  lastTail = tail;
  lastSeconds = ms / 1000;
  return lastSeconds;
}

/** MailEvent fields with a column of their own; anything else goes to `extra` as JSON. */
export const EVENT_FIELD_LIST = [
  'id',
  'ts',
  'host',
  'program',
  'pid',
  'mta',
  'kind',
  'reason',
  'command',
  'client_ip',
  'client_host',
  'client_port',
  'queue_id',
  'sender',
  'recipient',
  'recipients',
  'orig_to',
  'dsn',
  'reply_code',
  'status',
  'relay',
  'message_id',
  'helo',
  'size',
  'nrcpt',
  'delay',
  'delays',
  'text',
  'sasl_username',
  'sasl_method',
  'proto',
  'bounce_queue_id',
  'command_counts',
  'filter_action',
  'count',
  'truncated',
  'raw',
];
const EVENT_FIELDS = new Set(EVENT_FIELD_LIST);

// Events from one producer share their key list: remember which of the last list's keys have
// no column, instead of looking every key up again.
let lastKeys: string[] = [];
let lastUnknown: string[] = [];

function unknownKeys(keys: string[]): string[] {
  if (keys.length === lastKeys.length) {
    let same = true;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== lastKeys[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastUnknown;
  }
  lastKeys = keys;
  lastUnknown = keys.filter((k) => !EVENT_FIELDS.has(k));
  return lastUnknown;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A MailEvent as a mail_events row. Absent fields stay absent (the column default applies:
 * '' / 0 / '::' / NULL sender). `now` stands in for a missing ts.
 */
export function eventRow(e: unknown, dialect: DialectName, now: number): Row {
  if (!isObject(e)) throw new RecordError('a MailEvent must be a JSON object');
  if (typeof e.kind !== 'string' || e.kind === '') throw new RecordError('kind: missing');
  if (typeof e.raw !== 'string') throw new RecordError('raw: missing');
  const row: Row = {};
  for (const k of EVENT_FIELD_LIST) {
    const v = e[k];
    if (v !== undefined && v !== null) row[k] = v;
  }
  let extra: Record<string, unknown> | undefined;
  for (const k of unknownKeys(Object.keys(e))) {
    const v = e[k];
    if (v === undefined || v === null) continue;
    extra ??= {};
    extra[k] = v;
  }
  if (typeof e.id !== 'string' || e.id === '') row.id = fallbackId(e);
  row.ts = utcTime(e.ts ?? now, dialect === 'current' ? 6 : 0, 'ts');
  if (row.command_counts !== undefined) row.command_counts = JSON.stringify(row.command_counts);
  if (extra) row.extra = JSON.stringify(extra);
  if (dialect === 'legacy' && row.truncated !== undefined) row.truncated = row.truncated ? 1 : 0;
  return row;
}

/** An id for an event that came without one: the same for the same line, so redeliveries merge. */
export function fallbackId(e: Record<string, unknown>): string {
  return `sha1:${createHash('sha1')
    .update(`${e.host ?? ''}\n${e.ts ?? ''}\n${e.raw}`)
    .digest('hex')}`;
}

export function detectionRow(d: unknown, dialect: DialectName): Row {
  if (!isObject(d)) throw new RecordError('a Detection must be a JSON object');
  if (typeof d.id !== 'string' || d.id === '') throw new RecordError('id: missing');
  if (typeof d.detector !== 'string') throw new RecordError('detector: missing');
  const evidence = isObject(d.evidence) ? d.evidence : {};
  const digits = dialect === 'current' ? 3 : 0;
  return {
    id: d.id,
    ts: utcTime(d.ts, digits, 'ts'),
    detector: d.detector,
    subject: d.subject ?? '',
    subject_kind: d.subject_kind ?? '',
    reason: d.reason ?? '',
    confidence: d.confidence ?? 0,
    decision_id: d.decision_id ?? '',
    no_decision: d.no_decision ?? '',
    window_s: evidence.window_s ?? 0,
    sample_event_ids: evidence.sample_event_ids ?? [],
    hosts: evidence.hosts ?? [],
    evidence: JSON.stringify(evidence),
  };
}

/** One state change of a Decision (see schemas/clickhouse/004_decisions.sql for changed_at). */
export function decisionRow(d: unknown, dialect: DialectName, origin: Origin | undefined, now: number): Row {
  if (!isObject(d)) throw new RecordError('a Decision must be a JSON object');
  if (typeof d.id !== 'string' || d.id === '') throw new RecordError('id: missing');
  if (typeof d.target !== 'string') throw new RecordError('target: missing');
  if (!['active', 'expired', 'lifted'].includes(d.state as string)) {
    throw new RecordError(`state: expected active, expired or lifted, got ${JSON.stringify(d.state)}`);
  }
  let range: { low: string; high: string };
  try {
    range = ipRange(d.target);
  } catch (err) {
    throw new RecordError(`target: ${(err as Error).message}`);
  }
  const digits = dialect === 'current' ? 3 : 0;
  const recorded = origin?.timestamp ?? now;
  const changed =
    d.state === 'active'
      ? (d.updated_at ?? d.created_at)
      : d.state === 'expired'
        ? (d.updated_at ?? d.expires_at)
        : (d.updated_at ?? recorded);
  return {
    id: d.id,
    changed_at: utcTime(changed, digits, 'changed_at'),
    state: d.state,
    target: d.target,
    target_low: range.low,
    target_high: range.high,
    action: d.action ?? 'tempfail',
    reply: d.reply ?? '',
    detector: d.detector ?? '',
    reason: d.reason ?? '',
    confidence: d.confidence ?? 0,
    created_at: utcTime(d.created_at, digits, 'created_at'),
    expires_at: utcTime(d.expires_at, digits, 'expires_at'),
    detection_id: d.detection_id ?? '',
    offense: d.offense ?? 0,
    recorded_at: utcTime(recorded, digits, 'recorded_at'),
    origin: d.origin ?? d.detector ?? '',
    evidence: JSON.stringify(d.evidence ?? {}),
  };
}
