// kafkajs, as every module here loads it: `import kafkajs from './kafkajs.js'`, never from
// 'kafkajs' directly, so that what is changed below is in place before kafkajs loads.
//
// kafkajs (2.2.4, its last release) decodes each record's offset and timestamp with its Long,
// which is a BigInt: per record a varlong read one BigInt per byte, then twice a string parsed to
// a BigInt, an addition and a BigInt printed back to a string. For a consumer that is a large
// share of the work per record (and of its garbage). The record decoder below computes the same
// strings with plain numbers while they are safe integers (offsets and millisecond timestamps
// are, by far), and otherwise hands the record to kafkajs' own decoder. test/bus/kafkajs.test.ts
// holds the two to the same output. Installed by putting it in require's cache under the path
// of kafkajs' own decoder, before kafkajs is loaded: kafkajs' modules take their decoders at load.
import Module, { createRequire } from 'node:module';
import type * as KafkaJS from 'kafkajs';

const require = createRequire(import.meta.url);

/** The parts of kafkajs' protocol Decoder that a record needs. */
export interface RecordDecoderInput {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readVarInt(): number;
  readVarIntBytes(): Buffer | null;
  readVarIntArray<T>(reader: (d: RecordDecoderInput) => T): T[];
}

interface BatchContext {
  firstOffset?: string;
  firstTimestamp?: string;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
  maxTimestamp?: string;
}

type RecordDecoder = (decoder: RecordDecoderInput, batchContext?: BatchContext) => unknown;

const LOG_APPEND_TIME = 1;

/** A base string as a number, or NaN when it is not a safe integer written plainly. */
function safe(s: string | undefined): number {
  if (s === undefined) return Number.NaN;
  const n = Number(s);
  return Number.isSafeInteger(n) && String(n) === s ? n : Number.NaN;
}

/** The numbers of a batch's bases, worked out once per record batch (records share its context). */
const bases = new WeakMap<BatchContext, { offset: number; timestamp: number }>();

function basesOf(ctx: BatchContext): { offset: number; timestamp: number } {
  let b = bases.get(ctx);
  if (b === undefined) {
    b = { offset: safe(ctx.firstOffset), timestamp: safe(ctx.firstTimestamp) };
    bases.set(ctx, b);
  }
  return b;
}

/**
 * A zigzag varlong read as a number, or NaN (nothing consumed) when it is longer than 7 bytes
 * (beyond 2^49, never a timestamp delta within one batch) or runs past the buffer.
 */
function readVarLongNumber(d: RecordDecoderInput): number {
  const buf = d.buffer;
  let at = d.offset;
  let n = 0;
  let mul = 1;
  for (let i = 0; i < 7; i++) {
    if (at >= buf.length) return Number.NaN;
    const b = buf[at++]!;
    n += (b & 0x7f) * mul;
    if (b < 0x80) {
      d.offset = at;
      return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
    }
    mul *= 128;
  }
  return Number.NaN;
}

/** The headers of every record without any, shared and frozen. */
const NO_HEADERS: Record<string, Buffer | Buffer[]> = Object.freeze({});

