import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ClickHouse } from '../clickhouse/client.js';
import { type Dialect, detectDialect } from '../clickhouse/dialect.js';
import { logger } from '../log/logger.js';
import type { StoreConfig } from './config.js';
import { isDataError } from './errors.js';
import { transcodeEvent } from './json-rowbinary.js';
import {
  backpressureWaits,
  batchesInserted,
  bufferedRows,
  deadLetters,
  insertRetries,
  insertSeconds,
  rowsInserted,
} from './metrics.js';
import { eventRowBinary, RowBinaryWriter, type RowSpan, rowBinaryInsert, writeRows } from './rowbinary.js';
import { decisionRow, detectionRow, eventRow, type Origin, RecordError, type Row, utcTime } from './rows.js';

/** What a record is; each kind has its table. */
export type RecordKind = 'events' | 'detections' | 'decisions';

export const TABLES = {
  events: 'mail_events',
  detections: 'detections',
  decisions: 'decisions',
  dead_letters: 'dead_letters',
} as const;

type Table = (typeof TABLES)[keyof typeof TABLES];

export interface StoreWriterOptions {
  /** Flush a table's buffer once it holds this many rows. */
  batchRows: number;
  /** Flush at the latest this long after the first buffered row arrived. */
  flushIntervalMs: number;
  /** Flush early when no write came for this long; 0 disables. */
  idleFlushMs: number;
  /** write() waits while this many rows are buffered or in flight (all tables). */
  maxBufferedRows: number;
  /** Inserts per table in flight at once (1: each batch waits for the previous one's answer). */
  insertsInFlight?: number;
  retryInitialMs: number;
  retryMaxMs: number;
}

export function writerOptions(cfg: StoreConfig): StoreWriterOptions {
  return {
    batchRows: cfg.batch_rows,
    flushIntervalMs: cfg.flush_interval_ms,
    idleFlushMs: cfg.idle_flush_ms,
    maxBufferedRows: cfg.max_buffered_rows,
    insertsInFlight: cfg.inserts_in_flight,
    retryInitialMs: cfg.retry_initial_ms,
    retryMaxMs: cfg.retry_max_ms,
  };
}

/** An origin that carries its record: a bus message, whose value is the record's JSON text. */
export interface ValueOrigin extends Origin {
  readonly value: Buffer;
  /**
   * Optionally, where the value lies in a larger buffer (bytes valueStart..valueEnd), so that it
   * is read without a Buffer made for it (a Kafka message gives its batch's buffer).
   */
  readonly valueSource?: Uint8Array;
  readonly valueStart?: number;
  readonly valueEnd?: number;
}

/** A record the store could not decode at all (not JSON, a tombstone where none is allowed). */
export interface DeadLetter {
  source: RecordKind;
  error: string;
  /** The record as text, as it arrived. */
  record: string;
  origin?: Origin;
}

export interface WriteResult {
  /** Rows ClickHouse acknowledged into their table. */
  stored: number;
  /** Records written to dead_letters instead. */
  deadLettered: number;
}

/** Thrown to writers still waiting when close() gave up (ClickHouse stayed away past the deadline). */
export class StoreClosedError extends Error {
  override name = 'StoreClosedError';
}

interface Ticket {
  remaining: number;
  result: WriteResult;
  resolve(r: WriteResult): void;
  reject(err: Error): void;
}

/** A mail_events row in RowBinary (embedded engine), with its record for dead_letters. */
type BinaryRow = RowSpan & { record: unknown };

/** A row as it waits: a JSONEachRow line, or RowBinary bytes. */
type PendingRow = string | BinaryRow;

interface TableBuffer {
  table: Table;
  /** Rows serialized when written (off the insert's critical path). */
  rows: PendingRow[];
  tickets: Ticket[];
  origins: (Origin | undefined)[];
  inflight: number;
  /** Inserts of this table in flight. */
  flushing: number;
  timer: NodeJS.Timeout | undefined;
  idle: NodeJS.Timeout | undefined;
}

const ROW_SOURCE: Record<Exclude<Table, 'dead_letters'>, RecordKind> = {
  mail_events: 'events',
  detections: 'detections',
  decisions: 'decisions',
};

