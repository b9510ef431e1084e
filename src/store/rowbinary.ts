import ipaddr from 'ipaddr.js';
import { epochMs, fallbackId, fractionEnd, isObject, RecordError, TS_RE, unknownKeys } from './rows.js';

// MailEvents as ClickHouse RowBinary rows for the embedded engine (schemas/clickhouse/
// 002_mail_events.sql, current dialect). Parsing JSONEachRow was most of chdb's insert cost;
// RowBinary has nothing to parse (length-prefixed strings, little-endian numbers), so the
// engine's time goes to sorting, compressing and indexing. Values are checked here instead: one
// that does not fit its column is a RecordError (the record goes to dead_letters), so a batch is
// never refused for a value. The column list and types are pinned by a test against the migrated
// table (test/store/rowbinary.int.test.ts).

/** Columns written, in order, with their ClickHouse types (the `file()` structure). */
export const EVENT_COLUMNS = [
  ['id', 'String'],
  ['ts', "DateTime64(6, 'UTC')"],
  ['host', 'String'],
  ['program', 'String'],
  ['pid', 'UInt32'],
  ['mta', 'String'],
  ['kind', 'String'],
  ['reason', 'String'],
  ['command', 'String'],
  ['client_ip', 'IPv6'],
  ['client_host', 'String'],
  ['client_port', 'UInt16'],
  ['queue_id', 'String'],
  ['sender', 'Nullable(String)'],
  ['recipient', 'String'],
  ['recipients', 'Array(String)'],
  ['orig_to', 'String'],
  ['dsn', 'String'],
  ['reply_code', 'UInt16'],
  ['status', 'String'],
  ['relay', 'String'],
  ['message_id', 'String'],
  ['helo', 'String'],
  ['size', 'UInt64'],
  ['nrcpt', 'UInt32'],
  ['delay', 'Float32'],
  ['delays', 'String'],
  ['text', 'String'],
  ['sasl_username', 'String'],
  ['sasl_method', 'String'],
  ['proto', 'String'],
  ['bounce_queue_id', 'String'],
  ['command_counts', 'String'],
  ['filter_action', 'String'],
  ['count', 'Float64'],
  ['truncated', 'Bool'],
  ['extra', 'String'],
  ['raw', 'String'],
] as const;

/**
 * Rows are encoded one after the other into a chunk; each finished row is a view into it
 * (`endRow`), valid for as long as it is kept. A full chunk is left to the rows viewing it and a
 * new one begun: only the row being written is ever copied.
 */
export class RowBinaryWriter {
  private buf: Buffer;
  private pos = 0;
  private rowAt = 0;

