// The record batch decoder kafkajs loads here (src/bus/kafkajs-records.ts) against kafkajs' own,
// on batches kafkajs' own encoder wrote: the same batch fields, the same records field by field,
// and the same bytes consumed.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  kafkajsBatch,
  kafkajsBatchDecoder,
  kafkajsParts,
  leanBatch,
  leanRecordsInstalled,
} from '../../src/bus/kafkajs.js';
import { type KafkaDecoder, LeanRecord, leanRecordBatchDecoder } from '../../src/bus/kafkajs-records.js';

const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => KafkaDecoder;
const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: string | number): unknown };
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch(b: Record<string, unknown>): Promise<{ buffer: Buffer }>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (r: RecordSpec) => unknown;
const GZIP = 1;

interface RecordSpec {
  offsetDelta?: number;
  timestampDelta?: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | Buffer[]>;
}

const own = kafkajsBatchDecoder();
const lean = leanRecordBatchDecoder(kafkajsParts());

interface BatchSpec {
  firstOffset?: string;
  firstTimestamp?: number;
  compression?: number;
  /** Attribute bits set after encoding: 0x8 log append time, 0x20 a control batch. */
  flags?: number;
}

/** A record batch as kafkajs encodes it, twice in a row (a decoder must stop where the first ends). */
async function encode(records: RecordSpec[], spec: BatchSpec = {}): Promise<Buffer> {
  const one = await RecordBatch({
    compression: spec.compression ?? 0,
    firstOffset: Long.fromValue(spec.firstOffset ?? '0'),
    firstTimestamp: spec.firstTimestamp ?? 1_795_840_187_366,
    maxTimestamp: (spec.firstTimestamp ?? 1_795_840_187_366) + 1000,
    lastOffsetDelta: Math.max(0, ...records.map((r) => r.offsetDelta ?? 0)),
    records: records.map((r) => Record(r)),
  });
  const b = Buffer.from(one.buffer);
  // Attributes: int16 after firstOffset (8), length (4), leader epoch (4), magic (1), CRC (4).
  b[22] = b[22]! | (spec.flags ?? 0);
  return Buffer.concat([b, b]);
}

/** A decoded record as plain fields (a LeanRecord's as kafkajs' decoder sets them). */
const plain = (r: unknown) => (r instanceof LeanRecord ? r.toJSON() : r);

/** Both decoders on the same bytes: batch fields, records as plain fields, where each stopped. */
async function both(bytes: Buffer) {
  const a = new Decoder(bytes);
  const b = new Decoder(bytes);
  const theirs = (await own(a)) as { records: unknown[] };
  const ours = (await lean(b)) as { records: unknown[] };
  return {
    theirs: { ...theirs, records: theirs.records.map(plain) },
    ours: { ...ours, records: ours.records.map(plain) },
    leanRecords: ours.records.filter((r) => r instanceof LeanRecord).length,
    endTheirs: a.offset,
    endOurs: b.offset,
  };
}

