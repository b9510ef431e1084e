import { clientIp, EVENT_COLUMNS, type RowBinaryWriter, tsMicros } from './rowbinary.js';

// MailEvent JSON (as the shipper's JSON.stringify writes it) straight to its mail_events RowBinary
// row: JSON.parse + eventRowBinary cost about 4 µs per event on the store's busiest thread, and
// most of its garbage. One pass over the bytes notes where each column's value lies, checked as
// eventRowBinary checks it; a second writes the row in column order, copying strings without
// escapes as they are. Nothing is allocated per event on this path. What it does not take (a
// value of another type than its column's, an unknown key with a value, a duplicate key, an
// escaped key, invalid UTF-8...) goes the slow way, so the two never disagree: see
// test/store/json-rowbinary.test.ts.

// What a column takes, from its type in EVENT_COLUMNS (the rules of eventRowBinary).
const C_STR = 1; // string or null/absent ('')
const C_NSTR = 2; // Nullable(String): null/absent is NULL
const C_U16 = 3;
const C_U32 = 4;
const C_U64 = 5; // integers below 2^53
const C_F32 = 6;
const C_F64 = 7;
const C_TS = 8;
const C_IP = 9;
const C_RCPTS = 10;
const C_COUNTS = 11; // any value, as JSON text
const C_TRUNC = 12; // true, 1 or 'true' is 1, anything else 0
const C_EXTRA = 13; // not taken from the record: eventRowBinary ignores a key `extra`

// What a value is.
const T_NONE = 0;
const T_NULL = 1;
const T_STR = 2; // no escapes: its bytes are the column's
const T_ESC = 3;
const T_NUM = 4;
const T_TRUE = 5;
const T_FALSE = 6;
const T_ARR = 7;
const T_OBJ = 8;

const NCOL = EVENT_COLUMNS.length;
const CLASS = new Uint8Array(NCOL);
const MAX = new Float64Array(NCOL);
for (let s = 0; s < NCOL; s++) {
  const [name, type] = EVENT_COLUMNS[s]!;
  const c =
    name === 'command_counts'
      ? C_COUNTS
      : name === 'extra'
        ? C_EXTRA
        : {
            String: C_STR,
            'Nullable(String)': C_NSTR,
            UInt16: C_U16,
            UInt32: C_U32,
            UInt64: C_U64,
            Float32: C_F32,
            Float64: C_F64,
            "DateTime64(6, 'UTC')": C_TS,
            IPv6: C_IP,
            'Array(String)': C_RCPTS,
            Bool: C_TRUNC,
          }[type];
  if (c === undefined) throw new Error(`json-rowbinary: no rule for column ${name} ${type}`);
  CLASS[s] = c;
  MAX[s] = c === C_U16 ? 0xffff : c === C_U32 ? 0xffff_ffff : Number.MAX_SAFE_INTEGER;
}
const slotOfName = (n: string) => EVENT_COLUMNS.findIndex(([c]) => c === n);
const S_ID = slotOfName('id');
const S_TS = slotOfName('ts');
const S_KIND = slotOfName('kind');
const S_RAW = slotOfName('raw');

// Keys to slots without a string per key: a hash of the length and three bytes picks the only
// column the key can be, then its bytes are compared.
const NAMES = new Uint8Array(NCOL * 16);
const NAME_LEN = new Uint8Array(NCOL);
const BY_HASH = new Int8Array(128).fill(-1);
const keyHash = (len: number, first: number, last: number, beforeLast: number) =>
  (len * 31 + first + last * 31 + beforeLast) & 127;
for (let s = 0; s < NCOL; s++) {
  const name = EVENT_COLUMNS[s]![0];
  const h = keyHash(
    name.length,
    name.charCodeAt(0),
    name.charCodeAt(name.length - 1),
    name.charCodeAt(name.length - 2),
  );
  if (name.length > 16 || BY_HASH[h] !== -1) throw new Error(`json-rowbinary: key hash collision at ${name}`);
  BY_HASH[h] = s;
  NAME_LEN[s] = name.length;
  for (let i = 0; i < name.length; i++) NAMES[s * 16 + i] = name.charCodeAt(i);
}