/** A record's headers as kafkajs gives them: name -> value, or values when a name repeats. */
function readHeaders(
  decoder: RecordDecoderInput,
  headerDecoder: (d: RecordDecoderInput) => unknown,
): Record<string, Buffer | Buffer[]> {
  const list = decoder.readVarIntArray(headerDecoder) as Array<{ key: string; value: Buffer }>;
  const headers: Record<string, Buffer | Buffer[]> = {};
  for (const h of list) {
    // Own properties, defined: a header named __proto__ (or toString...) is a header with its
    // value. kafkajs reads the earlier value through the prototype and makes it [{}, value];
    // the one difference from kafkajs' decoder.
    const had = Object.hasOwn(headers, h.key) ? headers[h.key] : undefined;
    const v = had === undefined ? h.value : Array.isArray(had) ? had.concat([h.value]) : [had, h.value];
    Object.defineProperty(headers, h.key, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return headers;
}

/**
 * kafkajs' record decoder (protocol/recordBatch/record/v0/decoder.js) with number arithmetic:
 * the same fields, in the same order, with the same values; `own` decodes what this does not.
 */
export function leanRecordDecoder(
  own: RecordDecoder,
  headerDecoder: (d: RecordDecoderInput) => unknown,
): RecordDecoder {
  return (decoder, batchContext = {}) => {
    const { magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext;
    const b = basesOf(batchContext);
    if (Number.isNaN(b.offset) || Number.isNaN(b.timestamp)) return own(decoder, batchContext);
    const start = decoder.offset;
    const attributes = decoder.readInt8();
    const timestampDelta = readVarLongNumber(decoder);
    if (Number.isNaN(timestampDelta)) {
      decoder.offset = start;
      return own(decoder, batchContext);
    }
    const timestamp =
      timestampType === LOG_APPEND_TIME && maxTimestamp ? maxTimestamp : String(b.timestamp + timestampDelta);
    const offsetDelta = decoder.readVarInt();
    const offsetNumber = b.offset + offsetDelta;
    if (!Number.isSafeInteger(offsetNumber) || !Number.isSafeInteger(b.timestamp + timestampDelta)) {
      decoder.offset = start;
      return own(decoder, batchContext);
    }
    const key = decoder.readVarIntBytes();
    const value = decoder.readVarIntBytes();
    // Most records have no headers (a count of 0, one zero byte): no array and no object for them.
    let headers = NO_HEADERS;
    if (decoder.buffer[decoder.offset] === 0) decoder.offset++;
    else headers = readHeaders(decoder, headerDecoder);
    return {
      magicByte,
      attributes,
      timestamp,
      offset: String(offsetNumber),
      key,
      value,
      headers,
      isControlRecord: isControlBatch,
      batchContext,
    };
  };
}

const RECORD_DECODER = 'kafkajs/src/protocol/recordBatch/record/v0/decoder.js';
/** On the installed decoder: kafkajs' own, which it stands in for. */
const OWN = Symbol.for('mizugiwa.kafkajs.ownRecordDecoder');

/** kafkajs' own record decoder (even once ours is installed) and its header decoder. */
export function kafkajsRecordDecoders(): { own: RecordDecoder; header: (d: RecordDecoderInput) => unknown } {
  const current = require(RECORD_DECODER) as RecordDecoder & { [OWN]?: RecordDecoder };
  return {
    own: current[OWN] ?? current,
    header: require('kafkajs/src/protocol/recordBatch/header/v0/decoder.js'),
  };
}

/** Whether the record decoder kafkajs loaded (or will load) is leanRecordDecoder. */
export function leanRecordsInstalled(): boolean {
  return (require(RECORD_DECODER) as { [OWN]?: RecordDecoder })[OWN] !== undefined;
}

// kafkajs' Batch (consumer/batch.js) keeps the messages of a fetch at or after the offset asked
// for by turning each message's offset string into its Long (a BigInt) and comparing: about 2 % of
// a store's event loop. Offsets are decimal strings without a sign or leading zeros, as both
// decoders write them; two such strings compare by length, then as text. Anything else (never
// seen) is compared as kafkajs does. The rest of Batch is kafkajs' own (its prototype).

interface BatchMessage {
  offset: string;
  isControlRecord?: boolean;
}

interface PartitionData {
  partition: number;
  highWatermark: string;
  abortedTransactions?: unknown[];
  messages: BatchMessage[];
}

type BatchConstructor = new (topic: string, fetchedOffset: string, partitionData: PartitionData) => object;

const BATCH = 'kafkajs/src/consumer/batch.js';
/** On the installed Batch: kafkajs' own. */
const OWN_BATCH = Symbol.for('mizugiwa.kafkajs.ownBatch');

/** A decimal offset as the decoders write it: digits, no sign, no leading zero. */
const plainOffset = (s: string) => /^(?:0|[1-9][0-9]*)$/.test(s);

/** kafkajs' Batch constructor with offsets compared as text; the instances are kafkajs' Batches. */
export function leanBatch(own: BatchConstructor): BatchConstructor {
  const Long = require('kafkajs/src/utils/long.js') as {
    fromValue(v: string): { gte(o: unknown): boolean };
  };
  const filterAbortedMessages = require('kafkajs/src/consumer/filterAbortedMessages.js') as (a: {
    messages: BatchMessage[];
    abortedTransactions?: unknown[];
  }) => BatchMessage[];
  function LeanBatch(
    this: Record<string, unknown>,
    topic: string,
    fetchedOffset: string,
    data: PartitionData,
  ) {
    this.fetchedOffset = fetchedOffset;
    this.topic = topic;
    this.partition = data.partition;
    this.highWatermark = data.highWatermark;
    this.rawMessages = data.messages;
    // kafkajs' comparison, for the forms compared otherwise as text.
    const atLeast = (o: string) => Long.fromValue(o).gte(Long.fromValue(fetchedOffset));
    const n = fetchedOffset.length;
    const plain = plainOffset(fetchedOffset);
    const within = data.messages.filter(({ offset: o }) => {
      // The decoders write digits only: the first character tells a sign or a leading zero.
      const c = o.charCodeAt(0);
      if (!plain || !((c >= 0x31 && c <= 0x39) || o === '0')) return atLeast(o);
      return o.length !== n ? o.length > n : o >= fetchedOffset;
    });
    this.messagesWithinOffset = within;
    this.messages = filterAbortedMessages({
      messages: within,
      abortedTransactions: data.abortedTransactions,
    }).filter((m) => !m.isControlRecord);
  }
  LeanBatch.prototype = own.prototype;
  return LeanBatch as unknown as BatchConstructor;
}

/** kafkajs' own Batch, even once ours is installed. */
export function kafkajsBatch(): BatchConstructor {
  const current = require(BATCH) as BatchConstructor & { [OWN_BATCH]?: BatchConstructor };
  return current[OWN_BATCH] ?? current;
}

function cached(path: string, exports: unknown): void {
  const m = new Module(path);
  m.filename = path;
  m.loaded = true;
  m.exports = exports;
  require.cache[path] = m;
}

function install(): void {
  if (require.cache[require.resolve('kafkajs')] !== undefined) return; // loaded already, as it is
  const { own, header } = kafkajsRecordDecoders();
  cached(require.resolve(RECORD_DECODER), Object.assign(leanRecordDecoder(own, header), { [OWN]: own }));
  const ownBatch = kafkajsBatch();
  cached(require.resolve(BATCH), Object.assign(leanBatch(ownBatch), { [OWN_BATCH]: ownBatch }));
}

install();
const kafkajs = require('kafkajs') as typeof KafkaJS;
export default kafkajs;
