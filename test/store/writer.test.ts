import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ClickHouse } from '../../src/clickhouse/client.js';
import { dialectOf } from '../../src/clickhouse/dialect.js';
import { type StoreConfig, storeSchema } from '../../src/store/config.js';
import { StoreClosedError, StoreWriter, writerOptions } from '../../src/store/writer.js';
import { scratchEngine } from './engine.js';
import { decisionFor, detectionFor, harvestEvents, traceEvents } from './fixtures.js';

// chdb shares the machine's cores with everything else: allow slow inserts and start-up.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// StoreWriter against the embedded engine. Failures of ClickHouse are injected by wrapping the
// real client's insert (a unit test: the engine is real, the outage is simulated).

const cfg: StoreConfig = storeSchema.parse({
  batch_rows: 1000,
  flush_interval_ms: 50,
  retry_initial_ms: 5,
  retry_max_ms: 20,
});

let ch: ClickHouse;

async function scalar(sql: string): Promise<number> {
  const rs = await ch.client.query({ query: sql, format: 'JSONEachRow' });
  const [row] = await rs.json<Record<string, string>>();
  return Number(Object.values(row!)[0]);
}

type Exec = ClickHouse['client']['exec'];

/** The test engine with its client's exec() replaced by `exec` (which may call the real one). */
function withExec(exec: (params: Parameters<Exec>[0], real: Exec) => ReturnType<Exec>): ClickHouse {
  const real = ch.client;
  const realExec: Exec = (params) => real.exec(params);
  return {
    ...ch,
    client: new Proxy(real, {
      get(target, prop, receiver) {
        if (prop !== 'exec') return Reflect.get(target, prop, receiver);
        return (params: Parameters<Exec>[0]) => exec(params, realExec);
      },
    }),
  };
}

/** A ClickHouse whose inserts fail as `plan` says: 'down' (not sent), 'lost-ack' (landed, reported failed). */
function faulty(plan: Array<'down' | 'lost-ack' | 'ok'>): ClickHouse & { calls: number } {
  const wrapped = Object.assign(
    withExec(async (params, real) => {
      const step = plan[wrapped.calls++] ?? 'ok';
      if (step === 'down')
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
      const r = await real(params);
      for await (const _ of r.stream) {
        // drain
      }
      if (step === 'lost-ack') throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      return r;
    }),
    { calls: 0 },
  );
  return wrapped;
}

