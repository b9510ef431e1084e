// kafkajs, as every module here loads it: `import kafkajs from './kafkajs.js'`, never from
// 'kafkajs' directly, so that what is changed below is in place before kafkajs loads.
//
// kafkajs' record batches are decoded here by kafkajs-records.ts: one small object per record
// instead of kafkajs' two Buffers, two strings and its Long arithmetic per record (see there).
// Installed by putting it in require's cache under the path of kafkajs' own batch decoder
// (protocol/recordBatch/v0/decoder.js) before kafkajs is loaded: kafkajs' modules take their
// decoders at load.
import Module, { createRequire } from 'node:module';
import type * as KafkaJS from 'kafkajs';
import {
  type KafkaDecoder,
  type KafkajsParts,
  LeanRecord,
  leanRecordBatchDecoder,
} from './kafkajs-records.js';

const require = createRequire(import.meta.url);

type BatchDecoder = (fetchDecoder: KafkaDecoder) => Promise<unknown>;

const BATCH_DECODER = 'kafkajs/src/protocol/recordBatch/v0/decoder.js';
/** On the installed decoder: kafkajs' own, which it stands in for. */
const OWN = Symbol.for('mizugiwa.kafkajs.ownRecordBatchDecoder');

/** What leanRecordBatchDecoder takes from kafkajs, with kafkajs' own record decoder. */
export function kafkajsParts(): KafkajsParts {
  const codecs = require('kafkajs/src/protocol/message/compression/index.js') as Pick<
    KafkajsParts,
    'lookupCodecByAttributes'
  >;
  return {
    Decoder: require('kafkajs/src/protocol/decoder.js'),
    PartialMessageError: (
      require('kafkajs/src/errors.js') as { KafkaJSPartialMessageError: new (m: string) => Error }
    ).KafkaJSPartialMessageError,
    lookupCodecByAttributes: codecs.lookupCodecByAttributes,
    record: require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js'),
    header: require('kafkajs/src/protocol/recordBatch/header/v0/decoder.js'),
  };
}

/** kafkajs' own record batch decoder, even once ours is installed. */
export function kafkajsBatchDecoder(): BatchDecoder {
  const current = require(BATCH_DECODER) as BatchDecoder & { [OWN]?: BatchDecoder };
  return current[OWN] ?? current;
}

/** Whether the record batch decoder kafkajs loaded (or will load) is ours. */
export function leanRecordsInstalled(): boolean {
  return (require(BATCH_DECODER) as { [OWN]?: BatchDecoder })[OWN] !== undefined;
}

// kafkajs' Batch (consumer/batch.js) keeps the messages of a fetch at or after the offset asked
// for by turning each message's offset string into its Long (a BigInt) and comparing: about 2 % of
// a store's event loop. Offsets are decimal strings without a sign or leading zeros, as both
// decoders write them; two such strings compare by length, then as text, and a LeanRecord's
// offset (a number) as a number. Anything else (never seen) is compared as kafkajs does. The rest of Batch is kafkajs' own (its prototype).

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
    // A LeanRecord has its offset as a number (a safe integer): compared as numbers.
    const fetched = plain ? Number(fetchedOffset) : Number.NaN;
    const numeric = Number.isSafeInteger(fetched);
    const within = data.messages.filter((m) => {
      if (numeric && m instanceof LeanRecord) return m.offsetNumber >= fetched;
      const o = m.offset;
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
  const own = kafkajsBatchDecoder();
  cached(
    require.resolve(BATCH_DECODER),
    Object.assign(leanRecordBatchDecoder(kafkajsParts()), { [OWN]: own }),
  );
  const ownBatch = kafkajsBatch();
  cached(require.resolve(BATCH), Object.assign(leanBatch(ownBatch), { [OWN_BATCH]: ownBatch }));
}

install();
const kafkajs = require('kafkajs') as typeof KafkaJS;
export default kafkajs;