describe('kafkajs record batch decoder', () => {
  it('is the one kafkajs uses in this process', () => {
    // src/bus/kafkajs.ts installs it unless kafkajs was loaded before (then kafkajs' own runs).
    expect(leanRecordsInstalled()).toBe(true);
    const installed = require('kafkajs/src/protocol/recordBatch/v0/decoder.js');
    expect(installed).not.toBe(own);
    expect(own.toString()).toContain('decodeRecords(codec, decoder');
  });

  const cases: Array<[string, RecordSpec[], BatchSpec, number]> = [
    [
      'a plain record',
      [{ offsetDelta: 3, timestampDelta: 12, key: Buffer.from('192.0.2.7'), value: Buffer.from('{"a":1}') }],
      { firstOffset: '41' },
      1,
    ],
    ['null key and null value (a tombstone)', [{ offsetDelta: 0, key: null, value: null }], {}, 1],
    ['an empty key and value', [{ offsetDelta: 0, key: Buffer.alloc(0), value: Buffer.alloc(0) }], {}, 1],
    [
      'a negative timestamp delta',
      [{ offsetDelta: 1, timestampDelta: -250, key: null, value: Buffer.from('x') }],
      { firstOffset: '7' },
      1,
    ],
    [
      'a large delta',
      [{ offsetDelta: 2_000_000_000, timestampDelta: 2 ** 40, key: null, value: Buffer.from('x') }],
      { firstOffset: '5' },
      1,
    ],
    [
      'headers, one repeated',
      [
        {
          key: Buffer.from('k'),
          value: Buffer.from('v'),
          headers: { a: Buffer.from('1'), b: [Buffer.from('2'), Buffer.from('3')] },
        },
      ],
      { firstOffset: '9' },
      1,
    ],
    [
      'offsets past 2^53 (kafkajs decodes them)',
      [{ offsetDelta: 5, key: null, value: Buffer.from('v') }],
      { firstOffset: '9007199254740993' },
      0,
    ],
    [
      'the last safe offset',
      [{ offsetDelta: 0, key: null, value: Buffer.from('v') }],
      { firstOffset: String(Number.MAX_SAFE_INTEGER) },
      1,
    ],
    [
      'an offset delta past the last safe offset (kafkajs decodes it)',
      [{ offsetDelta: 10, key: null, value: Buffer.from('v') }],
      { firstOffset: String(Number.MAX_SAFE_INTEGER - 5) },
      0,
    ],
    [
      'a batch without timestamps (-1)',
      [{ offsetDelta: 2, key: null, value: Buffer.from('v') }],
      { firstOffset: '100', firstTimestamp: -1 },
      1,
    ],
    [
      'log append time',
      [{ offsetDelta: 2, timestampDelta: 5, key: null, value: Buffer.from('v') }],
      { firstOffset: '100', flags: 0x8 },
      1,
    ],
    [
      'a control batch',
      [{ offsetDelta: 0, key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0]) }],
      { firstOffset: '100', flags: 0x20 },
      1,
    ],
    [
      'gzip, many records',
      Array.from({ length: 50 }, (_, i) => ({
        offsetDelta: i,
        timestampDelta: i * 3,
        key: i % 7 === 0 ? null : Buffer.from(`key-${i}`),
        value: Buffer.from(JSON.stringify({ i, text: 'x'.repeat(i) })),
      })),
      { firstOffset: '1000', compression: GZIP },
      50,
    ],
  ];
  for (const [name, records, spec, leanCount] of cases) {
    it(`decodes ${name} as kafkajs does`, async () => {
      const r = await both(await encode(records, spec));
      expect(r.ours).toEqual(r.theirs);
      expect(r.endOurs).toBe(r.endTheirs);
      expect(r.leanRecords).toBe(leanCount);
    });
  }

  it('a LeanRecord reads as kafkajs fields, and its numbers and key text agree with them', async () => {
    const bytes = await encode(
      [{ offsetDelta: 4, timestampDelta: 9, key: Buffer.from('198.51.100.7'), value: Buffer.from('{}') }],
      { firstOffset: '20' },
    );
    const [r] = ((await lean(new Decoder(bytes))) as { records: LeanRecord[] }).records;
    expect(r).toBeInstanceOf(LeanRecord);
    expect(r!.offset).toBe('24');
    expect(r!.offsetNumber).toBe(24);
    expect(r!.timestamp).toBe('1795840187375');
    expect(r!.timestampNumber).toBe(1_795_840_187_375);
    expect(r!.keyText()).toBe('198.51.100.7');
    expect(r!.key).toEqual(Buffer.from('198.51.100.7'));
    expect(r!.value).toEqual(Buffer.from('{}'));
    expect(JSON.parse(JSON.stringify(r)).offset).toBe('24');
  });

  // The one difference: kafkajs reads a header's earlier value through the prototype, so a single
  // header named __proto__ (or toString...) comes out as [{}, value] there; here it is the value.
  it('decodes a header named __proto__ as an own header with its value', async () => {
    const bytes = await encode([
      { key: null, value: Buffer.from('v'), headers: { ['__proto__']: Buffer.from('p') } },
    ]);
    const [r] = ((await lean(new Decoder(bytes))) as { records: LeanRecord[] }).records;
    const headers = r!.headers;
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    expect(Object.hasOwn(headers, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value).toEqual(Buffer.from('p'));
  });

  it('agrees on many random batches, compressed or not', async () => {
    let s = 12345;
    const rnd = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
    for (let i = 0; i < 200; i++) {
      const records = Array.from({ length: 1 + Math.floor(rnd() * 20) }, (_, j): RecordSpec => ({
        offsetDelta: j + Math.floor(rnd() * 3),
        timestampDelta: Math.floor((rnd() - 0.3) * 2 ** Math.floor(rnd() * 45)),
        key: rnd() < 0.2 ? null : Buffer.from(`key-${i}-${j}`),
        value: rnd() < 0.05 ? null : Buffer.from(JSON.stringify({ i, j })),
        headers: rnd() < 0.1 ? { h: Buffer.from(String(i)) } : {},
      }));
      const spec = {
        firstOffset: String(Math.floor(rnd() * 2 ** 52)),
        firstTimestamp: 1_700_000_000_000 + Math.floor(rnd() * 1e11),
        compression: rnd() < 0.5 ? GZIP : 0,
      };
      const r = await both(await encode(records, spec));
      expect(r.ours).toEqual(r.theirs);
      expect(r.endOurs).toBe(r.endTheirs);
    }
  });

  it('decodes a record whose bytes do not add up as kafkajs does (its own decoder)', async () => {
    // A record that claims a value longer than itself: kafkajs' decoder reads what there is.
    const bytes = await encode([{ offsetDelta: 0, key: null, value: Buffer.from('abcdef') }], {
      firstOffset: '3',
    });
    const at = bytes.indexOf(Buffer.from('abcdef'));
    bytes[at - 1] = 40; // value length 20 (zigzag), past the record's end
    const r = await both(bytes.subarray(0, bytes.length / 2));
    expect(r.leanRecords).toBe(0);
    expect(r.ours).toEqual(r.theirs);
    expect(r.endOurs).toBe(r.endTheirs);
  });
});