describe('StoreWriter on the embedded engine', () => {
  beforeAll(async () => {
    ch = await scratchEngine('mz-writer-', 'mz', cfg);
  });
  afterAll(async () => {
    await ch?.close();
  });
  beforeEach(async () => {
    for (const t of ['mail_events', 'detections', 'decisions', 'dead_letters', 'rollup_source_1m']) {
      await ch.client.command({ query: `TRUNCATE TABLE mz.${t}` });
    }
  });

  it('stores events, detections and decisions and resolves only once they are stored', async () => {
    const w = await StoreWriter.open(ch, cfg);
    const events = [...traceEvents(), ...harvestEvents(5, 20)];
    const r = await w.write('events', events);
    expect(r).toEqual({ stored: events.length, deadLettered: 0 });
    expect(await scalar('SELECT count() FROM mz.mail_events')).toBe(events.length);
    expect(await w.write('detections', [detectionFor('198.51.100.1')])).toEqual({
      stored: 1,
      deadLettered: 0,
    });
    expect(await w.write('decisions', [decisionFor('198.51.100.0/24')])).toEqual({
      stored: 1,
      deadLettered: 0,
    });
    expect(
      await scalar(
        "SELECT count() FROM mz.decisions WHERE target_low = toIPv6('198.51.100.0') AND target_high = toIPv6('198.51.100.255')",
      ),
    ).toBe(1);
    // Every field arrives: microseconds kept, time in UTC, null sender vs none, rollups fed.
    const rs = await ch.client.query({
      query: "SELECT toString(ts) AS ts, sender, client_ip FROM mz.mail_events WHERE id = 'mx1:1:100'",
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([
      { ts: '2026-11-27 09:15:00.100000', sender: null, client_ip: '::ffff:192.0.2.10' },
    ]);
    expect(
      await scalar(
        "SELECT sum(user_unknown) FROM mz.rollup_source_1m WHERE client_ip BETWEEN toIPv6('198.51.100.0') AND toIPv6('198.51.100.255')",
      ),
    ).toBe(100);
    expect(
      await scalar(
        "SELECT sum(user_unknown) FROM mz.rollup_recipient_domain_1m WHERE recipient_domain = 'example.test'",
      ),
    ).toBe(100);
    await w.close();
  });

  it('takes records as their JSON bytes (as they come from the bus): the same rows as from objects; bad ones go to dead_letters', async () => {
    const events = [...traceEvents(), ...harvestEvents(3, 10)];
    // One with a field that has no column (the slow path, not the transcoder), one with a value
    // that does not fit, one that is not JSON at all.
    const odd = { ...events[0]!, id: 'odd-1', future_field: [1, 2] };
    const unfit = { ...events[1]!, id: 'unfit-1', client_port: 70_000 };
    const bytes = [...events, odd, unfit].map((e) => Buffer.from(JSON.stringify(e)));
    bytes.push(Buffer.from('{"id":"broken",'));
    const origins = bytes.map((_, i) => ({ topic: 'mail.events', partition: 1, offset: String(i) }));
    const w = await StoreWriter.open(ch, cfg);
    expect(await w.write('events', bytes, origins)).toEqual({ stored: events.length + 1, deadLettered: 2 });
    const columns =
      'id, ts, host, kind, reason, client_ip, sender, recipient, recipients, size, delay, extra, raw';
    const read = async () => {
      const rs = await ch.client.query({
        query: `SELECT ${columns} FROM mz.mail_events WHERE id != 'odd-1' ORDER BY id`,
        format: 'JSONEachRow',
      });
      return rs.json();
    };
    const fromBytes = await read();
    expect(
      await scalar(
        "SELECT count() FROM mz.mail_events WHERE id = 'odd-1' AND extra = '{\"future_field\":[1,2]}'",
      ),
    ).toBe(1);
    const rs = await ch.client.query({
      query: 'SELECT offset, error FROM mz.dead_letters ORDER BY toUInt32(offset)',
      format: 'JSONEachRow',
    });
    const dl = await rs.json<{ offset: string; error: string }>();
    expect(dl.map((d) => d.offset)).toEqual([String(events.length + 1), String(events.length + 2)]);
    expect(dl[0]!.error).toBe('client_port: expected an integer from 0 to 65535, got 70000');
    expect(dl[1]!.error).toMatch(/^not JSON: /);
    await ch.client.command({ query: 'TRUNCATE TABLE mz.mail_events' });
    await w.write('events', events);
    expect(await read()).toEqual(fromBytes);
    await w.close();
  });

  it('keeps fields it has no column for in extra, and the null sender as ""', async () => {
    const w = await StoreWriter.open(ch, cfg);
    await w.write('events', [
      {
        id: 'x1',
        ts: '2026-11-27T10:00:00Z',
        kind: 'delivery',
        sender: '',
        raw: 'r',
        future_field: { a: 1 },
      },
    ]);
    const rs = await ch.client.query({
      query: "SELECT sender, extra FROM mz.mail_events WHERE id = 'x1'",
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([{ sender: '', extra: '{"future_field":{"a":1}}' }]);
    await w.close();
  });

  it('sends an event whose values do not fit their columns to dead_letters with the error; the rest of the batch is stored', async () => {
    const w = await StoreWriter.open(ch, cfg);
    const events = harvestEvents(4, 25);
    events[37] = { ...events[37]!, client_ip: 'not-an-ip' };
    events[81] = { ...events[81]!, pid: 'pid?' as unknown as number };
    const r = await w.write(
      'events',
      events,
      events.map((_, i) => ({ topic: 'mail.events', partition: 0, offset: String(i) })),
    );
    expect(r).toEqual({ stored: 98, deadLettered: 2 });
    expect(await scalar('SELECT count() FROM mz.mail_events')).toBe(98);
    const rs = await ch.client.query({
      query: 'SELECT source, topic, offset, error, record FROM mz.dead_letters ORDER BY toUInt32(offset)',
      format: 'JSONEachRow',
    });
    const dl = await rs.json<{ source: string; offset: string; error: string; record: string }>();
    expect(dl.map((d) => [d.source, d.offset])).toEqual([
      ['events', '37'],
      ['events', '81'],
    ]);
    expect(dl[0]!.error).toBe('client_ip: not an IP address: "not-an-ip"');
    expect(dl[1]!.error).toBe('pid: expected an integer from 0 to 4294967295, got "pid?"');
    expect(JSON.parse(dl[0]!.record).client_ip).toBe('not-an-ip');
    await w.close();
  });

  it('sends a record ClickHouse refuses to dead_letters with its error; the rest of the batch is stored', async () => {
    const w = await StoreWriter.open(ch, cfg);
    const detections = ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].map((ip) =>
      detectionFor(ip),
    );
    detections[2] = { ...detections[2]!, confidence: 'very' as unknown as number };
    const r = await w.write(
      'detections',
      detections,
      detections.map((_, i) => ({ topic: 'mail.detections', partition: 0, offset: String(i) })),
    );
    expect(r).toEqual({ stored: 3, deadLettered: 1 });
    expect(await scalar('SELECT count() FROM mz.detections')).toBe(3);
    const rs = await ch.client.query({
      query: 'SELECT source, offset, error, record FROM mz.dead_letters',
      format: 'JSONEachRow',
    });
    const dl = await rs.json<{ source: string; offset: string; error: string; record: string }>();
    expect(dl.map((d) => [d.source, d.offset])).toEqual([['detections', '2']]);
    // ClickHouse's own words, e.g. "CANNOT_PARSE_INPUT_ASSERTION_FAILED: ... confidence ..."
    expect(dl[0]!.error).toMatch(/confidence|Float64|parse/i);
    expect(JSON.parse(dl[0]!.record).confidence).toBe('very');
    await w.close();
  });

  for (const ranged of [false, true]) {
    it(`acceptValues(): events read from their origins (bus messages${ranged ? ', values as ranges of one buffer' : ''}); a refused row goes to dead_letters with its text from the origin`, async () => {
      const events = harvestEvents(4, 5);
      events[7] = { ...events[7]!, id: 'refuse-me' };
      // As the Kafka bus hands records: the value is made anew each time it is read.
      // With `ranged`, as a Kafka batch: every value in one buffer, each given by where it lies.
      const texts = events.map((e) => Buffer.from(JSON.stringify(e)));
      const all = Buffer.concat(texts);
      class Message {
        reads = 0;
        readonly topic = 'mail.events';
        readonly partition = 3;
        constructor(
          readonly offset: string,
          private readonly start: number,
          private readonly end: number,
        ) {}
        get value(): Buffer {
          this.reads++;
          return Buffer.from(all.subarray(this.start, this.end));
        }
        get valueSource(): Buffer | undefined {
          return ranged ? all : undefined;
        }
        get valueStart(): number {
          return this.start;
        }
        get valueEnd(): number {
          return this.end;
        }
      }
      let at = 0;
      const messages = texts.map((t, i) => {
        const start = at;
        at += t.length;
        return new Message(String(100 + i), start, at);
      });
      // ClickHouse refuses any batch holding the row of 'refuse-me' (read from the batch's file).
      const refusing = withExec(async (params, real) => {
        const file = /file\('([^']+)'/.exec(params.query)?.[1];
        if (file && readFileSync(file).includes('refuse-me'))
          throw Object.assign(new Error('Cannot parse input: expected something'), {
            code: '27',
            type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
          });
        return real(params);
      });
      const w = new StoreWriter(refusing, dialectOf('26.7'), writerOptions(cfg));
      const taken = await w.acceptValues('events', messages);
      expect(await taken.stored).toEqual({ stored: events.length - 1, deadLettered: 1 });
      expect(await scalar('SELECT count() FROM mz.mail_events')).toBe(events.length - 1);
      expect(await scalar("SELECT count() FROM mz.mail_events WHERE id = 'refuse-me'")).toBe(0);
      const rs = await ch.client.query({
        query: 'SELECT source, topic, partition, offset, error, record FROM mz.dead_letters',
        format: 'JSONEachRow',
      });
      const dl = await rs.json<Record<string, string | number>>();
      expect(dl).toHaveLength(1);
      expect(dl[0]).toMatchObject({ source: 'events', topic: 'mail.events', partition: 3, offset: '107' });
      expect(dl[0]!.error).toMatch(/CANNOT_PARSE_INPUT_ASSERTION_FAILED|Cannot parse input/);
      expect(JSON.parse(dl[0]!.record as string)).toEqual(events[7]);
      // Read once to encode (not at all when ranged); the refused one once more for its dead letter.
      const encodeReads = ranged ? 0 : 1;
      expect(messages.map((m) => m.reads)).toEqual(messages.map((_, i) => encodeReads + (i === 7 ? 1 : 0)));
      await w.close();
    });
  }

  it('sends records that are not valid records (no kind, bad time, bad target) to dead_letters', async () => {
    const w = await StoreWriter.open(ch, cfg);
    const r = await w.write('events', [
      { id: 'a', raw: 'x' },
      { id: 'b', kind: 'reject', raw: 'x', ts: 'yesterday' },
      'just a string',
      { id: 'c', kind: 'reject', raw: 'x', size: 10n },
      ...traceEvents(),
    ]);
    expect(r).toEqual({ stored: traceEvents().length, deadLettered: 4 });
    expect(await w.write('decisions', [decisionFor('not/an/ip')])).toEqual({ stored: 0, deadLettered: 1 });
    const rs = await ch.client.query({
      query: 'SELECT error FROM mz.dead_letters ORDER BY error',
      format: 'JSONEachRow',
    });
    const errors = (await rs.json<{ error: string }>()).map((e) => e.error);
    expect(errors).toEqual([
      'a MailEvent must be a JSON object',
      'cannot serialize: Do not know how to serialize a BigInt',
      'kind: missing',
      'target: not an IP address or prefix: "not/an/ip"',
      'ts: not an ISO 8601 time: "yesterday"',
    ]);
    await w.close();
  });

  it('retries while ClickHouse is unreachable and resolves only after the insert went through', async () => {
    const f = faulty(['down', 'down', 'down']);
    const w = new StoreWriter(f, dialectOf('26.7'), writerOptions(cfg));
    const events = harvestEvents(2, 10);
    const r = await w.write('events', events);
    expect(f.calls).toBe(4);
    expect(r.stored).toBe(20);
    expect(await scalar('SELECT count() FROM mz.mail_events')).toBe(20);
    await w.close();
  });

  it('a retry whose first attempt did land is dropped by the deduplication token (and the rollups count once)', async () => {
    const f = faulty(['lost-ack']);
    const w = new StoreWriter(f, dialectOf('26.7'), writerOptions(cfg));
    await w.write('events', harvestEvents(2, 10));
    expect(f.calls).toBe(2);
    expect(await scalar('SELECT count() FROM mz.mail_events')).toBe(20);
    expect(await scalar('SELECT sum(events) FROM mz.rollup_source_1m')).toBe(20);
    await w.close();
  });

  it('redelivered events (same id) are one row after merge (ReplacingMergeTree)', async () => {
    const w = await StoreWriter.open(ch, cfg);
    const events = harvestEvents(3, 10);
    await w.write('events', events);
    await w.write('events', events.slice(5, 25));
    expect(await scalar('SELECT count() FROM mz.mail_events')).toBe(50);
    expect(await scalar('SELECT count() FROM mz.mail_events FINAL')).toBe(30);
    await w.close();
  });

  for (const inFlight of [1, 2]) {
    it(`sends at most inserts_in_flight = ${inFlight} inserts of a table at once, and stores them all`, async () => {
      let now = 0;
      let most = 0;
      const counting = withExec(async (params, real) => {
        most = Math.max(most, ++now);
        try {
          // Slow enough that the next batches are ready before this one is answered.
          await new Promise((r) => setTimeout(r, 50));
          return await real(params);
        } finally {
          now--;
        }
      });
      const w = new StoreWriter(counting, dialectOf('26.7'), {
        ...writerOptions(cfg),
        batchRows: 10,
        insertsInFlight: inFlight,
      });
      const events = harvestEvents(4, 15);
      const results = await Promise.all(
        [0, 1, 2, 3, 4, 5].map((i) => w.write('events', events.slice(i * 10, i * 10 + 10))),
      );
      expect(results.reduce((n, r) => n + r.stored, 0)).toBe(60);
      expect(most).toBe(inFlight);
      expect(await scalar('SELECT count() FROM mz.mail_events')).toBe(60);
      await w.close();
    });
  }

  it('backpressure: a write waits while max_buffered_rows are buffered or in flight', async () => {
    const f = faulty(['down', 'down']);
    const w = new StoreWriter(f, dialectOf('26.7'), {
      ...writerOptions(cfg),
      maxBufferedRows: 30,
      retryInitialMs: 30,
      retryMaxMs: 30,
    });
    const first = w.write('events', harvestEvents(1, 25));
    let secondAdmitted = false;
    const second = w.write('events', harvestEvents(2, 10).slice(10)).then((r) => {
      secondAdmitted = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(w.pending()).toBe(25);
    expect(secondAdmitted).toBe(false);
    expect((await first).stored).toBe(25);
    expect((await second).stored).toBe(10);
    await w.close();
  });

  it('accept() returns before encoding (counted as buffered); sendNow() and close() do not leave those rows behind', async () => {
    const w = await StoreWriter.open(ch, { ...cfg, idle_flush_ms: 0, flush_interval_ms: 60_000 });
    const bytes = harvestEvents(4, 30).map((e) => Buffer.from(JSON.stringify(e)));
    const taken = await w.accept('events', bytes);
    // Not encoded yet: on the next turn of the event loop. Buffered meanwhile (backpressure counts them).
    expect(w.pending()).toBe(bytes.length);
    // Without the idle flush and with a minute's interval, only sendNow() sends them: once encoded.
    w.sendNow();
    expect(await taken.stored).toEqual({ stored: bytes.length, deadLettered: 0 });
    expect(await scalar('SELECT count() FROM mz.mail_events')).toBe(bytes.length);
    const more = await w.accept(
      'events',
      bytes.slice(0, 5).map((b) => Buffer.from(b)),
    );
    await w.close();
    expect(await more.stored).toEqual({ stored: 5, deadLettered: 0 });
  });

  it('close() gives up after its deadline while ClickHouse stays away: pending writes are rejected, not resolved', async () => {
    const f = faulty(Array(1000).fill('down'));
    const w = new StoreWriter(f, dialectOf('26.7'), writerOptions(cfg));
    const pending = w.write('events', harvestEvents(1, 5));
    await w.close(100);
    await expect(pending).rejects.toBeInstanceOf(StoreClosedError);
    await expect(w.write('events', harvestEvents(1, 1))).rejects.toBeInstanceOf(StoreClosedError);
  });
});
