// The record batches of a fetch, decoded for kafkajs with one small object per record.
//
// kafkajs (2.2.4, its last release) decodes a record batch (protocol/recordBatch/v0/decoder.js)
// into records that each hold two Buffers (key, value) and two strings (offset, timestamp), and
// it makes a third Buffer and a Decoder per record on the way, besides its Long arithmetic (a
// BigInt per varlong byte). A fetch decodes every partition's records at once, and they wait
// there until the consumer hands them on: in the store, most of them lived through one or more
// young-generation collections, so V8 copied each of those objects, promoted them and marked
// them again in the old generation. The collector was about a fifth of the store's CPU, with
// typed arrays its costliest objects.
//
// Here a record is a LeanRecord: where its key and value lie in the batch's (inflated) buffer,
// and its offset and timestamp as numbers. Its fields read as kafkajs' do (key and value are
// Buffers, offset and timestamp decimal strings), made when read. A record the numbers cannot
// carry (an offset or timestamp past 2^53, a delta longer than 7 bytes) or whose bytes do not
// add up is decoded by kafkajs' own record decoder, as kafkajs would. test/bus/kafkajs.test.ts
// holds the two decoders to the same records, batch by batch.

/** The parts of kafkajs' protocol Decoder used here. */
export interface KafkaDecoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readInt16(): number;
  readInt32(): number;
  readInt64(): { toString(): string };
  readVarInt(): number;
  readVarIntBytes(): Buffer | null;
  readVarIntArray<T>(reader: (d: KafkaDecoder) => T): T[];
  readAll(): Buffer;
  slice(size: number): KafkaDecoder;
  forward(size: number): void;
}

/** What kafkajs keeps of a record batch's header, shared by its records. */
export interface BatchContext {
  firstOffset: string;
  firstTimestamp: string;
  partitionLeaderEpoch: number;
  inTransaction: boolean;
  isControlBatch: boolean;
  lastOffsetDelta: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  maxTimestamp: string;
  timestampType: number;
  magicByte?: number;
}

type RecordDecoder = (decoder: KafkaDecoder, batchContext: BatchContext) => unknown;
type HeaderDecoder = (decoder: KafkaDecoder) => { key: string; value: Buffer | null };

/** What the batch decoder takes from kafkajs. */
export interface KafkajsParts {
  Decoder: new (buffer: Buffer) => KafkaDecoder;
  PartialMessageError: new (message: string) => Error;
  lookupCodecByAttributes(attributes: number): { decompress(b: Buffer): Promise<Buffer> } | null;
  /** kafkajs' own record decoder (protocol/recordBatch/record/v0/decoder.js). */
  record: RecordDecoder;
  header: HeaderDecoder;
}

const TIMESTAMP_TYPE_FLAG_MASK = 0x8;
const TRANSACTIONAL_FLAG_MASK = 0x10;
const CONTROL_FLAG_MASK = 0x20;
const LOG_APPEND_TIME = 1;
const CREATE_TIME = 0;

/** The headers of every record without any, shared and frozen. */
export const NO_HEADERS: Record<string, Buffer | Buffer[]> = Object.freeze({});

/**
 * What the LeanRecords of one record batch share: its buffer of records, its context, and its
 * first offset and timestamp as numbers.
 */
export class LeanBatchRecords {
  constructor(
    /** The batch's records, where each one's key and value lie. */
    readonly bytes: Buffer,
    readonly context: BatchContext,
    /** firstOffset, a safe integer. */
    readonly baseOffset: number,
    /** firstTimestamp, a safe integer. */
    readonly baseTimestamp: number,
    /** The timestamp of every record when the broker sets it (log append time), else NaN. */
    readonly appendTime: number,
  ) {}
}

/**
 * A record as kafkajs' own decoder gives it, read from where it lies in its batch's buffer. Its
 * key, value, offset and timestamp are made when read (each read makes them anew). Its own fields
 * are small integers and references: no number box, string or Buffer per record.
 */
export class LeanRecord {
  constructor(
    readonly batch: LeanBatchRecords,
    /** Start of the key in the batch's bytes, or -1 for a null key. */
    private readonly keyAt: number,
    private readonly keyEnd: number,
    /** Start of the value in the batch's bytes, or -1 for a null value (a tombstone). */
    readonly valueAt: number,
    readonly valueEnd: number,
    private readonly offsetDelta: number,
    private readonly timestampDelta: number,
    readonly attributes: number,
    readonly headers: Record<string, Buffer | Buffer[]>,
  ) {}

  get batchContext(): BatchContext {
    return this.batch.context;
  }

  get magicByte(): number | undefined {
    return this.batch.context.magicByte;
  }

  get isControlRecord(): boolean {
    return this.batch.context.isControlBatch;
  }

  /** The offset, a safe integer. */
  get offsetNumber(): number {
    return this.batch.baseOffset + this.offsetDelta;
  }

  get offset(): string {
    return String(this.batch.baseOffset + this.offsetDelta);
  }