function slotOf(b: Uint8Array, start: number, end: number): number {
  const len = end - start;
  if (len < 2 || len > 16) return -1;
  const s = BY_HASH[keyHash(len, b[start]!, b[end - 1]!, b[end - 2]!)]!;
  if (s < 0 || NAME_LEN[s] !== len) return -1;
  for (let i = 0, o = s * 16; i < len; i++) if (b[start + i] !== NAMES[o + i]) return -1;
  return s;
}

// A producer writes its keys in one order: the column whose key followed the last one's (NCOL:
// the start) last time is tried first, which also finds where the key ends.
const NEXT = new Int8Array(NCOL + 1).fill(-1);

/** The key starting at i is column s's name. */
function isName(b: Uint8Array, i: number, end: number, s: number): boolean {
  const len = NAME_LEN[s]!;
  if (i + len >= end || b[i + len] !== 0x22) return false;
  for (let k = 0, o = s * 16; k < len; k++) if (b[i + k] !== NAMES[o + k]) return false;
  return true;
}

// The value of each slot in the record being read; `stamp[s] === gen` when it has one.
const stamp = new Uint32Array(NCOL);
let gen = 0;
const vt = new Uint8Array(NCOL);
const va = new Int32Array(NCOL);
const vb = new Int32Array(NCOL);
const vn = new Float64Array(NCOL);
/** Recipients: start and (end << 1 | escaped) of each. */
let rcpts = new Int32Array(64);
/** Keys of the objects being skipped, start and end, to find duplicates. */
const keys = new Int32Array(512);
let keyTop = 0;
const MAX_DEPTH = 64;
/** Limits positions so that (index << 1 | flag) stays a small integer. */
const MAX_BYTES = 1 << 29;

/**
 * Writes the mail_events row of the MailEvent JSON `json` (bytes start..end) into `w` and
 * returns true, byte for byte what eventRowBinary(w, JSON.parse(text), now) writes; or writes
 * nothing and returns false when the input is outside the fast path (the caller then takes the
 * JSON.parse + eventRowBinary path, which also produces the error for bad records). The row is
 * begun here and left open: the caller ends it (w.endRow(record)). Never throws.
 */
export function transcodeEvent(
  w: RowBinaryWriter,
  json: Uint8Array,
  now: number,
  start = 0,
  end: number = json.length,
): boolean {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end)) return false;
  if (end > json.length || end >= MAX_BYTES) return false;
  try {
    if (!read(json, start, end, now)) return false;
  } catch {
    return false;
  }
  w.beginRow();
  try {
    if (write(w, json)) return true;
  } catch {}
  w.abortRow();
  return false;
}

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function ws(b: Uint8Array, i: number, end: number): number {
  while (i < end && isWs(b[i]!)) i++;
  return i;
}

/** Notes each column's value in the slots, checking it fits; false when outside the fast path. */
function read(b: Uint8Array, i: number, end: number, now: number): boolean {
  gen = (gen + 1) >>> 0;
  if (gen === 0) {
    stamp.fill(0);
    gen = 1;
  }
  keyTop = 0;
  setWords(b);
  i = ws(b, i, end);
  if (i >= end || b[i] !== 0x7b) return false;
  i = ws(b, i + 1, end);
  if (i < end && b[i] === 0x7d) i++;
  else {
    let prev: number = NCOL;
    for (;;) {
      if (i >= end || b[i] !== 0x22) return false;
      const ks = i + 1;
      let s = NEXT[prev]!;
      let ke: number;
      if (s >= 0 && isName(b, ks, end, s)) ke = ks + NAME_LEN[s]!;
      else {
        const r = scanString(b, ks, end);
        // An escaped key is left to JSON.parse.
        if (r < 0 || (r & 1) === 1) return false;
        ke = r >> 1;
        s = slotOf(b, ks, ke);
        if (s >= 0) NEXT[prev] = s;
      }
      if (s >= 0) prev = s;
      i = ws(b, ke + 1, end);
      if (i >= end || b[i] !== 0x3a) return false;
      i = ws(b, i + 1, end);
      if (i >= end) return false;
      i = value(b, i, end, s);
      if (i < 0) return false;
      i = ws(b, i, end);
      if (i >= end) return false;
      const c = b[i]!;
      if (c === 0x2c) i = ws(b, i + 1, end);
      else if (c === 0x7d) {
        i++;
        break;
      } else return false;
    }
  }
  if (ws(b, i, end) !== end) return false;
  // eventRowBinary's requirements; a missing id would be fallbackId's.
  if (stamp[S_KIND] !== gen || stamp[S_RAW] !== gen || stamp[S_ID] !== gen) return false;
  const kt = vt[S_KIND];
  const it = vt[S_ID];
  const rt = vt[S_RAW];
  if (!(kt === T_ESC || (kt === T_STR && vb[S_KIND]! > va[S_KIND]!))) return false;
  if (!(it === T_ESC || (it === T_STR && vb[S_ID]! > va[S_ID]!))) return false;
  if (rt !== T_STR && rt !== T_ESC) return false;
  return ts(b, now);
}

