import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '../../src/clickhouse/client.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { storeSchema } from '../../src/store/config.js';
import {
  EVENT_COLUMNS,
  eventRowBinary,
  RowBinaryWriter,
  rowBinaryInsert,
  rowPieces,
  tsMicros,
  writeRows,
} from '../../src/store/rowbinary.js';
import { eventRow, RecordError } from '../../src/store/rows.js';
import { scratchEngine } from './engine.js';
import { harvestEvents, traceEvents } from './fixtures.js';

// The embedded store writes mail_events as RowBinary. These pin it to the migrated table and to
// what the JSONEachRow path (the server's) stores for the same events.

let ch: ClickHouse;
const cfg = storeSchema.parse({});

/** Events that use every column, odd values included. */
function varied(): MailEvent[] {
  return [
    ...traceEvents(),
    ...harvestEvents(2, 3),
    {
      id: 'x:1',
      ts: '2026-11-27T23:59:59.999999-05:30',
      host: 'mx9',
      kind: 'disconnect',
      mta: 'postfix',
      client_ip: '2001:db8::25',
      client_port: 65535,
      sender: '',
      recipients: ['a@example.org', 'ユーザー@例え.jp'],
      size: 2 ** 40,
      nrcpt: 2,
      delay: 0.25,
      count: 1.5,
      truncated: true,
      command_counts: { rcpt: { ok: 1, total: 2 } },
      text: "tab\there, newline\nthere, quote ' and \\ and NUL \u0000",
      raw: 'Nov 27 23:59:59 mx9 ünïcödé ✓',
      future_field: { a: 1 },
    } as MailEvent,
    { id: 'x:2', kind: 'unknown', raw: '' } as MailEvent,
  ];
}

