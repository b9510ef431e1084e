import { closeSync, openSync, writevSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { fallbackId, fractionEnd, isObject, isoSeconds, RecordError } from './rows.js';

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

type Column = (typeof EVENT_COLUMNS)[number][0];

/** Column name -> its slot (the MailEvent field of the same name fills it). */
const SLOT: Record<string, number | undefined> = Object.assign(
  Object.create(null),
  Object.fromEntries(EVENT_COLUMNS.map(([c], i) => [c, i])),
);
const I = SLOT as Record<Column, number>;
const slots: unknown[] = new Array(EVENT_COLUMNS.length);

/** Where one encoded row lies: bytes start..end of chunk. */
export interface RowSpan {
  chunk: Buffer;
  start: number;
  end: number;
}

/**
 * Rows are encoded one after the other into large chunks; a row is known by its span (no view
 * object per row, no small buffers for the collector to chase). A full chunk is left to the rows
 * in it and a new one begun: only the row being written is ever copied. Rows written one after
 * the other are adjacent in their chunk, so a batch is written out in a few large pieces.
 */
export class RowBinaryWriter {
  private buf: Buffer;
  private pos = 0;
  private rowAt = 0;

  constructor(private readonly chunkBytes = 16 << 20) {
    this.buf = Buffer.allocUnsafeSlow(chunkBytes);
  }

  beginRow(): void {
    this.rowAt = this.pos;
  }

  /** The span of the row written since beginRow, with the record it came from. */
  endRow(record: unknown): RowSpan & { record: unknown } {
    return { chunk: this.buf, start: this.rowAt, end: this.pos, record };
  }

  /** Forgets the row begun (a value did not fit). */
  abortRow(): void {
    this.pos = this.rowAt;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const partial = this.pos - this.rowAt;
    const next = Buffer.allocUnsafeSlow(Math.max(this.chunkBytes, 2 * (partial + n)));
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
    const n = s.length;
    if (n < 128) {
      // Short strings (nearly every field) are written here when they are ASCII: a call into
      // the runtime per field costs more than the copy.
      this.room(n + 1);
      const buf = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
      if (i === n) {
        buf[this.pos] = n;
        this.pos = p;
        return;
      }
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

  /**
   * A non-negative integer (below 2^64, exact below 2^53) as `size` (2, 4 or 8) little-endian
   * bytes: what u16 / u32 / u64 write, for values already checked (no Buffer range checks).
   */
  uintLE(n: number, size: number): void {
    this.room(size);
    const buf = this.buf;
    let p = this.pos;
    const lo = n % 0x1_0000_0000;
    buf[p++] = lo;
    buf[p++] = lo >>> 8;
    if (size > 2) {
      buf[p++] = lo >>> 16;
      buf[p++] = lo >>> 24;
      if (size > 4) {
        const hi = Math.floor(n / 0x1_0000_0000);
        buf[p++] = hi;
        buf[p++] = hi >>> 8;
        buf[p++] = hi >>> 16;
        buf[p++] = hi >>> 24;
      }
    }
    this.pos = p;
  }

  /** Bytes start..end of `src`. */
  copy(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.room(n);
    copyBytes(src, start, end, this.buf, this.pos);
    this.pos += n;
  }

  /** Bytes start..end of `src`, valid UTF-8, as a String. */
  utf8(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n >= 0x80) this.varUInt(n);
    this.room(n + 1);
    if (n < 0x80) this.buf[this.pos++] = n;
    copyBytes(src, start, end, this.buf, this.pos);
    this.pos += n;
  }

  /** Where the next byte goes, counted from the start of the row (room() may move the row). */
  offset(): number {
    return this.pos - this.rowAt;
  }

  /**
   * Writes `n` as VarUInt at row offset `at`, where one byte was left for it: for a length known
   * only once what follows is written. A longer VarUInt moves the bytes after it.
   */
  patchVarUInt(at: number, n: number): void {
    if (n < 0x80) {
      this.buf[this.rowAt + at] = n;
      return;
    }
    let extra = 0;
    for (let x = n; x >= 0x80; x = Math.floor(x / 128)) extra++;
    this.room(extra);
    let p = this.rowAt + at;
    this.buf.copyWithin(p + 1 + extra, p + 1, this.pos);
    this.pos += extra;
    while (n >= 0x80) {
      this.buf[p++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[p] = n;
  }
}

/** Copies src[start..end) to dst at `at`; short runs by hand, for which set() and a view cost more. */
function copyBytes(src: Uint8Array, start: number, end: number, dst: Buffer, at: number): void {
  if (end - start < 64) {
    for (let i = start; i < end; i++) dst[at++] = src[i]!;
  } else dst.set(src.subarray(start, end), at);
}

function str(v: unknown, k: string): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new RecordError(`${k}: expected a string, got ${Array.isArray(v) ? 'an array' : typeof v}`);
}

/** A number, or a numeric string, that `ok` accepts; 0 when absent. */
function num(v: unknown, k: string, ok: (n: number) => boolean, want: string): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!ok(n)) throw new RecordError(`${k}: expected ${want}, got ${JSON.stringify(v)}`);
  return n;
}

function uint(v: unknown, k: string, max: number): number {
  if (v === undefined) return 0;
  if (typeof v === 'number' && v >= 0 && v <= max && Number.isInteger(v)) return v;
  return num(v, k, (n) => Number.isInteger(n) && n >= 0 && n <= max, `an integer from 0 to ${max}`);
}

function float(v: unknown, k: string): number {
  if (v === undefined) return 0;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  return num(v, k, Number.isFinite, 'a number');
}

const V4_MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
const NO_ADDRESS = new Uint8Array(16);
const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** `v` as a client_ip IPv6 column (IPv4 mapped, `IPv6:` prefix dropped); RecordError if it is no address. */
export function clientIp(w: RowBinaryWriter, v: unknown): void {
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

/** ISO 8601 (no offset means UTC) or epoch ms to µs since the epoch; RecordError if it is neither. */
export function tsMicros(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.round(value * 1000);
  if (typeof value !== 'string') throw new RecordError(`ts: expected an ISO 8601 time, got ${typeof value}`);
  const end = fractionEnd(value);
  return isoSeconds(value, end, 'ts') * 1e6 + fractionMicros(value, end);
}

function fractionMicros(value: string, end: number): number {
  if (end <= 20) return 0;
  let us = 0;
  for (let i = 20; i < 26; i++) us = us * 10 + (i < end ? value.charCodeAt(i) - 48 : 0);
  return us;
}

/**
 * `e` (a MailEvent as parsed from JSON) as one mail_events row, with the record kept for
 * dead_letters; `now` (ms) stands in for a missing ts. Throws RecordError, leaving nothing written, when a value does not fit.
 */
export function eventRowBinary(w: RowBinaryWriter, e: unknown, now: number): RowSpan & { record: unknown } {
  if (!isObject(e)) throw new RecordError('a MailEvent must be a JSON object');
  // One pass over the record's own keys puts each value in its column's slot: loads by a fixed
  // name from records of many shapes (connect, reject, delivery...) would each be a slow lookup.
  const v = slots;
  v.fill(undefined);
  let extra: Record<string, unknown> | undefined;
  for (const k in e) {
    const x = e[k];
    const at = SLOT[k];
    if (at !== undefined) v[at] = x;
    else if (x !== undefined && x !== null && Object.hasOwn(e, k)) {
      extra ??= {};
      extra[k] = x;
    }
  }
  const kind = v[I.kind];
  const raw = v[I.raw];
  if (typeof kind !== 'string' || kind === '') throw new RecordError('kind: missing');
  if (typeof raw !== 'string') throw new RecordError('raw: missing');
  w.beginRow();
  try {
    const id = v[I.id];
    w.string(typeof id === 'string' && id !== '' ? id : fallbackId(e));
    w.u64(tsMicros(v[I.ts] ?? now));
    w.string(str(v[I.host], 'host'));
    w.string(str(v[I.program], 'program'));
    w.u32(uint(v[I.pid], 'pid', 0xffff_ffff));
    w.string(str(v[I.mta], 'mta'));
    w.string(kind);
    w.string(str(v[I.reason], 'reason'));
    w.string(str(v[I.command], 'command'));
    clientIp(w, v[I.client_ip]);
    w.string(str(v[I.client_host], 'client_host'));
    w.u16(uint(v[I.client_port], 'client_port', 0xffff));
    w.string(str(v[I.queue_id], 'queue_id'));
    const sender = v[I.sender];
    if (sender === undefined || sender === null) w.u8(1);
    else {
      w.u8(0);
      w.string(str(sender, 'sender'));
    }
    w.string(str(v[I.recipient], 'recipient'));
    const rcpts = v[I.recipients];
    if (rcpts === undefined || rcpts === null) w.u8(0);
    else if (!Array.isArray(rcpts)) throw new RecordError('recipients: expected an array of strings');
    else {
      w.varUInt(rcpts.length);
      for (const r of rcpts) {
        if (typeof r !== 'string') throw new RecordError('recipients: expected an array of strings');
        w.string(r);
      }
    }
    w.string(str(v[I.orig_to], 'orig_to'));
    w.string(str(v[I.dsn], 'dsn'));
    w.u16(uint(v[I.reply_code], 'reply_code', 0xffff));
    w.string(str(v[I.status], 'status'));
    w.string(str(v[I.relay], 'relay'));
    w.string(str(v[I.message_id], 'message_id'));
    w.string(str(v[I.helo], 'helo'));
    w.u64(uint(v[I.size], 'size', Number.MAX_SAFE_INTEGER));
    w.u32(uint(v[I.nrcpt], 'nrcpt', 0xffff_ffff));
    w.f32(float(v[I.delay], 'delay'));
    w.string(str(v[I.delays], 'delays'));
    w.string(str(v[I.text], 'text'));
    w.string(str(v[I.sasl_username], 'sasl_username'));
    w.string(str(v[I.sasl_method], 'sasl_method'));
    w.string(str(v[I.proto], 'proto'));
    w.string(str(v[I.bounce_queue_id], 'bounce_queue_id'));
    const counts = v[I.command_counts];
    w.string(counts === undefined || counts === null ? '' : JSON.stringify(counts));
    w.string(str(v[I.filter_action], 'filter_action'));
    w.f64(float(v[I.count], 'count'));
    const t = v[I.truncated];
    w.u8(t === true || t === 1 || t === 'true' ? 1 : 0);
    w.string(extra ? JSON.stringify(extra) : '');
    w.string(raw);
    return w.endRow(e);
  } catch (err) {
    w.abortRow();
    throw err;
  }
}

/** The bytes of `rows` in order, adjacent spans of a chunk taken as one piece. */
export function rowPieces(rows: readonly RowSpan[]): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < rows.length) {
    const first = rows[i]!;
    let end = first.end;
    let j = i + 1;
    while (j < rows.length && rows[j]!.chunk === first.chunk && rows[j]!.start === end) end = rows[j++]!.end;
    out.push(first.chunk.subarray(first.start, end));
    i = j;
  }
  return out;
}