describe('the Batch kafkajs loads here (offsets compared as text)', () => {
  const Own = kafkajsBatch();
  const Lean = leanBatch(Own);
  const view = (b: object) => {
    const x = b as {
      messages: { offset: string }[];
      messagesWithinOffset: { offset: string }[];
      firstOffset(): string | null;
      lastOffset(): string;
      offsetLag(): string;
      offsetLagLow(): string;
      isEmpty(): boolean;
      isEmptyDueToLogCompactedMessages(): boolean;
    };
    return {
      messages: x.messages.map((m) => m.offset),
      within: x.messagesWithinOffset.map((m) => m.offset),
      first: x.firstOffset(),
      last: x.lastOffset(),
      lag: x.offsetLag(),
      lagLow: x.offsetLagLow(),
      empty: x.isEmpty(),
      compacted: x.isEmptyDueToLogCompactedMessages(),
    };
  };
  const msgs = (offsets: string[], control: string[] = []) =>
    offsets.map((offset) => ({
      offset,
      key: null,
      isControlRecord: control.includes(offset),
      batchContext: { producerId: '1', inTransaction: false },
    }));

  it('keeps the same messages as kafkajs and answers its methods alike', () => {
    const cases: Array<[string, string[], string[]?]> = [
      ['0', ['0', '1', '2']],
      ['5', ['3', '4', '5', '6', '10', '11']],
      ['9', ['8', '9', '10', '99', '100']],
      ['100', ['98', '99', '100', '101', '1000']],
      ['10', ['7', '8', '9']],
      ['3', []],
      ['7', ['5', '6', '7', '8'], ['8']],
      ['9007199254740990', ['9007199254740989', '9007199254740991', '9007199254740993', '90071992547409930']],
      ['9223372036854775806', ['9223372036854775805', '9223372036854775806']],
      // Forms the decoders never write go kafkajs' way.
      ['007', ['5', '07', '008', '9']],
      ['-1', ['0', '1']],
    ];
    for (const [fetched, offsets, control] of cases) {
      const data = () => ({ partition: 2, highWatermark: '2000', messages: msgs(offsets, control) });
      const ours = new Lean('t', fetched, data());
      expect(view(ours), `${fetched} ${offsets.join(',')}`).toEqual(view(new Own('t', fetched, data())));
      expect(ours).toBeInstanceOf(Own);
    }
  });

  it('keeps the same LeanRecords as kafkajs (offsets compared as numbers)', async () => {
    const bytes = await encode(
      Array.from({ length: 12 }, (_, i) => ({ offsetDelta: i, key: null, value: Buffer.from(String(i)) })),
      { firstOffset: '95' },
    );
    const { records } = (await lean(new Decoder(bytes))) as { records: LeanRecord[] };
    expect(records.every((r) => r instanceof LeanRecord)).toBe(true);
    for (const fetched of ['0', '94', '95', '100', '106', '107', '1000', '9007199254740993', '0100']) {
      const data = () => ({ partition: 0, highWatermark: '200', messages: records });
      expect(view(new Lean('t', fetched, data())), fetched).toEqual(view(new Own('t', fetched, data())));
    }
  });

  it('is the one kafkajs uses', () => {
    const consumerGroupBatch = require('kafkajs/src/consumer/batch.js');
    expect(consumerGroupBatch).not.toBe(Own);
    expect(consumerGroupBatch.prototype).toBe(Own.prototype);
  });
});
