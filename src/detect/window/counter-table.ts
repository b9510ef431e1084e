// Event-time bucketed counters for many keys, stored column-wise in typed arrays.
//
// A key (an IP, a prefix) gets a slot; a slot has `counters` counters, each a ring of buckets of
// `bucketMs` of event time — as many as that counter's longest window needs (`rings`) — plus `aux`
// 32-bit columns the owner uses freely (host masks, HELO sketches). One JS object per key would
// cost ~1 KB and GC time; here a source costs its Map entry plus Σ rings × 2 bytes. Counters
// saturate at 65,535 per bucket (wide: 2^32-1), far above any threshold.
//
// Bucket numbers are floor(eventMs / bucketMs). A slot's `epoch` is the newest bucket it has
// seen; older buckets in its ring are zeroed lazily when the epoch moves, so nothing runs per
// tick for idle keys. A key idle for longer than its ring is freed by `sweep`.

export class CounterTable {
  readonly counters: number;
  /** The longest ring: the span (in buckets) a key is kept after its last event. */
  readonly buckets: number;
  private readonly rings: Int32Array;
  private readonly offsets: Int32Array;
  readonly bucketMs: number;
  readonly aux: number;
  readonly maxKeys: number;
  private readonly wide: boolean;
  private readonly index = new Map<string, number>();
  private keyOf: (string | undefined)[] = [];
  private free: number[] = [];
  private capacity = 0;
  private used = 0;
  private cells: Uint16Array | Uint32Array;
  private epochs: Int32Array;
  private auxCols: Uint32Array;
  private readonly stride: number;

  constructor(opts: {
    counters: number;
    buckets: number;
    /** Buckets per counter (default: `buckets` for all). */
    rings?: number[];
    bucketMs: number;
    aux?: number;
    maxKeys: number;
    wide?: boolean;
    initial?: number;
  }) {
    this.counters = opts.counters;
    this.buckets = opts.buckets;
    this.rings = Int32Array.from(
      opts.rings ?? Array.from({ length: opts.counters }, () => opts.buckets),
      (r) => Math.max(1, Math.min(r, opts.buckets)),
    );
    this.offsets = new Int32Array(this.counters);
    let off = 0;
    for (let c = 0; c < this.counters; c++) {
      this.offsets[c] = off;
      off += this.rings[c]!;
    }
    this.bucketMs = opts.bucketMs;
    this.aux = opts.aux ?? 0;
    this.maxKeys = opts.maxKeys;
    this.wide = opts.wide ?? false;
    this.stride = off;
    const initial = Math.min(opts.initial ?? 1024, this.maxKeys);
    this.cells = this.wide ? new Uint32Array(0) : new Uint16Array(0);
    this.epochs = new Int32Array(0);
    this.auxCols = new Uint32Array(0);
    this.grow(initial);
  }

  get size(): number {
    return this.index.size;
  }

  /** Bytes held by the typed arrays (the Map and key strings come on top). */
  get arrayBytes(): number {
    return this.cells.byteLength + this.epochs.byteLength + this.auxCols.byteLength;
  }

  bucketOf(ms: number): number {
    return Math.floor(ms / this.bucketMs);
  }

  get(key: string): number {
    return this.index.get(key) ?? -1;
  }

  key(slot: number): string | undefined {
    return this.keyOf[slot];
  }