/** Reads the value at i (b[i] is its first byte) for slot `s` (-1: unknown key); index after it, or -1. */
function value(b: Uint8Array, i: number, end: number, s: number): number {
  const c = b[i]!;
  if (s < 0) {
    // An unknown key: null is skipped as eventRowBinary skips it; a value would go to extra.
    return c === 0x6e && lit(b, i, end, 0x6c6c756e) ? i + 4 : -1;
  }
  const cls = CLASS[s]!;
  if (cls === C_EXTRA) return skip(b, i, end, 0);
  if (stamp[s] === gen) return -1;
  stamp[s] = gen;
  if (c === 0x22) {
    const r = scanString(b, i + 1, end);
    if (r < 0) return -1;
    const e = r >> 1;
    const esc = r & 1;
    vt[s] = esc ? T_ESC : T_STR;
    va[s] = i + 1;
    vb[s] = e;
    switch (cls) {
      case C_STR:
      case C_NSTR:
      case C_IP:
        return e + 1;
      case C_TS:
        return esc ? -1 : e + 1;
      case C_COUNTS:
        va[s] = i;
        vb[s] = e + 1;
        vn[s] = esc ? 0 : 1;
        return e + 1;
      case C_TRUNC: {
        const yes = esc
          ? JSON.parse(text(b, i, e + 1)) === 'true'
          : e - i === 5 && lit(b, i + 1, e, 0x65757274);
        vn[s] = yes ? 1 : 0;
        return e + 1;
      }
      default:
        return -1;
    }
  }
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
    const e = scanNumber(b, i, end);
    if (e < 0) return -1;
    const n = numValue;
    vt[s] = T_NUM;
    vn[s] = n;
    switch (cls) {
      case C_U16:
      case C_U32:
      case C_U64:
        return n >= 0 && n <= MAX[s]! && Number.isInteger(n) ? e : -1;
      case C_F32:
      case C_F64:
        return Number.isFinite(n) ? e : -1;
      case C_TS:
        return e;
      case C_COUNTS:
        va[s] = i;
        vb[s] = e;
        vn[s] = numCanonical ? 1 : 0;
        return e;
      case C_TRUNC:
        vn[s] = n === 1 ? 1 : 0;
        return e;
      default:
        return -1;
    }
  }
  if (c === 0x6e) {
    if (!lit(b, i, end, 0x6c6c756e)) return -1;
    vt[s] = T_NULL;
    vn[s] = 0;
    return i + 4;
  }
  if (cls !== C_COUNTS && cls !== C_TRUNC && cls !== C_RCPTS) return -1;
  if (cls === C_RCPTS) return c === 0x5b ? recipients(b, i, end, s) : -1;
  canonical = true;
  const e = skip(b, i, end, 0);
  if (e < 0) return -1;
  vt[s] = c === 0x74 ? T_TRUE : c === 0x66 ? T_FALSE : c === 0x5b ? T_ARR : T_OBJ;
  va[s] = i;
  vb[s] = e;
  vn[s] = cls === C_TRUNC ? (c === 0x74 ? 1 : 0) : canonical ? 1 : 0;
  return e;
}