/**
 * Batches records into ClickHouse: per table, a buffer flushed when it holds `batchRows` rows,
 * when its oldest row waited `flushIntervalMs`, or when writes paused for `idleFlushMs`. Up to
 * `insertsInFlight` inserts per table are in flight at a time (each its own part, token and
 * retries); rows arriving meanwhile form the next batch.
 *
 * `write()` resolves only once every one of its rows is acknowledged by ClickHouse (or stored
 * in dead_letters), so a bus consumer that awaits it before committing never commits past an
 * unstored record. Failed inserts are retried with exponential backoff until they succeed;
 * each batch carries an insert_deduplication_token so a retry whose first attempt did land is
 * dropped by ClickHouse (current dialect). A batch ClickHouse refuses for its data is split
 * in halves until the refused rows are alone; those go to dead_letters with the error, the
 * rest is stored.
 *
 * The single-host `mizugiwa run` uses it in-process; `mizugiwa store` feeds it from the bus.
 */
export class StoreWriter {
  readonly dialect: Dialect;
  private readonly buffers = new Map<Table, TableBuffer>();
  private readonly log = logger('store');
  private drainWaiters: Array<() => void> = [];
  private closing = false;
  private readonly abort = new AbortController();
  /** mail_events rows go as RowBinary (embedded engine, current dialect), encoded here. */
  private readonly binary: RowBinaryWriter | undefined;
  /** Where RowBinary batches wait for the engine to read them (made on first use). */
  private scratch: Promise<string> | undefined;
  /** Scratch files made so far (mail_events.N.rowbinary), and those no insert is using. */
  private scratchFiles = 0;
  private readonly freeScratch: number[] = [];
  /** Records taken whose encoding waits for the next turn of the event loop (counted as buffered). */
  private deferred = 0;
  /** sendNow() came while records waited to be encoded: send them once they are. */
  private sendRequested = false;

  constructor(
    private readonly ch: ClickHouse,
    dialect: Dialect,
    private readonly opts: StoreWriterOptions,
  ) {
    this.dialect = dialect;
    if (ch.backend === 'embedded' && dialect.name === 'current') this.binary = new RowBinaryWriter();
    for (const table of Object.values(TABLES)) {
      this.buffers.set(table, {
        table,
        rows: [],
        tickets: [],
        origins: [],
        inflight: 0,
        flushing: 0,
        timer: undefined,
        idle: undefined,
      });
    }
  }

  /** Opens a writer on `ch`, asking it which dialect it speaks. The schema must be migrated. */
  static async open(ch: ClickHouse, cfg: StoreConfig): Promise<StoreWriter> {
    return new StoreWriter(ch, await detectDialect(ch), writerOptions(cfg));
  }

  /** Rows buffered or in flight, all tables. */
  pending(): number {
    let n = this.deferred;
    for (const b of this.buffers.values()) n += b.rows.length + b.inflight;
    return n;
  }

  /**
   * Buffers `records` (MailEvents, Detections or Decisions as objects) and resolves once all are
   * stored. `origins[i]` says where records[i] came from (bus topic/partition/offset/timestamp).
   */
  async write(
    kind: RecordKind,
    records: readonly unknown[],
    origins?: readonly (Origin | undefined)[],
  ): Promise<WriteResult> {
    return (await this.accept(kind, records, origins)).stored;
  }

  /**
   * Like write(), in two steps: resolves once the records are taken (there is room in the
   * buffer; they are encoded, or set aside for dead_letters, on the next turn of the event loop),
   * with `stored`, which resolves once all are stored.
   * A record may also be a Buffer holding its JSON text, as it came from the bus: MailEvents
   * for the embedded engine are then transcoded to their row without being parsed into an
   * object (json-rowbinary.ts), and text that is not JSON goes to dead_letters.
   */
  accept(
    kind: RecordKind,
    records: readonly unknown[],
    origins?: readonly (Origin | undefined)[],
  ): Promise<{ stored: Promise<WriteResult> }> {
    return this.take(kind, records.length, records, origins);
  }

  /**
   * accept() for records that are each their origin's `value` (the JSON text of a bus message).
   * A row then keeps only its origin, which gives the text again should ClickHouse refuse the
   * row: no Buffer per row waits with the batch for the collector to trace.
   */
  acceptValues(
    kind: RecordKind,
    messages: readonly ValueOrigin[],
  ): Promise<{ stored: Promise<WriteResult> }> {
    return this.take(kind, messages.length, undefined, messages);
  }