  /** The slot of key, created when absent; -1 when the table is full. */
  slot(key: string, bucket: number): number {
    const s = this.index.get(key);
    if (s !== undefined) return s;
    if (this.index.size >= this.maxKeys) return -1;
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.used === this.capacity) this.grow(Math.min(this.capacity * 2, this.maxKeys));
      slot = this.used++;
    }
    this.index.set(key, slot);
    this.keyOf[slot] = key;
    this.cells.fill(0, slot * this.stride, (slot + 1) * this.stride);
    if (this.aux > 0) this.auxCols.fill(0, slot * this.aux, (slot + 1) * this.aux);
    this.epochs[slot] = bucket;
    return slot;
  }

  /**
   * Moves the slot's ring forward to `bucket` (zeroing the buckets it skips). Returns false when
   * `bucket` is older than the ring holds: the event is too late to count.
   */
  advance(slot: number, bucket: number): boolean {
    const epoch = this.epochs[slot]!;
    if (bucket <= epoch) return bucket > epoch - this.buckets;
    const base = slot * this.stride;
    for (let c = 0; c < this.counters; c++) {
      const r = this.rings[c]!;
      const at = base + this.offsets[c]!;
      const steps = Math.min(bucket - epoch, r);
      for (let s = 1; s <= steps; s++) this.cells[at + ((epoch + s) % r)] = 0;
    }
    this.epochs[slot] = bucket;
    return true;
  }

  /** Adds n to a counter in `bucket`; call `advance` first. A bucket older than the counter's ring is ignored. */
  add(slot: number, counter: number, bucket: number, n = 1): void {
    const r = this.rings[counter]!;
    if (bucket <= this.epochs[slot]! - r) return;
    const i = slot * this.stride + this.offsets[counter]! + (bucket % r);
    const max = this.wide ? 0xffffffff : 0xffff;
    const v = this.cells[i]! + n;
    this.cells[i] = Math.min(v, max);
  }

  /** Sum of a counter over the `n` newest buckets ending at the slot's epoch (its newest event). */
  sum(slot: number, counter: number, n: number = this.buckets): number {
    const epoch = this.epochs[slot]!;
    const r = this.rings[counter]!;
    const base = slot * this.stride + this.offsets[counter]!;
    const k = Math.min(n, r);
    let total = 0;
    for (let s = 0; s < k && s <= epoch; s++) total += this.cells[base + ((epoch - s) % r)]!;
    return total;
  }

  /** The counter in one bucket (0 when that bucket has left the counter's ring). */
  at(slot: number, counter: number, bucket: number): number {
    const epoch = this.epochs[slot]!;
    const r = this.rings[counter]!;
    if (bucket > epoch || bucket <= epoch - r) return 0;
    return this.cells[slot * this.stride + this.offsets[counter]! + (bucket % r)]!;
  }

  epoch(slot: number): number {
    return this.epochs[slot]!;
  }

  getAux(slot: number, col: number): number {
    return this.auxCols[slot * this.aux + col]!;
  }

  setAux(slot: number, col: number, v: number): void {
    this.auxCols[slot * this.aux + col] = v >>> 0;
  }

  /** Frees every key whose newest bucket is older than `minBucket`; returns how many. */
  sweep(minBucket: number, onFree?: (key: string) => void): number {
    let freed = 0;
    for (let slot = 0; slot < this.used; slot++) {
      const key = this.keyOf[slot];
      if (key === undefined || this.epochs[slot]! >= minBucket) continue;
      this.index.delete(key);
      this.keyOf[slot] = undefined;
      this.free.push(slot);
      onFree?.(key);
      freed++;
    }
    return freed;
  }

  *entries(): IterableIterator<[string, number]> {
    yield* this.index.entries();
  }

  private grow(capacity: number): void {
    if (capacity <= this.capacity) return;
    const cells = this.wide
      ? new Uint32Array(capacity * this.stride)
      : new Uint16Array(capacity * this.stride);
    cells.set(this.cells);
    this.cells = cells;
    const epochs = new Int32Array(capacity);
    epochs.set(this.epochs);
    this.epochs = epochs;
    const aux = new Uint32Array(capacity * this.aux);
    aux.set(this.auxCols);
    this.auxCols = aux;
    this.capacity = capacity;
  }
}

/** Population count of a 32-bit word. */
export function popcount32(v: number): number {
  let x = v >>> 0;
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Distinct items estimated from a 32-bit linear-counting sketch (exact-ish up to ~20, saturates near 100). */
export function sketchCount(bits: number): number {
  const set = popcount32(bits);
  if (set === 0) return 0;
  if (set >= 32) return 111;
  return Math.round(-32 * Math.log(1 - set / 32));
}

/** FNV-1a 32-bit hash of a string, for sketches. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
