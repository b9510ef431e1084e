import type { BusRecord } from './bus.js';

/** A record checked and converted once at `send`, so bad input fails the caller that gave it, not a batch. */
export interface PreparedRecord {
  key: string | null;
  /** As given: a string stays a string; a Buffer is not copied (the sender must not change it). */
  value: Buffer | string | null;
  headers: Readonly<Record<string, string>>;
  /** Bytes of key, value and headers (what a batch size limit counts). */
  size: number;
}

/** The headers of a record that has none (shared; compare with `===`). */
export const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** Kafka's rule for topic names (legal characters, at most 249, not "." or ".."). */
export function checkTopicName(topic: string): void {
  if (
    typeof topic !== 'string' ||
    !/^[A-Za-z0-9._-]{1,249}$/.test(topic) ||
    topic === '.' ||
    topic === '..'
  ) {
    throw new TypeError(
      `invalid topic name ${JSON.stringify(topic)}: use 1-249 characters of A-Z a-z 0-9 . _ -`,
    );
  }
}

/** Names a record in an error (built only then, not for every record). */
function where(topic: string, index: number): string {
  return `record ${index} for topic ${topic}`;
}

export function prepareRecord(
  topic: string,
  index: number,
  r: BusRecord,
  compacted: boolean,
): PreparedRecord {
  if (r === null || typeof r !== 'object') throw new TypeError(`${where(topic, index)}: not a record object`);
  const { key } = r;
  if (key !== null && typeof key !== 'string')
    throw new TypeError(`${where(topic, index)}: key must be a string or null`);
  let value: Buffer | string | null;
  if (r.value === null) value = null;
  else if (typeof r.value === 'string' || Buffer.isBuffer(r.value)) value = r.value;
  else if ((r.value as unknown) instanceof Uint8Array) {
    const u = r.value as Uint8Array;
    value = Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  } else throw new TypeError(`${where(topic, index)}: value must be a string, a Buffer or null (tombstone)`);
  if (key === null && (value === null || compacted)) {
    throw new TypeError(
      `${where(topic, index)}: ${value === null ? 'a tombstone' : 'a record of a compacted topic'} needs a key`,
    );
  }
  let size =
    (key === null ? 0 : Buffer.byteLength(key)) +
    (value === null ? 0 : typeof value === 'string' ? Buffer.byteLength(value) : value.length);
  let headers = NO_HEADERS;
  if (r.headers !== undefined) {
    if (r.headers === null || typeof r.headers !== 'object')
      throw new TypeError(`${where(topic, index)}: headers must be an object`);
    const copy: Record<string, string> = {};
    for (const [name, v] of Object.entries(r.headers)) {
      if (typeof v !== 'string')
        throw new TypeError(`${where(topic, index)}: header ${name} must be a string`);
      copy[name] = v;
      size += Buffer.byteLength(name) + Buffer.byteLength(v);
    }
    headers = Object.freeze(copy);
  }
  return { key, value, headers, size };
}

/** Refuses records larger than `max` bytes (Kafka: the broker's message.max.bytes would refuse the batch). */
export function checkRecordSizes(topic: string, records: PreparedRecord[], max: number): number {
  let bytes = 0;
  records.forEach((r, i) => {
    if (r.size > max) {
      throw new RangeError(
        `record ${i} for topic ${topic}: ${r.size} bytes, above the ${max} a record may have`,
      );
    }
    bytes += r.size;
  });
  return bytes;
}