  constructor(private readonly chunkBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  beginRow(): void {
    this.rowAt = this.pos;
  }

  /** The row written since beginRow. */
  endRow(): Buffer {
    return this.buf.subarray(this.rowAt, this.pos);
  }

  /** Forgets the row begun (a value did not fit). */
  abortRow(): void {
    this.pos = this.rowAt;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const partial = this.pos - this.rowAt;
    const next = Buffer.allocUnsafe(Math.max(this.chunkBytes, 2 * (partial + n)));
    this.buf.copy(next, 0, this.rowAt, this.pos);
    this.buf = next;
    this.rowAt = 0;
    this.pos = partial;
  }

  varUInt(n: number): void {
    this.room(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  string(s: string): void {
    if (s.length === 0) {
      this.room(1);
      this.buf[this.pos++] = 0;
      return;
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.varUInt(len);
    this.room(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  u8(n: number): void {
    this.room(1);
    this.buf[this.pos++] = n;
  }

  u16(n: number): void {
    this.room(2);
    this.buf.writeUInt16LE(n, this.pos);
    this.pos += 2;
  }

  u32(n: number): void {
    this.room(4);
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4;
  }

  /** A non-negative integer below 2^53 as UInt64 / Int64. */
  u64(n: number): void {
    this.room(8);
    this.buf.writeUInt32LE(n % 0x1_0000_0000, this.pos);
    this.buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), this.pos + 4);
    this.pos += 8;
  }

  f32(n: number): void {
    this.room(4);
    this.buf.writeFloatLE(n, this.pos);
    this.pos += 4;
  }

  f64(n: number): void {
    this.room(8);
    this.buf.writeDoubleLE(n, this.pos);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

function str(e: Record<string, unknown>, k: string): string {
  const v = e[k];
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new RecordError(`${k}: expected a string, got ${Array.isArray(v) ? 'an array' : typeof v}`);
}

/** A number, or a numeric string, that `ok` accepts; 0 when absent. */
function num(e: Record<string, unknown>, k: string, ok: (n: number) => boolean, want: string): number {
  const v = e[k];
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!ok(n)) throw new RecordError(`${k}: expected ${want}, got ${JSON.stringify(v)}`);
  return n;
}

function uint(e: Record<string, unknown>, k: string, max: number): number {
  return num(e, k, (n) => Number.isInteger(n) && n >= 0 && n <= max, `an integer from 0 to ${max}`);
}

function float(e: Record<string, unknown>, k: string): number {
  return num(e, k, Number.isFinite, 'a number');
}

const V4_MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
const NO_ADDRESS = new Uint8Array(16);
const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ip(w: RowBinaryWriter, v: unknown): void {
  if (v === undefined || v === null || v === '') {
    w.bytes(NO_ADDRESS);
    return;
  }
  if (typeof v !== 'string') throw new RecordError(`client_ip: expected an address, got ${typeof v}`);
  const m = V4_RE.exec(v);
  if (m) {
    const a = +m[1]!;
    const b = +m[2]!;
    const c = +m[3]!;
    const d = +m[4]!;
    if (a < 256 && b < 256 && c < 256 && d < 256) {
      w.bytes(V4_MAPPED);
      w.u8(a);
      w.u8(b);
      w.u8(c);
      w.u8(d);
      return;
    }
  }
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(v.replace(/^IPv6:/i, ''));
  } catch {
    throw new RecordError(`client_ip: not an IP address: ${JSON.stringify(v.slice(0, 64))}`);
  }
  w.bytes(
    Uint8Array.from(
      addr.kind() === 'ipv4' ? (addr as ipaddr.IPv4).toIPv4MappedAddress().toByteArray() : addr.toByteArray(),
    ),
  );
}

// Consecutive events mostly share their second: the last conversion is remembered.
let lastHead = '';
let lastTail = '';
let lastSeconds = 0;

/** ISO 8601 (no offset means UTC) or epoch ms to µs since the epoch; RecordError if it is neither. */
export function tsMicros(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.round(value * 1000);
  if (typeof value !== 'string') throw new RecordError(`ts: expected an ISO 8601 time, got ${typeof value}`);
  const end = fractionEnd(value);
  const tail = value.slice(end);
  if (lastHead !== '' && tail === lastTail && value.startsWith(lastHead)) {
    return lastSeconds * 1e6 + fractionMicros(value, end);
  }
  const m = TS_RE.exec(value);
  if (!m) throw new RecordError(`ts: not an ISO 8601 time: ${JSON.stringify(value.slice(0, 64))}`);
  const [, y, mo, d, h, mi, s, , off = 'Z'] = m;
  const ms = epochMs(y!, mo!, d!, h!, mi!, s!, off, value, 'ts');
  lastHead = value.slice(0, 19);
  lastTail = tail;
  lastSeconds = ms / 1000;
  return lastSeconds * 1e6 + fractionMicros(value, end);
}

function fractionMicros(value: string, end: number): number {
  if (end <= 20) return 0;
  let us = 0;
  for (let i = 20; i < 26; i++) us = us * 10 + (i < end ? value.charCodeAt(i) - 48 : 0);
  return us;
}

/**
 * `e` (a MailEvent as parsed from JSON) as one mail_events row; `now` (ms) stands in for a
 * missing ts. Throws RecordError, leaving nothing written, when a value does not fit.
 */
export function eventRowBinary(w: RowBinaryWriter, e: unknown, now: number): Buffer {
  if (!isObject(e)) throw new RecordError('a MailEvent must be a JSON object');
  if (typeof e.kind !== 'string' || e.kind === '') throw new RecordError('kind: missing');
  if (typeof e.raw !== 'string') throw new RecordError('raw: missing');
  w.beginRow();
  try {
    w.string(typeof e.id === 'string' && e.id !== '' ? e.id : fallbackId(e));
    w.u64(tsMicros(e.ts ?? now));
    w.string(str(e, 'host'));
    w.string(str(e, 'program'));
    w.u32(uint(e, 'pid', 0xffff_ffff));
    w.string(str(e, 'mta'));
    w.string(e.kind);
    w.string(str(e, 'reason'));
    w.string(str(e, 'command'));
    ip(w, e.client_ip);
    w.string(str(e, 'client_host'));
    w.u16(uint(e, 'client_port', 0xffff));
    w.string(str(e, 'queue_id'));
    if (e.sender === undefined || e.sender === null) w.u8(1);
    else {
      w.u8(0);
      w.string(str(e, 'sender'));
    }
    w.string(str(e, 'recipient'));
    const rcpts = e.recipients;
    if (rcpts === undefined || rcpts === null) w.u8(0);
    else if (!Array.isArray(rcpts)) throw new RecordError('recipients: expected an array of strings');
    else {
      w.varUInt(rcpts.length);
      for (const r of rcpts) {
        if (typeof r !== 'string') throw new RecordError('recipients: expected an array of strings');
        w.string(r);
      }
    }
    w.string(str(e, 'orig_to'));
    w.string(str(e, 'dsn'));
    w.u16(uint(e, 'reply_code', 0xffff));
    w.string(str(e, 'status'));
    w.string(str(e, 'relay'));
    w.string(str(e, 'message_id'));
    w.string(str(e, 'helo'));
    w.u64(uint(e, 'size', Number.MAX_SAFE_INTEGER));
    w.u32(uint(e, 'nrcpt', 0xffff_ffff));
    w.f32(float(e, 'delay'));
    w.string(str(e, 'delays'));
    w.string(str(e, 'text'));
    w.string(str(e, 'sasl_username'));
    w.string(str(e, 'sasl_method'));
    w.string(str(e, 'proto'));
    w.string(str(e, 'bounce_queue_id'));
    w.string(
      e.command_counts === undefined || e.command_counts === null ? '' : JSON.stringify(e.command_counts),
    );
    w.string(str(e, 'filter_action'));
    w.f64(float(e, 'count'));
    w.u8(e.truncated === true || e.truncated === 1 || e.truncated === 'true' ? 1 : 0);
    w.string(extra(e));
    w.string(e.raw);
    return w.endRow();
  } catch (err) {
    w.abortRow();
    throw err;
  }
}

/** MailEvent fields this schema has no column for, as a JSON object ('' when there are none). */
function extra(e: Record<string, unknown>): string {
  let out: Record<string, unknown> | undefined;
  for (const k of unknownKeys(Object.keys(e))) {
    const v = e[k];
    if (v === undefined || v === null) continue;
    out ??= {};
    out[k] = v;
  }
  return out ? JSON.stringify(out) : '';
}