/** An array of strings at i for slot s; index after it, or -1. */
function recipients(b: Uint8Array, i: number, end: number, s: number): number {
  let n = 0;
  i = ws(b, i + 1, end);
  if (i < end && b[i] === 0x5d) i++;
  else {
    for (;;) {
      if (i >= end || b[i] !== 0x22) return -1;
      const r = scanString(b, i + 1, end);
      if (r < 0) return -1;
      if (2 * n + 2 > rcpts.length) {
        const more = new Int32Array(rcpts.length * 2);
        more.set(rcpts);
        rcpts = more;
      }
      rcpts[2 * n] = i + 1;
      rcpts[2 * n + 1] = r;
      n++;
      i = ws(b, (r >> 1) + 1, end);
      if (i >= end) return -1;
      if (b[i] === 0x2c) i = ws(b, i + 1, end);
      else if (b[i] === 0x5d) {
        i++;
        break;
      } else return -1;
    }
  }
  vt[s] = T_ARR;
  vn[s] = n;
  return i;
}

/** `word` (up to 4 bytes, little-endian in an int) at i. */
function lit(b: Uint8Array, i: number, end: number, word: number): boolean {
  if (i + 4 > end) return false;
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) === word;
}

/**
 * The string whose content starts at i: (index of its closing quote << 1) | 1 if it has escapes;
 * -1 if it is not a JSON string of valid UTF-8 (which TextDecoder would have altered).
 */
function scanString(b: Uint8Array, i: number, end: number): number {
  let esc = 0;
  for (;;) {
    i = plainRun(b, i, end);
    if (i >= end) return -1;
    const c = b[i]!;
    if (c === 0x22) return (i << 1) | esc;
    if (c === 0x5c) {
      esc = 1;
      if (i + 1 >= end) return -1;
      const e = b[i + 1]!;
      if (e === 0x75) {
        if (i + 6 > end || hex4(b, i + 2) < 0) return -1;
        i += 6;
      } else if (
        e === 0x22 ||
        e === 0x5c ||
        e === 0x2f ||
        e === 0x62 ||
        e === 0x66 ||
        e === 0x6e ||
        e === 0x72 ||
        e === 0x74
      )
        i += 2;
      else return -1;
    } else if (c < 0x20) return -1;
    else {
      i = utf8Char(b, i, end);
      if (i < 0) return -1;
    }
  }
}

// The input's ArrayBuffer as 32-bit words, for plainRun; wordBase is the input's byteOffset.
let words: Int32Array<ArrayBufferLike> = new Int32Array(0);
let wordsOf: ArrayBufferLike | undefined;
let wordBase = -1;

function setWords(b: Uint8Array): void {
  if (b.buffer !== wordsOf || (b.byteOffset + b.length) >> 2 > words.length) {
    wordsOf = b.buffer;
    words =
      b.buffer.byteLength < 2 ** 31
        ? new Int32Array(b.buffer, 0, b.buffer.byteLength >> 2)
        : new Int32Array(0);
  }
  wordBase = words.length > 0 ? b.byteOffset : -1;
}

/** The index of the first byte from i that is not PLAIN (or end); long runs four bytes at a time. */
function plainRun(b: Uint8Array, i: number, end: number): number {
  if (end - i >= 16 && wordBase >= 0) {
    let p = wordBase + i;
    while ((p & 3) !== 0 && PLAIN[b[i]!] === 1) {
      i++;
      p++;
    }
    if ((p & 3) === 0) {
      let k = p >> 2;
      const stop = (wordBase + end) >> 2;
      while (k < stop) {
        // A byte below 0x20, from 0x80, or equal to '"' or '\' sets its top bit here (a borrow
        // may flag another byte too: the byte loop below sorts it out).
        const x = words[k]!;
        const q = x ^ 0x22222222;
        const e = x ^ 0x5c5c5c5c;
        if ((x | ((x - 0x20202020) & ~x) | ((q - 0x01010101) & ~q) | ((e - 0x01010101) & ~e)) & 0x80808080)
          break;
        k++;
      }
      i = (k << 2) - wordBase;
    }
  }
  while (i < end && PLAIN[b[i]!] === 1) i++;
  return i;
}

/** Bytes that stand for themselves in a JSON string: printable ASCII but `"` and `\`. */
const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 0x80; c++) PLAIN[c] = c === 0x22 || c === 0x5c ? 0 : 1;

