// The record decoder kafkajs loads here (src/bus/kafkajs.ts) against kafkajs' own, on records
// kafkajs' own encoder wrote: same fields, same values, and the same bytes consumed.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  kafkajsBatch,
  kafkajsRecordDecoders,
  leanBatch,
  leanRecordDecoder,
  leanRecordsInstalled,
  type RecordDecoderInput,
} from '../../src/bus/kafkajs.js';

const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => RecordDecoderInput;
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (r: {
  offsetDelta?: number;
  timestampDelta?: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | Buffer[]>;
}) => { buffer: Buffer };

const { own, header } = kafkajsRecordDecoders();
const lean = leanRecordDecoder(own, header);

/** Both decoders on one encoded record: their results and where each stopped. */
function both(record: Parameters<typeof Record>[0], ctx: Record<string, unknown>) {
  const bytes = new Decoder(Record(record).buffer).readVarIntBytes()!;
  const a = new Decoder(bytes);
  const b = new Decoder(bytes);
  return { theirs: own(a, ctx), ours: lean(b, ctx), endTheirs: a.offset, endOurs: b.offset };
}

function batch(firstOffset: string, firstTimestamp: string, extra: Record<string, unknown> = {}) {
  return {
    firstOffset,
    firstTimestamp,
    magicByte: 2,
    isControlBatch: false,
    timestampType: 0,
    maxTimestamp: String(BigInt(firstTimestamp) + 1000n),
    ...extra,
  };
}

describe('kafkajs record decoder', () => {
  it('is the one kafkajs uses in this process', () => {
    // src/bus/kafkajs.ts installs it unless kafkajs was loaded before (then kafkajs' own runs).
    expect(leanRecordsInstalled()).toBe(true);
    const installed = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js');
    expect(installed).not.toBe(own);
    expect(own.toString()).toContain('Long.fromValue(firstOffset)');
  });

  const cases: Array<[string, Parameters<typeof Record>[0], Record<string, unknown>]> = [
    [
      'a plain record',
      { offsetDelta: 3, timestampDelta: 12, key: Buffer.from('192.0.2.7'), value: Buffer.from('{"a":1}') },
      batch('41', '1795840187366'),
    ],
    [
      'null key and null value (a tombstone)',
      { offsetDelta: 0, key: null, value: null },
      batch('0', '1795840187366'),
    ],
    [
      'a negative timestamp delta',
      { offsetDelta: 1, timestampDelta: -250, key: null, value: Buffer.from('x') },
      batch('7', '1795840187366'),
    ],
    [
      'a large delta',
      { offsetDelta: 2_000_000_000, timestampDelta: 2 ** 40, key: null, value: Buffer.from('x') },
      batch('5', '1795840187366'),
    ],
    [
      'headers, one repeated',
      {
        key: Buffer.from('k'),
        value: Buffer.from('v'),
        headers: { a: Buffer.from('1'), b: [Buffer.from('2'), Buffer.from('3')] },
      },
      batch('9', '1795840187366'),
    ],
    [
      'offsets past 2^53 (kafkajs decodes it)',
      { offsetDelta: 5, key: null, value: Buffer.from('v') },
      batch('9007199254740993', '1795840187366'),
    ],
    [
      'the last safe offset',
      { offsetDelta: 0, key: null, value: Buffer.from('v') },
      batch(String(Number.MAX_SAFE_INTEGER), '1795840187366'),
    ],
    [
      'a batch without timestamps (-1)',
      { offsetDelta: 2, key: null, value: Buffer.from('v') },
      batch('100', '-1'),
    ],
    [
      'log append time',
      { offsetDelta: 2, timestampDelta: 5, key: null, value: Buffer.from('v') },
      batch('100', '1795840187366', { timestampType: 1 }),
    ],
    [
      'a control batch',
      { offsetDelta: 0, key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0]) },
      batch('100', '1795840187366', { isControlBatch: true }),
    ],
  ];
  for (const [name, record, ctx] of cases) {
    it(`decodes ${name} as kafkajs does`, () => {
      const r = both(record, ctx);
      expect(r.ours).toEqual(r.theirs);
      expect(r.endOurs).toBe(r.endTheirs);
    });
  }

  // The one difference: kafkajs reads a header's earlier value through the prototype, so a single
  // header named __proto__ (or toString...) comes out as [{}, value] there; here it is the value.
  it('decodes a header named __proto__ as an own header with its value', () => {
    const r = both(
      { key: null, value: Buffer.from('v'), headers: { ['__proto__']: Buffer.from('p') } },
      batch('1', '1795840187366'),
    );
    const headers = (r.ours as { headers: object }).headers;
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    expect(Object.hasOwn(headers, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value).toEqual(Buffer.from('p'));
  });

  it('agrees on many random records', () => {
    let s = 12345;
    const rnd = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
    for (let i = 0; i < 2000; i++) {
      const ctx = batch(
        String(Math.floor(rnd() * 2 ** 52)),
        String(1_700_000_000_000 + Math.floor(rnd() * 1e11)),
      );
      const headers: Record<string, Buffer> = rnd() < 0.1 ? { h: Buffer.from(String(i)) } : {};
      const record = {
        offsetDelta: Math.floor(rnd() * 100_000),
        timestampDelta: Math.floor((rnd() - 0.3) * 2 ** Math.floor(rnd() * 45)),
        key: rnd() < 0.2 ? null : Buffer.from(`key-${i}`),
        value: rnd() < 0.05 ? null : Buffer.from(JSON.stringify({ i })),
        headers,
      };
      const r = both(record, ctx);
      expect(r.ours).toEqual(r.theirs);
      expect(r.endOurs).toBe(r.endTheirs);
    }
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

  it('is the one kafkajs uses', () => {
    const consumerGroupBatch = require('kafkajs/src/consumer/batch.js');
    expect(consumerGroupBatch).not.toBe(Own);
    expect(consumerGroupBatch.prototype).toBe(Own.prototype);
  });
});