  /** accept(): `records`, or (undefined) the values of `origins`. */
  private async take(
    kind: RecordKind,
    n: number,
    records: readonly unknown[] | undefined,
    origins: readonly (Origin | undefined)[] | undefined,
  ): Promise<{ stored: Promise<WriteResult> }> {
    if (this.closing) throw new StoreClosedError('store writer is closed');
    if (n === 0) return { stored: Promise.resolve({ stored: 0, deadLettered: 0 }) };
    if (this.mustWait(n)) await this.admit(n);
    const ticket = this.ticket(n);
    // Encoded on the next turn of the event loop, not now: a bus handler returns at once, so the
    // bus sends its next fetch before these records are encoded and the broker's answer comes
    // while they are (the rows are counted as buffered meanwhile).
    this.deferred += n;
    setImmediate(() => {
      this.deferred -= n;
      if (this.abort.signal.aborted) {
        ticket.reject(new StoreClosedError('store closed before these rows were stored'));
        this.wakeDrainWaiters();
      } else this.encode(kind, n, records, origins, ticket);
      if (this.deferred === 0 && this.sendRequested) {
        this.sendRequested = false;
        this.sendNow();
      }
    });
    return { stored: ticket.promise };
  }

  /**
   * Encodes `n` records (`records`, or the values of `origins`) and buffers their rows (or dead
   * letters) under `ticket`.
   */
  private encode(
    kind: RecordKind,
    n: number,
    records: readonly unknown[] | undefined,
    origins: readonly (Origin | undefined)[] | undefined,
    ticket: Ticket,
  ): void {
    const now = Date.now();
    const table = TABLES[kind];
    const rows: PendingRow[] = [];
    const rowOrigins: (Origin | undefined)[] = [];
    const bad: DeadLetter[] = [];
    const binary = kind === 'events' ? this.binary : undefined;
    for (let i = 0; i < n; i++) {
      const origin = origins?.[i];
      let rec: unknown = records?.[i];
      // The record's JSON bytes, when it came as bytes: a Buffer, or where its origin's value lies.
      let bytes: Uint8Array | undefined;
      let start = 0;
      let end = 0;
      if (records === undefined) {
        const o = origin as ValueOrigin;
        bytes = o.valueSource;
        if (bytes !== undefined) {
          start = o.valueStart ?? 0;
          end = o.valueEnd ?? bytes.length;
        } else rec = o.value;
      }
      if (bytes === undefined && Buffer.isBuffer(rec)) {
        bytes = rec;
        end = rec.length;
      }
      if (bytes !== undefined) {
        if (binary && transcodeEvent(binary, bytes, now, start, end)) {
          // A value of its origin is not kept: the origin gives it again (see refused()).
          rows.push(binary.endRow(records === undefined ? undefined : rec));
          rowOrigins.push(origin);
          continue;
        }
        const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8');
        try {
          rec = JSON.parse(text);
        } catch (err) {
          bad.push({
            source: kind,
            error: `not JSON: ${(err as Error).message}`,
            record: clip(text),
            origin,
          });
          continue;
        }
      }
      try {
        if (binary) {
          rows.push(eventRowBinary(binary, rec, now));
        } else {
          const row =
            kind === 'events'
              ? eventRow(rec, this.dialect.name, now)
              : kind === 'detections'
                ? detectionRow(rec, this.dialect.name)
                : decisionRow(rec, this.dialect.name, origin, now);
          rows.push(JSON.stringify(row));
        }
        rowOrigins.push(origin);
      } catch (err) {
        // RecordError: not a valid record. Anything else (a value JSON cannot carry, a throwing
        // getter) is just as much this record's fault; retrying would never get past it.
        const error =
          err instanceof RecordError ? err.message : `cannot serialize: ${(err as Error).message}`;
        bad.push({ source: kind, error, record: safeJson(rec), origin });
      }
    }
    this.append(this.buffers.get(table)!, rows, ticket, rowOrigins);
    if (bad.length > 0) {
      deadLetters.inc({ source: kind, why: 'record' }, bad.length);
      this.append(this.buffers.get('dead_letters')!, bad.map(deadLetterRow), ticket);
    }
  }