  /** The timestamp kafkajs gives as a string, as a number (ms since epoch; -1 for none). */
  get timestampNumber(): number {
    const b = this.batch;
    return Number.isNaN(b.appendTime) ? b.baseTimestamp + this.timestampDelta : b.appendTime;
  }

  get timestamp(): string {
    const ctx = this.batch.context;
    return ctx.timestampType === LOG_APPEND_TIME && ctx.maxTimestamp
      ? ctx.maxTimestamp
      : String(this.batch.baseTimestamp + this.timestampDelta);
  }

  /** The batch's records, where this one's key and value lie. */
  get bytes(): Buffer {
    return this.batch.bytes;
  }

  get key(): Buffer | null {
    return this.keyAt < 0 ? null : this.batch.bytes.subarray(this.keyAt, this.keyEnd);
  }

  /** The key as UTF-8 text, without a Buffer on the way. */
  keyText(): string | null {
    return this.keyAt < 0 ? null : this.batch.bytes.toString('utf8', this.keyAt, this.keyEnd);
  }

  get value(): Buffer | null {
    return this.valueAt < 0 ? null : this.batch.bytes.subarray(this.valueAt, this.valueEnd);
  }

  /** The fields kafkajs' decoder sets, as plain data (for logs and comparisons). */
  toJSON(): Record<string, unknown> {
    return {
      magicByte: this.magicByte,
      attributes: this.attributes,
      timestamp: this.timestamp,
      offset: this.offset,
      key: this.key,
      value: this.value,
      headers: this.headers,
      isControlRecord: this.isControlRecord,
      batchContext: this.batchContext,
    };
  }
}

/** A base string as a number, or NaN when it is not a safe integer written plainly. */
function safe(s: string): number {
  const n = Number(s);
  return Number.isSafeInteger(n) && String(n) === s ? n : Number.NaN;
}

