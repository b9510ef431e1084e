import type { BusConfig } from '../config/config.js';
import type { OutMessage, TransportSpec } from './kafka-transport.js';

// What the event loop and the producer thread say to each other. A batch crosses as one packed
// buffer of values plus their lengths (both transferred, not copied) and the keys: a structured
// clone of thousands of small objects would cost the event loop what the thread saves it.

/** A value length meaning "null" (a tombstone). */
const NULL_VALUE = 0xffffffff;

export interface PackedTopic {
  topic: string;
  keys: (string | null)[];
  lengths: Uint32Array;
  values: Uint8Array;
  /** Headers of record i, only where a record has any. */
  headers?: Record<number, Record<string, string>>;
}

export type ToThread = { type: 'send'; id: number; topics: PackedTopic[] } | { type: 'close' };

export type FromThread =
  | { type: 'open' }
  | { type: 'sent'; id: number }
  | { type: 'failed'; id: number; message: string }
  | { type: 'fatal'; message: string }
  | { type: 'closed' };

export interface ThreadData {
  cfg: BusConfig;
  spec: TransportSpec;
  logLevel: string;
}

/** Packs one topic's records; returns the transfer list with it. */
export function packTopic(topic: string, list: readonly OutMessage[]): [PackedTopic, ArrayBuffer[]] {
  const n = list.length;
  const keys = new Array<string | null>(n);
  const lengths = new Uint32Array(n);
  let total = 0;
  let headers: Record<number, Record<string, string>> | undefined;
  for (let i = 0; i < n; i++) {
    const m = list[i]!;
    keys[i] = m.key;
    const v = m.value;
    const len = v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
    lengths[i] = v == null ? NULL_VALUE : len;
    total += len;
    if (m.headers) {
      headers ??= {};
      headers[i] = m.headers;
    }
  }
  const values = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const v = list[i]!.value;
    if (v == null) continue;
    at += typeof v === 'string' ? values.write(v, at, 'utf8') : v.copy(values, at);
  }
  const packed: PackedTopic = { topic, keys, lengths, values };
  if (headers) packed.headers = headers;
  return [packed, [values.buffer as ArrayBuffer, lengths.buffer as ArrayBuffer]];
}

/** The records of a packed topic again, their values views into the one buffer. */
export function unpackTopic(p: PackedTopic): OutMessage[] {
  const values = Buffer.from(p.values.buffer, p.values.byteOffset, p.values.byteLength);
  const out = new Array<OutMessage>(p.keys.length);
  let at = 0;
  for (let i = 0; i < p.keys.length; i++) {
    const len = p.lengths[i]!;
    const m: OutMessage = { key: p.keys[i]!, value: null };
    if (len !== NULL_VALUE) {
      m.value = values.subarray(at, at + len);
      at += len;
    }
    const h = p.headers?.[i];
    if (h) m.headers = h;
    out[i] = m;
  }
  return out;
}