describe('mail_events as RowBinary (embedded engine)', () => {
  beforeAll(async () => {
    ch = await scratchEngine('mz-rowbinary-', 'rb', cfg);
  });
  afterAll(async () => {
    await ch?.close();
  });

  it('names every column the table takes from an insert, with its type', async () => {
    const rs = await ch.client.query({
      query: `SELECT name, type FROM system.columns WHERE database = 'rb' AND table = 'mail_events'
              AND default_kind NOT IN ('MATERIALIZED', 'DEFAULT', 'ALIAS') ORDER BY position`,
      format: 'JSONEachRow',
    });
    const cols = await rs.json<{ name: string; type: string }>();
    // LowCardinality is a storage choice; RowBinary carries the inner type.
    const unwrap = (t: string) => t.replace(/^LowCardinality\((.*)\)$/, '$1').replace(/\s+/g, '');
    expect(cols.map((c) => [c.name, unwrap(c.type)])).toEqual(
      EVENT_COLUMNS.map(([n, t]) => [n, t.replace(/\s+/g, '')]),
    );
  });

  it('stores the same rows as the JSONEachRow path does', async () => {
    for (const t of ['a', 'b']) {
      await ch.client.command({ query: `CREATE TABLE rb.${t} AS rb.mail_events` });
    }
    const events = varied();
    const now = Date.parse('2026-11-27T12:00:00Z');
    await ch.client.insert({
      table: 'rb.a',
      values: events.map((e) => eventRow(e, 'current', now)),
      format: 'JSONEachRow',
    });
    const w = new RowBinaryWriter(64);
    // A small chunk size, so rows also cross from one chunk to the next.
    const file = join(tmpdir(), `mz-rowbinary-${process.pid}-${Date.now()}.bin`);
    writeRows(
      file,
      events.map((e) => eventRowBinary(w, e, now)),
    );
    try {
      await ch.client.command({ query: rowBinaryInsert('rb.b', file) });
    } finally {
      rmSync(file, { force: true });
    }
    const read = async (t: string) =>
      (
        await ch.client.query({
          query: `SELECT * EXCEPT ingested_at FROM rb.${t} ORDER BY id`,
          format: 'JSONEachRow',
        })
      ).json<Record<string, unknown>>();
    const [a, b] = [await read('a'), await read('b')];
    expect(b).toHaveLength(events.length);
    expect(b).toEqual(a);
    const odd = b.find((r) => r.id === 'x:1')!;
    expect(odd).toMatchObject({
      ts: '2026-11-28 05:29:59.999999',
      client_ip: '2001:db8::25',
      sender: '',
      recipients: ['a@example.org', 'ユーザー@例え.jp'],
      size: 2 ** 40,
      truncated: true,
      extra: '{"future_field":{"a":1}}',
    });
    expect(b.find((r) => r.id === 'x:2')).toMatchObject({ client_ip: '::', sender: null });
  });

  it('refuses a value that does not fit, leaving nothing of the row behind', () => {
    const w = new RowBinaryWriter(64);
    const bytes = (r: ReturnType<typeof eventRowBinary>) => r.chunk.subarray(r.start, r.end);
    const ok = bytes(eventRowBinary(w, traceEvents()[0], 0));
    const bad: unknown[] = [
      { ...traceEvents()[0], client_port: 70000 },
      { ...traceEvents()[0], pid: -1 },
      { ...traceEvents()[0], client_ip: '300.1.2.3' },
      { ...traceEvents()[0], recipients: 'a@b' },
      { ...traceEvents()[0], host: { x: 1 } },
      { ...traceEvents()[0], delay: 'slow' },
      { ...traceEvents()[0], ts: '2026-13-01T00:00:00Z' },
      { kind: 'connect' },
      null,
    ];
    for (const e of bad) expect(() => eventRowBinary(w, e, 0)).toThrow(RecordError);
    const again = eventRowBinary(w, traceEvents()[0], 0);
    expect(bytes(again)).toEqual(ok);
    // Rows written one after the other in a chunk go out as one piece.
    const big = new RowBinaryWriter(4096);
    const two = [eventRowBinary(big, traceEvents()[1], 0), eventRowBinary(big, traceEvents()[2], 0)];
    expect(rowPieces(two)).toHaveLength(1);
  });

  it('writes rows in any number of pieces as their bytes in order, over a longer file', () => {
    const w = new RowBinaryWriter(1 << 16);
    const rows = Array.from({ length: 3000 }, (_, i) => eventRowBinary(w, traceEvents()[i % 3], i));
    // Reversed, no two rows are adjacent: 3000 pieces, more than one writev takes.
    const reversed = [...rows].reverse();
    expect(rowPieces(reversed)).toHaveLength(3000);
    const want = Buffer.concat(reversed.map((r) => r.chunk.subarray(r.start, r.end)));
    const file = join(tmpdir(), `mz-rowbinary-pieces-${process.pid}-${Date.now()}.bin`);
    try {
      writeFileSync(file, Buffer.alloc(want.length + 4096, 0xff));
      writeRows(file, reversed);
      expect(readFileSync(file).equals(want)).toBe(true);
      writeRows(file, rows.slice(0, 1));
      expect(readFileSync(file).equals(rows[0]!.chunk.subarray(rows[0]!.start, rows[0]!.end))).toBe(true);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('converts ISO 8601 times with offsets and fractions to µs, and epoch ms', () => {
    expect(tsMicros('2026-11-27T10:15:00.1+01:00')).toBe(Date.parse('2026-11-27T09:15:00.1Z') * 1000);
    expect(tsMicros('2026-11-27T10:15:00.123456789Z')).toBe(
      Date.parse('2026-11-27T10:15:00Z') * 1000 + 123456,
    );
    expect(tsMicros('2026-11-27 10:15:00')).toBe(Date.parse('2026-11-27T10:15:00Z') * 1000);
    expect(tsMicros(1_795_800_000_123)).toBe(1_795_800_000_123_000);
    expect(() => tsMicros('yesterday')).toThrow(/not an ISO 8601 time/);
  });
});