/** Index after the UTF-8 sequence starting with b[i] >= 0x80, or -1 if it is not well-formed. */
function utf8Char(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  if (c < 0xc2) return -1;
  if (c < 0xe0) return i + 1 < end && (b[i + 1]! & 0xc0) === 0x80 ? i + 2 : -1;
  if (c < 0xf0) {
    if (i + 2 >= end) return -1;
    const c1 = b[i + 1]!;
    if ((c1 & 0xc0) !== 0x80 || (b[i + 2]! & 0xc0) !== 0x80) return -1;
    // Overlong forms and surrogates.
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 >= 0xa0)) return -1;
    return i + 3;
  }
  if (c < 0xf5) {
    if (i + 3 >= end) return -1;
    const c1 = b[i + 1]!;
    if ((c1 & 0xc0) !== 0x80 || (b[i + 2]! & 0xc0) !== 0x80 || (b[i + 3]! & 0xc0) !== 0x80) return -1;
    if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 >= 0x90)) return -1;
    return i + 4;
  }
  return -1;
}

function hex4(b: Uint8Array, i: number): number {
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const c = b[i + k]!;
    const d =
      c >= 0x30 && c <= 0x39
        ? c - 0x30
        : c >= 0x61 && c <= 0x66
          ? c - 0x57
          : c >= 0x41 && c <= 0x46
            ? c - 0x37
            : -1;
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v;
}

const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);
let numValue = 0;
/** The number read is as JSON.stringify writes it (a short integer, not -0). */
let numCanonical = false;

/** The JSON number at i into numValue, exactly what JSON.parse makes of it; index after it, or -1. */
function scanNumber(b: Uint8Array, i: number, end: number): number {
  const from = i;
  const neg = b[i] === 0x2d;
  if (neg) i++;
  if (i >= end) return -1;
  let m = 0;
  let digits = 0;
  const first = b[i]!;
  if (first === 0x30) {
    i++;
    digits = 1;
  } else if (first >= 0x31 && first <= 0x39) {
    for (; i < end && isDigit(b[i]!); i++) {
      m = m * 10 + (b[i]! - 0x30);
      digits++;
    }
  } else return -1;
  let scale = 0;
  let plain = true;
  if (i < end && b[i] === 0x2e) {
    plain = false;
    i++;
    const f = i;
    for (; i < end && isDigit(b[i]!); i++) m = m * 10 + (b[i]! - 0x30);
    if (i === f) return -1;
    digits += i - f;
    scale = f - i;
  }
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
    plain = false;
    i++;
    let eneg = false;
    if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) eneg = b[i++] === 0x2d;
    const f = i;
    let x = 0;
    for (; i < end && isDigit(b[i]!); i++) if (x < 10_000) x = x * 10 + (b[i]! - 0x30);
    if (i === f) return -1;
    scale += eneg ? -x : x;
  }
  // Up to 15 digits the mantissa is exact, and one multiplication or division by an exact power
  // of ten rounds correctly, as Number() does; other numbers go through Number().
  let v: number;
  if (digits <= 15 && scale >= -22 && scale <= 22) {
    v = scale === 0 ? m : scale > 0 ? m * POW10[scale]! : m / POW10[-scale]!;
    if (neg) v = -v;
  } else v = Number(text(b, from, i));
  numValue = v;
  numCanonical = plain && digits <= 15 && !(neg && m === 0);
  return i;
}

/** The nested value being skipped is as JSON.stringify(JSON.parse(it)) would write it. */
let canonical = true;