/** A record's headers as kafkajs gives them: name -> value, or values when a name repeats. */
function readHeaders(decoder: KafkaDecoder, header: HeaderDecoder): Record<string, Buffer | Buffer[]> {
  const list = decoder.readVarIntArray(header) as Array<{ key: string; value: Buffer }>;
  const headers: Record<string, Buffer | Buffer[]> = {};
  for (const h of list) {
    // Own properties, defined: a header named __proto__ (or toString...) is a header with its
    // value. kafkajs reads the earlier value through the prototype and makes it [{}, value];
    // the one difference from kafkajs' decoder.
    const had = Object.hasOwn(headers, h.key) ? headers[h.key] : undefined;
    const v = had === undefined ? h.value : Array.isArray(had) ? had.concat([h.value]) : [had, h.value];
    Object.defineProperty(headers, h.key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return headers;
}

// Where the record being decoded is read next, and where it ends (set by leanRecord).
let at = 0;
let recordEnd = 0;

/**
 * kafkajs' readVarInt (Decoder.readVarInt and its zigzag) at `at`, moving it on; NaN when it
 * would read at or past `end`.
 */
function varInt(buf: Buffer, end: number): number {
  let result = 0;
  let i = 0;
  let b: number;
  do {
    if (at >= end) return Number.NaN;
    b = buf[at++]!;
    result += (b & 0x7f) << i;
    i += 7;
  } while (b >= 0x80);
  return (result >>> 1) ^ -(result & 1);
}

/**
 * The record whose length varint is at `start` in its batch's bytes, which end at `limit`, as a
 * LeanRecord (recordEnd: where it ends); undefined when it is not one for a LeanRecord.
 */
function leanRecord(
  batch: LeanBatchRecords,
  start: number,
  limit: number,
  header: HeaderDecoder,
  Decoder: new (buffer: Buffer) => KafkaDecoder,
): LeanRecord | undefined {
  const buf = batch.bytes;
  at = start;
  const length = varInt(buf, limit);
  if (!(length >= 1) || at + length > limit) return undefined;
  const end = at + length;
  recordEnd = end;
  const attributes = (buf[at++]! << 24) >> 24;
  // The timestamp delta, a zigzag varlong: up to 7 bytes (2^49) as a number.
  let n = 0;
  let mul = 1;
  let done = false;
  for (let i = 0; i < 7 && at < end; i++) {
    const b = buf[at++]!;
    n += (b & 0x7f) * mul;
    if (b < 0x80) {
      done = true;
      break;
    }
    mul *= 128;
  }
  if (!done) return undefined;
  const timestampDelta = n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  const offsetDelta = varInt(buf, end);
  if (
    !Number.isSafeInteger(batch.baseOffset + offsetDelta) ||
    !Number.isSafeInteger(batch.baseTimestamp + timestampDelta)
  )
    return undefined;
  const keyLength = varInt(buf, end);
  if (Number.isNaN(keyLength) || keyLength < -1 || at + Math.max(keyLength, 0) > end) return undefined;
  const keyAt = keyLength === -1 ? -1 : at;
  if (keyLength > 0) at += keyLength;
  const valueLength = varInt(buf, end);
  if (Number.isNaN(valueLength) || valueLength < -1 || at + Math.max(valueLength, 0) > end) return undefined;
  const valueAt = valueLength === -1 ? -1 : at;
  if (valueLength > 0) at += valueLength;
  // Most records have no headers (a count of 0, one zero byte): the shared empty object.
  let headers = NO_HEADERS;
  if (at >= end) return undefined;
  if (buf[at] !== 0) {
    const d = new Decoder(buf.subarray(at, end));
    headers = readHeaders(d, header);
    if (d.offset > d.buffer.length) return undefined;
  }
  return new LeanRecord(
    batch,
    keyAt,
    keyAt + Math.max(keyLength, 0),
    valueAt,
    valueAt + Math.max(valueLength, 0),
    offsetDelta,
    timestampDelta,
    attributes,
    headers,
  );
}

/**
 * kafkajs' record batch decoder (the same batch fields, the same records, the same bytes
 * consumed) with its records as LeanRecords where it can.
 */
export function leanRecordBatchDecoder(k: KafkajsParts): (fetchDecoder: KafkaDecoder) => Promise<unknown> {
  /**
   * One record of `d`, which it moves past: a LeanRecord of `batch` (undefined when the batch's
   * bases are not safe integers), or kafkajs' own decoding of it.
   */
  function decodeRecord(d: KafkaDecoder, ctx: BatchContext, batch: LeanBatchRecords | undefined): unknown {
    if (batch !== undefined) {
      const r = leanRecord(batch, d.offset, d.buffer.length, k.header, k.Decoder);
      if (r !== undefined) {
        d.offset = recordEnd;
        return r;
      }
    }
    // As kafkajs does it (decoder.js decodeRecord), for whatever the numbers cannot carry.
    const recordBuffer = d.readVarIntBytes();
    return k.record(new k.Decoder(recordBuffer as Buffer), ctx);
  }

  async function decodeRecords(
    codec: { decompress(b: Buffer): Promise<Buffer> } | null,
    recordsDecoder: KafkaDecoder,
    ctx: BatchContext,
  ): Promise<unknown[]> {
    const baseOffset = safe(ctx.firstOffset);
    const baseTimestamp = safe(ctx.firstTimestamp);
    const appendTime =
      ctx.timestampType === LOG_APPEND_TIME && ctx.maxTimestamp ? Number(ctx.maxTimestamp) : Number.NaN;
    let decoder = recordsDecoder;
    const length = recordsDecoder.readInt32();
    if (!codec) {
      if (length === -1) return [];
    } else {
      if (length <= 0) return [];
      decoder = new k.Decoder(await codec.decompress(recordsDecoder.readAll()));
    }
    const batch =
      Number.isNaN(baseOffset) || Number.isNaN(baseTimestamp)
        ? undefined
        : new LeanBatchRecords(decoder.buffer, ctx, baseOffset, baseTimestamp, appendTime);
    const records = new Array(length);
    for (let i = 0; i < length; i++) records[i] = decodeRecord(decoder, ctx, batch);
    return records;
  }

  return async (fetchDecoder) => {
    const firstOffset = fetchDecoder.readInt64().toString();
    const length = fetchDecoder.readInt32();
    const decoder = fetchDecoder.slice(length);
    fetchDecoder.forward(length);
    const remainingBytes = Buffer.byteLength(decoder.buffer);
    if (remainingBytes < length) {
      throw new k.PartialMessageError(
        `Tried to decode a partial record batch: remainingBytes(${remainingBytes}) < recordBatchLength(${length})`,
      );
    }
    const partitionLeaderEpoch = decoder.readInt32();
    // Read by the Fetch protocol already to tell record batches from message sets.
    const magicByte = decoder.readInt8();
    decoder.readInt32(); // CRC, not checked (as in kafkajs)
    const attributes = decoder.readInt16();
    const lastOffsetDelta = decoder.readInt32();
    const firstTimestamp = decoder.readInt64().toString();
    const maxTimestamp = decoder.readInt64().toString();
    const producerId = decoder.readInt64().toString();
    const producerEpoch = decoder.readInt16();
    const firstSequence = decoder.readInt32();
    const recordContext = {
      firstOffset,
      firstTimestamp,
      partitionLeaderEpoch,
      inTransaction: (attributes & TRANSACTIONAL_FLAG_MASK) > 0,
      isControlBatch: (attributes & CONTROL_FLAG_MASK) > 0,
      lastOffsetDelta,
      producerId,
      producerEpoch,
      firstSequence,
      maxTimestamp,
      timestampType: (attributes & TIMESTAMP_TYPE_FLAG_MASK) > 0 ? LOG_APPEND_TIME : CREATE_TIME,
    };
    const codec = k.lookupCodecByAttributes(attributes);
    const records = await decodeRecords(codec, decoder, { ...recordContext, magicByte });
    return { ...recordContext, records };
  };
}