  /** Stores records that could not be decoded; resolves once they are in dead_letters. */
  async deadLetter(entries: readonly DeadLetter[]): Promise<void> {
    if (this.closing) throw new StoreClosedError('store writer is closed');
    if (entries.length === 0) return;
    if (this.mustWait(entries.length)) await this.admit(entries.length);
    for (const e of entries) deadLetters.inc({ source: e.source, why: 'decode' });
    const ticket = this.ticket(entries.length);
    this.append(this.buffers.get('dead_letters')!, entries.map(deadLetterRow), ticket);
    await ticket.promise;
  }

  /**
   * Starts sending what is buffered now instead of waiting for size or time (a caller that knows
   * no more rows will come soon, e.g. every bus handler is waiting, saves the idle wait).
   */
  sendNow(): void {
    // Records taken but not encoded yet are sent as soon as they are.
    if (this.deferred > 0) this.sendRequested = true;
    for (const b of this.buffers.values()) this.kick(b);
  }

  /** Sends everything buffered now and resolves when it is stored. */
  async flush(): Promise<void> {
    this.sendNow();
    while (this.pending() > 0) await new Promise<void>((r) => this.drainWaiters.push(r));
  }

  /**
   * Stops accepting writes and stores what is buffered. If ClickHouse does not take it within
   * `timeoutMs`, pending writers are rejected with StoreClosedError (their records stay
   * uncommitted on the bus and come again).
   */
  async close(timeoutMs = 30_000): Promise<void> {
    this.closing = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([this.flush().then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.log.warn({ pending: this.pending() }, 'store closing with rows not stored; they stay on the bus');
      this.abort.abort();
      for (const b of this.buffers.values()) {
        this.clearTimers(b);
        const tickets = new Set(b.tickets.splice(0));
        b.rows.length = 0;
        b.origins.length = 0;
        for (const t of tickets) t.reject(new StoreClosedError('store closed before these rows were stored'));
      }
      this.wakeDrainWaiters();
    }
    if (this.scratch) {
      // Synchronously: an empty directory, and close() resolves right after the writes it failed.
      const dir = await this.scratch.catch(() => undefined);
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }

  private ticket(n: number): Ticket & { promise: Promise<WriteResult> } {
    // A write whose records all went to dead_letters is settled there; n counts both.
    let resolve!: (r: WriteResult) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<WriteResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A writer that gave up waiting must not crash the process with an unhandled rejection.
    promise.catch(() => {});
    return { remaining: n, result: { stored: 0, deadLettered: 0 }, resolve, reject, promise };
  }

  /** Checked synchronously so writes racing each other cannot all slip in. */
  private mustWait(n: number): boolean {
    const p = this.pending();
    return p > 0 && p + n > this.opts.maxBufferedRows;
  }

  private async admit(n: number): Promise<void> {
    backpressureWaits.inc();
    while (this.mustWait(n)) {
      await new Promise<void>((r) => this.drainWaiters.push(r));
      if (this.abort.signal.aborted || this.closing) throw new StoreClosedError('store writer is closed');
    }
  }

  private append(b: TableBuffer, rows: PendingRow[], ticket: Ticket, origins?: (Origin | undefined)[]): void {
    if (rows.length === 0) return;
    for (let i = 0; i < rows.length; i++) {
      b.rows.push(rows[i]!);
      b.tickets.push(ticket);
      b.origins.push(origins?.[i]);
    }
    bufferedRows.set({ table: b.table }, b.rows.length + b.inflight);
    if (b.rows.length >= this.opts.batchRows) {
      this.kick(b);
      return;
    }
    b.timer ??= setTimeout(() => this.kick(b), this.opts.flushIntervalMs);
    if (this.opts.idleFlushMs > 0) {
      if (b.idle) clearTimeout(b.idle);
      b.idle = setTimeout(() => this.kick(b), this.opts.idleFlushMs);
    }
  }

  private clearTimers(b: TableBuffer): void {
    if (b.timer) clearTimeout(b.timer);
    if (b.idle) clearTimeout(b.idle);
    b.timer = undefined;
    b.idle = undefined;
  }

  private kick(b: TableBuffer): void {
    this.clearTimers(b);
    if (b.flushing >= (this.opts.insertsInFlight ?? 1) || b.rows.length === 0 || this.abort.signal.aborted)
      return;
    b.flushing++;
    const rows = b.rows.splice(0, this.opts.batchRows);
    const tickets = b.tickets.splice(0, rows.length);
    const origins = b.origins.splice(0, rows.length);
    b.inflight += rows.length;
    this.store(b.table, rows, tickets, origins, randomUUID())
      .catch((err: Error) => {
        // Only an abort (close deadline) ends up here.
        for (const t of new Set(tickets)) t.reject(err);
      })
      .finally(() => {
        b.inflight -= rows.length;
        b.flushing--;
        bufferedRows.set({ table: b.table }, b.rows.length + b.inflight);
        this.wakeDrainWaiters();
        if (b.rows.length > 0) this.kick(b);
      });
  }

  private wakeDrainWaiters(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const r of w) r();
  }

  /** Inserts rows until ClickHouse acknowledges them; splits around rows it refuses. */
  private async store(
    table: Table,
    rows: PendingRow[],
    tickets: Ticket[],
    origins: (Origin | undefined)[],
    token: string,
  ): Promise<void> {
    let attempt = 0;
    for (;;) {
      if (this.abort.signal.aborted) throw new StoreClosedError('store closed before these rows were stored');
      const started = performance.now();
      try {
        await this.insert(table, rows, token);
        insertSeconds.observe({ table }, (performance.now() - started) / 1000);
        batchesInserted.inc({ table });
        rowsInserted.inc({ table }, rows.length);
        if (attempt > 0)
          this.log.info(
            { table, rows: rows.length, attempts: attempt + 1 },
            'insert succeeded after retries',
          );
        this.settle(tickets, table === 'dead_letters' ? 'deadLettered' : 'stored');
        return;
      } catch (err) {
        if (this.abort.signal.aborted)
          throw new StoreClosedError('store closed before these rows were stored');
        if (isDataError(err)) {
          if (rows.length > 1) {
            const mid = rows.length >>> 1;
            await this.store(
              table,
              rows.slice(0, mid),
              tickets.slice(0, mid),
              origins.slice(0, mid),
              `${token}.0`,
            );
            await this.store(table, rows.slice(mid), tickets.slice(mid), origins.slice(mid), `${token}.1`);
            return;
          }
          this.refused(table, rows[0]!, tickets[0]!, origins[0], err as Error);
          return;
        }
        attempt++;
        insertRetries.inc({ table });
        const delay = backoff(attempt, this.opts.retryInitialMs, this.opts.retryMaxMs);
        if (attempt === 1 || attempt % 10 === 0) {
          this.log.warn(
            { table, rows: rows.length, attempt, retry_in_ms: Math.round(delay), err: errText(err) },
            'insert failed; retrying',
          );
        }
        await sleep(delay, this.abort.signal);
      }
    }
  }

  private async insert(table: Table, rows: PendingRow[], token: string): Promise<void> {
    const target = `${this.ch.database}.${table}`;
    if (typeof rows[0] !== 'string') return this.insertBinary(target, rows as BinaryRow[], token);
    let query: string;
    let body: string;
    let settings: Record<string, number> | undefined;
    if (this.dialect.name === 'current') {
      query = `INSERT INTO ${target} SETTINGS ${currentInsertSettings(token)} FORMAT JSONEachRow`;
      body = (rows as string[]).join('\n');
    } else {
      // Legacy servers fill omitted columns with type defaults, not DEFAULT expressions: stamp
      // the ingest time per attempt.
      const stamp = `,"${table === 'dead_letters' ? 'ts' : 'ingested_at'}":"${utcTime(Date.now(), 0, 'now')}"}`;
      query = `INSERT INTO ${target} FORMAT JSONEachRow`;
      body = (rows as string[]).map((r) => r.slice(0, -1) + stamp).join('\n');
      settings = { input_format_skip_unknown_fields: 1 };
    }
    const r = await this.ch.client.exec({
      query,
      values: Readable.from([`${body}\n`]),
      clickhouse_settings: settings,
    });
    // The answer to an INSERT is empty; read it so the connection is free again.
    for await (const _ of r.stream) {
      // nothing
    }
  }

  /**
   * The embedded engine takes the batch as a RowBinary file (its `file()` table function reads
   * it with no parsing to speak of). The files are kept and rewritten in place, one per insert in
   * flight: creating and deleting a file per insert cost a new inode each time. A file is emptied
   * once its insert returned, either way, and all are removed on close.
   */
  private async insertBinary(target: string, rows: BinaryRow[], token: string): Promise<void> {
    this.scratch ??= mkdtemp(join(tmpdir(), 'mizugiwa-store-'));
    const dir = await this.scratch;
    const slot = this.freeScratch.pop() ?? this.scratchFiles++;
    const file = join(dir, `mail_events.${slot}.rowbinary`);
    try {
      writeRows(file, rows);
      const r = await this.ch.client.exec({
        query: rowBinaryInsert(target, file, `SETTINGS ${currentInsertSettings(token)}`),
      });
      for await (const _ of r.stream) {
        // nothing: an INSERT answers with no rows
      }
    } finally {
      await truncate(file, 0).catch(() => {});
      this.freeScratch.push(slot);
    }
  }

  private refused(
    table: Table,
    pending: PendingRow,
    ticket: Ticket,
    origin: Origin | undefined,
    err: Error,
  ): void {
    const error = errText(err);
    // A row transcoded from its origin's value kept no record of its own (acceptValues()).
    const record = typeof pending === 'string' ? undefined : (pending.record ?? origin?.value);
    const row =
      typeof pending === 'string'
        ? pending
        : Buffer.isBuffer(record)
          ? record.toString('utf8')
          : safeJson(record);
    if (table === 'dead_letters') {
      // Nothing more can be done with it; it is in the log in full.
      this.log.error({ row, err: error }, 'dead letter refused by ClickHouse');
      this.settle([ticket], 'deadLettered');
      return;
    }
    const source = ROW_SOURCE[table as Exclude<Table, 'dead_letters'>];
    deadLetters.inc({ source, why: 'refused' });
    const id = /^\{"id":"((?:[^"\\]|\\.)*)"/.exec(row)?.[1];
    this.log.warn({ table, id, err: error }, 'record refused by ClickHouse; kept in dead_letters');
    // The ticket is settled by the dead_letters insert instead.
    this.append(
      this.buffers.get('dead_letters')!,
      [deadLetterRow({ source, error, record: row, origin })],
      ticket,
    );
  }

  private settle(tickets: Ticket[], as: 'stored' | 'deadLettered'): void {
    for (const t of tickets) {
      t.result[as]++;
      if (--t.remaining === 0) t.resolve(t.result);
    }
  }
}