/** Skips the JSON value at i, checking it; index after it, or -1. */
function skip(b: Uint8Array, i: number, end: number, depth: number): number {
  if (i >= end) return -1;
  const c = b[i]!;
  if (c === 0x22) {
    const r = scanString(b, i + 1, end);
    if (r < 0) return -1;
    if (r & 1) canonical = false;
    return (r >> 1) + 1;
  }
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
    const e = scanNumber(b, i, end);
    if (!numCanonical) canonical = false;
    return e;
  }
  if (c === 0x74) return lit(b, i, end, 0x65757274) ? i + 4 : -1;
  if (c === 0x66) return i + 5 <= end && lit(b, i + 1, end, 0x65736c61) ? i + 5 : -1;
  if (c === 0x6e) return lit(b, i, end, 0x6c6c756e) ? i + 4 : -1;
  if (c !== 0x5b && c !== 0x7b) return -1;
  if (depth >= MAX_DEPTH) return -1;
  const close = c === 0x5b ? 0x5d : 0x7d;
  let j = ws(b, i + 1, end);
  if (j !== i + 1) canonical = false;
  if (j < end && b[j] === close) return j + 1;
  const base = keyTop;
  for (;;) {
    if (c === 0x7b) {
      if (j >= end || b[j] !== 0x22) return -1;
      const r = scanString(b, j + 1, end);
      if (r < 0) return -1;
      const ks = j + 1;
      const ke = r >> 1;
      // Escaped, integer-like (JSON.parse puts those first), '__proto__' and repeated keys are
      // not written back as read.
      if (r & 1 || (ke > ks && ((b[ks]! >= 0x30 && b[ks]! <= 0x39) || b[ks] === 0x5f))) canonical = false;
      else if (canonical) {
        if (keyTop + 2 > keys.length) canonical = false;
        else {
          for (let k = base; k < keyTop; k += 2)
            if (sameBytes(b, keys[k]!, keys[k + 1]!, ks, ke)) canonical = false;
          keys[keyTop++] = ks;
          keys[keyTop++] = ke;
        }
      }
      j = ke + 1;
      const k = ws(b, j, end);
      if (k >= end || b[k] !== 0x3a) return -1;
      j = ws(b, k + 1, end);
      if (k !== ke + 1 || j !== k + 1) canonical = false;
    }
    j = skip(b, j, end, depth + 1);
    if (j < 0) return -1;
    const k = ws(b, j, end);
    if (k !== j) canonical = false;
    if (k >= end) return -1;
    if (b[k] === close) {
      keyTop = base;
      return k + 1;
    }
    if (b[k] !== 0x2c) return -1;
    j = ws(b, k + 1, end);
    if (j !== k + 1) canonical = false;
  }
}

function sameBytes(b: Uint8Array, a0: number, a1: number, b0: number, b1: number): boolean {
  if (a1 - a0 !== b1 - b0) return false;
  for (let k = 0; k < a1 - a0; k++) if (b[a0 + k] !== b[b0 + k]) return false;
  return true;
}

/** Bytes start..end as text (the rare paths). */
function text(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8');
}

/**
 * The ts column (µs) into vn: tsMicros of the value, or of `now` without one, exactly as
 * eventRowBinary computes it (the same function, with its cache of the last second). A string
 * value is read as Latin-1: a time is ASCII, and anything else fails tsMicros' pattern here and
 * takes the slow path.
 */