/**
 * Writes `rows` to `file` (created or truncated) in one synchronous go: awaited pieces would each
 * wait behind the encoding of the next batch on a busy event loop. A batch is a few tens of MB
 * into the page cache, written as the pieces it lies in (writev): joining them first cost a copy
 * of the batch into freshly mapped memory, about 0.4 µs per event on the event loop.
 */
export function writeRows(file: string, rows: readonly RowSpan[]): void {
  let pieces = rowPieces(rows);
  const fd = openSync(file, 'w');
  try {
    while (pieces.length > 0) {
      let n = writevSync(fd, pieces.length > IOV_MAX ? pieces.slice(0, IOV_MAX) : pieces);
      // A short write: go on from where it stopped.
      let i = 0;
      while (i < pieces.length && n >= pieces[i]!.length) n -= pieces[i++]!.length;
      pieces = pieces.slice(i);
      if (n > 0) pieces[0] = pieces[0]!.subarray(n);
    }
  } finally {
    closeSync(fd);
  }
}

/** Pieces per writev call (Linux's IOV_MAX). */
const IOV_MAX = 1024;

const FILE_STRUCTURE = EVENT_COLUMNS.map(([c, t]) => `${c} ${t}`).join(', ');

/** A ClickHouse string literal. */
function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The INSERT that reads rows written by writeRows to `file` into `target` (`settings`: a SETTINGS clause). */
export function rowBinaryInsert(target: string, file: string, settings = ''): string {
  return (
    `INSERT INTO ${target} (${EVENT_COLUMNS.map(([c]) => c).join(', ')}) ${settings ? `${settings} ` : ''}` +
    `SELECT * FROM file(${sqlString(file)}, 'RowBinary', ${sqlString(FILE_STRUCTURE)})`
  );
}