/**
 * Settings of an INSERT in the current dialect (in the statement, not as client settings: the
 * embedded engine turns client settings into session-wide SETs that would stick to later
 * statements).
 * - `insert_deduplication_token`: a retry whose first attempt did land is dropped, and with
 *   `deduplicate_blocks_in_dependent_materialized_views` the rollups do not count it twice.
 * - `optimize_on_insert = 0`: the inserted block is sorted but not also collapsed by the
 *   Replacing/SummingMergeTree merge logic. That step only removes copies inside one batch,
 *   which background merges and the queries' `LIMIT 1 BY id` remove anyway, and it was more
 *   than half of the embedded engine's insert cost (bench/store: 5.3 -> 2.3 µs per event).
 */
export function currentInsertSettings(token: string, optimizeOnInsert = false): string {
  return (
    `insert_deduplication_token = '${token}', deduplicate_blocks_in_dependent_materialized_views = 1, ` +
    `optimize_on_insert = ${optimizeOnInsert ? 1 : 0}`
  );
}

function deadLetterRow(d: DeadLetter): string {
  const row: Row = {
    source: d.source,
    topic: d.origin?.topic ?? '',
    partition: d.origin?.partition ?? -1,
    offset: d.origin?.offset ?? '',
    error: d.error,
    record: d.record,
  };
  return JSON.stringify(row);
}

/** Longest text of an undecodable record kept in dead_letters. */
const MAX_DEAD_LETTER_BYTES = 1 << 20;

/** `text` cut to what dead_letters keeps of an undecodable record. */
export function clip(text: string): string {
  return text.length > MAX_DEAD_LETTER_BYTES ? text.slice(0, MAX_DEAD_LETTER_BYTES) : text;
}

/** The record as text for dead_letters, even when JSON cannot carry it as it is. */
function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

export function errText(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return `${e?.code ? `${e.code}: ` : ''}${String(e?.message ?? err)
    .split('\n')[0]!
    .slice(0, 500)}`;
}

function backoff(attempt: number, initial: number, max: number): number {
  const d = Math.min(max, initial * 2 ** Math.min(attempt - 1, 20));
  return d / 2 + (Math.random() * d) / 2;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