function ts(b: Uint8Array, now: number): boolean {
  const t = stamp[S_TS] === gen ? vt[S_TS] : T_NONE;
  let us: number;
  try {
    if (t === T_NONE || t === T_NULL) us = tsMicros(now);
    else if (t === T_NUM) us = tsMicros(vn[S_TS]!);
    else if (t === T_STR) {
      us = sameSecond(b, va[S_TS]!, vb[S_TS]!);
      if (us < 0) {
        us = tsMicros(latin1(b, va[S_TS]!, vb[S_TS]!));
        noteSecond(b, va[S_TS]!, vb[S_TS]!, us);
      }
    } else return false;
  } catch {
    return false; // not a time: the slow path says why
  }
  // u64 throws below 0; numbers from 2^53 on are left to the slow path.
  if (!(us >= 0) || (t !== T_STR && us > Number.MAX_SAFE_INTEGER)) return false;
  vn[S_TS] = us;
  return true;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

// Consecutive events mostly share their second: the 19 bytes `YYYY-MM-DDThh:mm:ss` and the
// offset after the fraction (`+00:00`, `Z`...) of the last time read the slow way (tsMicros) are
// kept with its whole seconds, and a time with the same bytes around its fraction is read here
// without a string: the fraction is the only new part (its first 6 digits, as tsMicros reads it).
// Anything else takes tsMicros.
const lastHead = new Uint8Array(19);
const lastOffset = new Uint8Array(8);
let lastOffsetLen = -1;
let lastHeadSeconds = -1;
/** Where the fraction read by fraction() ended (the offset's first byte). */
let afterFraction = 0;

/** Microseconds of the time in b[start..end) when it is in the remembered second, else -1. */
function sameSecond(b: Uint8Array, start: number, end: number): number {
  if (lastOffsetLen < 0 || end - start < 19) return -1;
  for (let k = 0; k < 19; k++) if (b[start + k] !== lastHead[k]) return -1;
  const us = fraction(b, start + 19, end);
  if (us < 0 || end - afterFraction !== lastOffsetLen) return -1;
  for (let k = 0; k < lastOffsetLen; k++) if (b[afterFraction + k] !== lastOffset[k]) return -1;
  return lastHeadSeconds * 1e6 + us;
}

/**
 * The fraction in µs at b[at..end): none, or `.` and 1-9 digits (afterFraction: where it ends); -1
 * for anything else (a comma, no digits, ten of them), which tsMicros reads.
 */
function fraction(b: Uint8Array, at: number, end: number): number {
  afterFraction = at;
  if (at === end || b[at] !== 0x2e) return 0;
  let i = at + 1;
  let us = 0;
  let k = 0;
  for (; i < end && isDigit(b[i]!); i++, k++) if (k < 6) us = us * 10 + b[i]! - 0x30;
  if (k === 0 || k > 9) return -1;
  for (; k < 6; k++) us *= 10;
  afterFraction = i;
  return us;
}

/** Remembers the second of a time tsMicros read as `us`. */
function noteSecond(b: Uint8Array, start: number, end: number, us: number): void {
  const frac = end - start >= 19 ? fraction(b, start + 19, end) : -1;
  const offsetLen = end - afterFraction;
  // Whole seconds only (a comma fraction is left in the offset's bytes: not remembered).
  if (frac < 0 || offsetLen > lastOffset.length || !Number.isSafeInteger(us) || (us - frac) % 1e6 !== 0)
    return;
  for (let k = 0; k < 19; k++) lastHead[k] = b[start + k]!;
  for (let k = 0; k < offsetLen; k++) lastOffset[k] = b[afterFraction + k]!;
  lastOffsetLen = offsetLen;
  lastHeadSeconds = (us - frac) / 1e6;
}

/** Bytes start..end as Latin-1 text. */
function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

const V4_MAPPED = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
const NO_ADDRESS = new Uint8Array(16);

// The bytes of each column without a value (absent or null), in column order: runs of them are
// written in one copy.
const DEFAULT_BYTES = new Uint8Array(16);
for (const [c, n] of [
  [C_STR, 1],
  [C_NSTR, 1],
  [C_U16, 2],
  [C_U32, 4],
  [C_U64, 8],
  [C_F32, 4],
  [C_F64, 8],
  [C_TS, 8],
  [C_IP, 16],
  [C_RCPTS, 1],
  [C_COUNTS, 1],
  [C_TRUNC, 1],
  [C_EXTRA, 1],
] as const)
  DEFAULT_BYTES[c] = n;
const TPL_AT = new Int32Array(NCOL + 1);
for (let s = 0; s < NCOL; s++) TPL_AT[s + 1] = TPL_AT[s]! + DEFAULT_BYTES[CLASS[s]!]!;
const TEMPLATE = new Uint8Array(TPL_AT[NCOL]!);
for (let s = 0; s < NCOL; s++) if (CLASS[s] === C_NSTR) TEMPLATE[TPL_AT[s]!] = 1;

/** Writes the row of the record read; false if a value turned out not to fit. */
function write(w: RowBinaryWriter, b: Uint8Array): boolean {
  let run = -1;
  for (let s = 0; s < NCOL; s++) {
    const t = stamp[s] === gen ? vt[s]! : T_NONE;
    const cls = CLASS[s]!;
    if ((t === T_NONE || t === T_NULL) && cls !== C_TS) {
      if (run < 0) run = TPL_AT[s]!;
      continue;
    }
    if (run >= 0) {
      w.copy(TEMPLATE, run, TPL_AT[s]!);
      run = -1;
    }
    switch (cls) {
      case C_STR:
        string(w, b, s, t);
        break;
      case C_NSTR:
        w.u8(0);
        string(w, b, s, t);
        break;
      case C_U16:
        w.uintLE(vn[s]!, 2);
        break;
      case C_U32:
        w.uintLE(vn[s]!, 4);
        break;
      case C_U64:
      case C_TS:
        w.uintLE(vn[s]!, 8);
        break;
      case C_F32:
        w.f32(vn[s]!);
        break;
      case C_F64:
        w.f64(vn[s]!);
        break;
      case C_IP:
        if (t === T_STR && ipv4(w, b, va[s]!, vb[s]!)) break;
        clientIp(w, t === T_STR ? text(b, va[s]!, vb[s]!) : JSON.parse(text(b, va[s]! - 1, vb[s]! + 1)));
        break;
      case C_RCPTS: {
        const n = vn[s]!;
        w.varUInt(n);
        for (let k = 0; k < 2 * n; k += 2) {
          const r = rcpts[k + 1]!;
          if (r & 1) writeEscaped(w, b, rcpts[k]!, r >> 1);
          else w.utf8(b, rcpts[k]!, r >> 1);
        }
        break;
      }
      case C_COUNTS:
        if (vn[s] === 1) w.utf8(b, va[s]!, vb[s]!);
        else w.string(JSON.stringify(JSON.parse(text(b, va[s]!, vb[s]!))));
        break;
      case C_TRUNC:
        w.u8(vn[s]!);
        break;
      case C_EXTRA:
        w.u8(0);
        break;
      default:
        return false;
    }
  }
  if (run >= 0) w.copy(TEMPLATE, run, TPL_AT[NCOL]!);
  return true;
}

function string(w: RowBinaryWriter, b: Uint8Array, s: number, t: number): void {
  if (t === T_STR) w.utf8(b, va[s]!, vb[s]!);
  else writeEscaped(w, b, va[s]!, vb[s]!);
}

/** A dotted quad (what clientIp's pattern takes) at a..z, written IPv4-mapped; false if it is not one. */
function ipv4(w: RowBinaryWriter, b: Uint8Array, a: number, z: number): boolean {
  if (a === z) {
    w.bytes(NO_ADDRESS);
    return true;
  }
  let addr = 0;
  let i = a;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= z || b[i] !== 0x2e) return false;
      i++;
    }
    const f = i;
    let x = 0;
    while (i < z && i - f < 3 && isDigit(b[i]!)) x = x * 10 + (b[i++]! - 0x30);
    if (i === f || x > 255) return false;
    addr = addr * 256 + x;
  }
  if (i !== z) return false;
  w.bytes(V4_MAPPED);
  w.u32(((addr >>> 24) | ((addr >>> 8) & 0xff00) | ((addr & 0xff00) << 8) | (addr << 24)) >>> 0);
  return true;
}

/**
 * The JSON string content a..z (checked by scanString) as a String column: escapes decoded, a lone
 * surrogate as U+FFFD, as Buffer's UTF-8 encoding of the parsed string has it.
 */
function writeEscaped(w: RowBinaryWriter, b: Uint8Array, a: number, z: number): void {
  const at = w.offset();
  w.u8(0);
  let n = 0;
  let run = a;
  let i = a;
  while (i < z) {
    if (b[i] !== 0x5c) {
      i++;
      continue;
    }
    if (i > run) {
      w.copy(b, run, i);
      n += i - run;
    }
    const e = b[i + 1]!;
    if (e !== 0x75) {
      w.u8(e === 0x62 ? 8 : e === 0x66 ? 12 : e === 0x6e ? 10 : e === 0x72 ? 13 : e === 0x74 ? 9 : e);
      n++;
      i += 2;
    } else {
      let cp = hex4(b, i + 2);
      i += 6;
      if (cp >= 0xd800 && cp < 0xe000) {
        const lo = cp < 0xdc00 && i + 6 <= z && b[i] === 0x5c && b[i + 1] === 0x75 ? hex4(b, i + 2) : -1;
        if (lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        } else cp = 0xfffd;
      }
      if (cp < 0x80) {
        w.u8(cp);
        n += 1;
      } else if (cp < 0x800) {
        w.u8(0xc0 | (cp >> 6));
        w.u8(0x80 | (cp & 0x3f));
        n += 2;
      } else if (cp < 0x10000) {
        w.u8(0xe0 | (cp >> 12));
        w.u8(0x80 | ((cp >> 6) & 0x3f));
        w.u8(0x80 | (cp & 0x3f));
        n += 3;
      } else {
        w.u8(0xf0 | (cp >> 18));
        w.u8(0x80 | ((cp >> 12) & 0x3f));
        w.u8(0x80 | ((cp >> 6) & 0x3f));
        w.u8(0x80 | (cp & 0x3f));
        n += 4;
      }
    }
    run = i;
  }
  if (z > run) {
    w.copy(b, run, z);
    n += z - run;
  }
  w.patchVarUInt(at, n);
}
