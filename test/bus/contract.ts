import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import type {
  BatchHandler,
  Bus,
  BusMessage,
  Consumer,
  ConsumerOptions,
  TopicPartition,
} from '../../src/bus/bus.js';
import { partitionForKey } from '../../src/bus/partition.js';

// The one contract both buses keep. `defineBusContract` is called inside a describe() of
// memory.test.ts (unit) and kafka.int.test.ts (integration, a real broker).

export interface ContractOptions {
  /** Kafka compacts lazily (a fresh reader may still see older values); the memory bus keeps exactly one per key. */
  exactCompaction: boolean;
  /** How long to wait for records and rebalances. */
  timeoutMs: number;
}

let seq = 0;
/** Topic and group names unique per run, so reruns against the same broker start clean. */
export function unique(prefix: string): string {
  seq++;
  return `${prefix}-${process.pid}-${Date.now()}-${seq}`;
}

/** Collects every message a consumer is handed, in arrival order. */
export class Collector {
  readonly messages: BusMessage[] = [];
  readonly batches: { topic: string; partition: number; offsets: string[] }[] = [];
  readonly handler: BatchHandler = async (messages, ctx) => {
    this.batches.push({ topic: ctx.topic, partition: ctx.partition, offsets: messages.map((m) => m.offset) });
    this.messages.push(...messages);
  };

  values(): string[] {
    return this.messages.map((m) => m.value?.toString() ?? '<null>');
  }
}

export function defineBusContract(makeBus: () => Promise<Bus>, opts: ContractOptions): void {
  const wait = { timeout: opts.timeoutMs, interval: 20 };
  let bus: Bus;
  const consumers: Consumer[] = [];

  beforeEach(async () => {
    bus = await makeBus();
  });
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close()));
    await bus.close();
  });

  async function consume(copts: ConsumerOptions, handler: BatchHandler): Promise<Consumer> {
    const c = await bus.consumer({ retry: { initialMs: 50, maxMs: 200 }, ...copts });
    consumers.push(c);
    await c.run(handler);
    return c;
  }

  async function send(topic: string, records: { key: string | null; value: string | null }[]): Promise<void> {
    const p = await bus.producer({ lingerMs: 5 });
    await p.send(topic, records);
    await p.close();
  }

  it('round trip: what is sent arrives with key, value, headers, partition, offset and timestamp', async () => {
    const topic = unique('rt');
    await bus.ensureTopics([{ topic, partitions: 3 }]);
    const got = new Collector();
    await consume({ groupId: unique('g'), topics: [topic], fromBeginning: true }, got.handler);
    const before = Date.now();
    const p = await bus.producer({ lingerMs: 5 });
    await p.send(topic, [
      { key: 'k1', value: 'text value', headers: { source: 'test', n: '1' } },
      { key: null, value: Buffer.from([0, 1, 2, 255]) },
      { key: 'k3', value: '{"json":true}' },
      { key: 'ü\u0000ß 🙂', value: 'key with NUL and non-ASCII' },
    ]);
    await p.close();
    await vi.waitFor(() => expect(got.messages).toHaveLength(4), wait);
    const byKey = new Map(got.messages.map((m) => [m.key, m]));
    const m1 = byKey.get('k1')!;
    expect(m1.topic).toBe(topic);
    expect(Buffer.isBuffer(m1.value)).toBe(true);
    expect(m1.value!.toString()).toBe('text value');
    expect(m1.headers).toEqual({ source: 'test', n: '1' });
    expect(m1.partition).toBe(partitionForKey('k1', 3));
    expect(m1.offset).toMatch(/^\d+$/);
    expect(m1.timestamp).toBeGreaterThanOrEqual(before - 5000);
    expect(m1.timestamp).toBeLessThanOrEqual(Date.now() + 5000);
    expect([...byKey.get(null)!.value!]).toEqual([0, 1, 2, 255]);
    expect(byKey.get('k3')!.value!.toString()).toBe('{"json":true}');
    const odd = byKey.get('ü\u0000ß 🙂')!;
    expect(odd.value!.toString()).toBe('key with NUL and non-ASCII');
    expect(odd.partition).toBe(partitionForKey('ü\u0000ß 🙂', 3));
  });

  it("same key, same partition (Kafka's murmur2), in the order sent, across sends", async () => {
    const topic = unique('order');
    await bus.ensureTopics([{ topic, partitions: 4 }]);
    const got = new Collector();
    await consume({ groupId: unique('g'), topics: [topic], fromBeginning: true }, got.handler);
    const keys = ['10.0.0.1', '10.0.0.2', '2001:db8::7', 'mx.example.test', 'k'];
    const p = await bus.producer({ lingerMs: 5 });
    const sends: Promise<void>[] = [];
    for (let round = 0; round < 6; round++) {
      sends.push(
        p.send(
          topic,
          keys.flatMap((key) => [0, 1, 2].map((i) => ({ key, value: `${key}#${round * 3 + i}` }))),
        ),
      );
    }
    await Promise.all(sends);
    await p.close();
    await vi.waitFor(() => expect(got.messages).toHaveLength(keys.length * 18), wait);
    for (const key of keys) {
      const mine = got.messages.filter((m) => m.key === key);
      expect(new Set(mine.map((m) => m.partition))).toEqual(new Set([partitionForKey(key, 4)]));
      expect(mine.map((m) => m.value!.toString())).toEqual(
        Array.from({ length: 18 }, (_, i) => `${key}#${i}`),
      );
      const offsets = mine.map((m) => BigInt(m.offset));
      expect(offsets).toEqual([...offsets].sort((a, b) => (a < b ? -1 : 1)));
    }
  });

  it('two consumers of one group split the partitions and together see every record once', async () => {
    const topic = unique('split');
    const groupId = unique('g');
    await bus.ensureTopics([{ topic, partitions: 4 }]);
    const a = new Collector();
    const b = new Collector();
    const ca = await consume({ groupId, topics: [topic] }, a.handler);
    const cb = await consume({ groupId, topics: [topic] }, b.handler);
    const key = (tp: TopicPartition) => `${tp.topic}/${tp.partition}`;
    await vi.waitFor(() => {
      const sa = ca.assignment().map(key);
      const sb = cb.assignment().map(key);
      expect(sa.length).toBeGreaterThan(0);
      expect(sb.length).toBeGreaterThan(0);
      expect([...sa, ...sb].sort()).toEqual([0, 1, 2, 3].map((p) => `${topic}/${p}`));
    }, wait);
    const n = 400;
    await send(
      topic,
      Array.from({ length: n }, (_, i) => ({ key: `src-${i}`, value: String(i) })),
    );
    await vi.waitFor(() => expect(a.messages.length + b.messages.length).toBe(n), wait);
    const all = [...a.values(), ...b.values()].map(Number).sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(a.messages.length).toBeGreaterThan(0);
    expect(b.messages.length).toBeGreaterThan(0);
    const pa = new Set(ca.assignment().map((tp) => tp.partition));
    for (const m of a.messages) expect(pa.has(m.partition)).toBe(true);
    for (const m of b.messages) expect(pa.has(m.partition)).toBe(false);
  });

  it('a committed offset survives a consumer restart: the group continues after the last committed record', async () => {
    const topic = unique('restart');
    const groupId = unique('g');
    await bus.ensureTopics([{ topic, partitions: 2 }]);
    const first = new Collector();
    const c1 = await consume({ groupId, topics: [topic], fromBeginning: true }, first.handler);
    await send(
      topic,
      Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 7}`, value: `old-${i}` })),
    );
    await vi.waitFor(() => expect(first.messages).toHaveLength(30), wait);
    await c1.close();
    await send(
      topic,
      Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 7}`, value: `new-${i}` })),
    );
    // fromBeginning would replay everything if the committed offsets had been lost.
    const second = new Collector();
    await consume({ groupId, topics: [topic], fromBeginning: true }, second.handler);
    await vi.waitFor(
      () => expect(second.messages.filter((m) => m.value!.toString().startsWith('new-'))).toHaveLength(30),
      wait,
    );
    // Records are delivered in offset order per partition: a replayed old one would have come first.
    expect(second.values().filter((v) => v.startsWith('old-'))).toEqual([]);
    expect(second.messages).toHaveLength(30);
  });

  it('a handler that throws gets the same batch again after a backoff; it is committed only once handled', async () => {
    const topic = unique('retry');
    const groupId = unique('g');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    await send(
      topic,
      Array.from({ length: 5 }, (_, i) => ({ key: 'same', value: `r${i}` })),
    );
    const deliveries: { at: number; first: string; values: string[] }[] = [];
    let failuresLeft = 2;
    const c = await consume({ groupId, topics: [topic], fromBeginning: true }, async (messages) => {
      deliveries.push({
        at: Date.now(),
        first: messages[0]!.offset,
        values: messages.map((m) => m.value!.toString()),
      });
      if (failuresLeft-- > 0) throw new Error('simulated handler failure');
    });
    await vi.waitFor(() => {
      expect(deliveries.length).toBeGreaterThanOrEqual(3);
      expect(deliveries.flatMap((d) => d.values).filter((v) => v === 'r4').length).toBeGreaterThanOrEqual(3);
    }, wait);
    expect(deliveries[1]!.first).toBe(deliveries[0]!.first);
    expect(deliveries[1]!.values).toEqual(deliveries[0]!.values);
    expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(30);
    await c.close();
    // Handled in the end, so committed: the group starts after r4.
    const again = new Collector();
    await consume({ groupId, topics: [topic], fromBeginning: true }, again.handler);
    await send(topic, [{ key: 'same', value: 'after' }]);
    await vi.waitFor(() => expect(again.values()).toContain('after'), wait);
    expect(again.values()).toEqual(['after']);
  });

  it('a batch whose handler keeps failing is not committed: the group gets it again after a restart', async () => {
    const topic = unique('nocommit');
    const groupId = unique('g');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    // First give the group a committed position (Kafka has none until a batch is committed).
    const before = new Collector();
    const ok = await consume({ groupId, topics: [topic], fromBeginning: true }, before.handler);
    await send(topic, [{ key: 'k', value: 'handled' }]);
    await vi.waitFor(() => expect(before.values()).toEqual(['handled']), wait);
    await ok.close();
    await send(
      topic,
      Array.from({ length: 3 }, (_, i) => ({ key: 'k', value: `v${i}` })),
    );
    let calls = 0;
    const failing = await consume({ groupId, topics: [topic] }, async () => {
      calls++;
      throw new Error('always fails');
    });
    await vi.waitFor(() => expect(calls).toBeGreaterThanOrEqual(2), wait);
    await failing.close();
    const got = new Collector();
    await consume({ groupId, topics: [topic], fromBeginning: true }, got.handler);
    await vi.waitFor(() => expect(got.values()).toEqual(['v0', 'v1', 'v2']), wait);
  });

  it('a taken batch is committed after its done: a done that rejects brings the batch again; Kafka hands out the next batch meanwhile', async () => {
    const topic = unique('taken');
    const groupId = unique('g');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    const deliveries: { values: string[]; settle: (err?: Error) => void }[] = [];
    const c = await consume({ groupId, topics: [topic], fromBeginning: true }, async (messages) => {
      let settle!: (err?: Error) => void;
      const done = new Promise<void>((resolve, reject) => {
        settle = (err) => (err ? reject(err) : resolve());
      });
      deliveries.push({ values: messages.map((m) => m.value!.toString()), settle });
      return { done };
    });
    await send(
      topic,
      [0, 1, 2].map((i) => ({ key: 'k', value: `a${i}` })),
    );
    await vi.waitFor(() => expect(deliveries).toHaveLength(1), wait);
    expect(deliveries[0]!.values).toEqual(['a0', 'a1', 'a2']);
    await send(topic, [{ key: 'k', value: 'b0' }]);
    if (bus.kind === 'kafka') {
      // Taken: the next batch comes while the first is not done.
      await vi.waitFor(() => expect(deliveries).toHaveLength(2), wait);
      expect(deliveries[1]!.values).toEqual(['b0']);
      deliveries[1]!.settle(); // done, but behind a batch that is not: not committed on its own
    } else {
      // The memory bus waits for done before the next batch.
      await new Promise((r) => setTimeout(r, 300));
      expect(deliveries).toHaveLength(1);
    }
    const before = deliveries.length;
    deliveries[0]!.settle(new Error('simulated: the batch could not be stored'));
    // Failed after it was taken: the partition is read again from that batch's first record.
    await vi.waitFor(() => {
      expect(deliveries.length).toBeGreaterThan(before);
      expect(deliveries[before]!.values[0]).toBe('a0');
    }, wait);
    await vi.waitFor(() => {
      for (const d of deliveries.slice(before)) d.settle();
      expect(deliveries.slice(before).flatMap((d) => d.values)).toEqual(['a0', 'a1', 'a2', 'b0']);
    }, wait);
    await c.close();
    // Everything was done in the end, so committed: the group starts after b0.
    const again = new Collector();
    await consume({ groupId, topics: [topic], fromBeginning: true }, again.handler);
    await send(topic, [{ key: 'k', value: 'after' }]);
    await vi.waitFor(() => expect(again.values()).toContain('after'), wait);
    expect(again.values()).toEqual(['after']);
  });

  it('a partition taken away while its batch is being retried goes to the new owner from the uncommitted record', async () => {
    const topic = unique('handover');
    const groupId = unique('g');
    await bus.ensureTopics([{ topic, partitions: 2 }]);
    let failures = 0;
    const ca = await consume({ groupId, topics: [topic], fromBeginning: true }, async () => {
      failures++;
      throw new Error('member a cannot handle anything');
    });
    const records = Array.from({ length: 20 }, (_, i) => ({ key: `198.51.100.${i}`, value: String(i) }));
    await send(topic, records);
    await vi.waitFor(() => expect(failures).toBeGreaterThanOrEqual(2), wait);
    const b = new Collector();
    const cb = await consume({ groupId, topics: [topic], fromBeginning: true }, b.handler);
    await vi.waitFor(() => {
      expect(cb.assignment()).toHaveLength(1);
      expect(ca.assignment()).toHaveLength(1);
    }, wait);
    const moved = cb.assignment()[0]!.partition;
    const expected = records.filter((r) => partitionForKey(r.key, 2) === moved).map((r) => r.value);
    expect(expected.length).toBeGreaterThan(0);
    await vi.waitFor(() => expect(b.values()).toEqual(expected), wait);
    // Once a leaves, b gets a's partition too, from its first record: nothing was committed there.
    await ca.close();
    await vi.waitFor(() => expect(b.values().sort()).toEqual(records.map((r) => r.value).sort()), wait);
  });

  it('fromBeginning: false starts at the end, true at the start, for a group without commits', async () => {
    const topic = unique('from');
    await bus.ensureTopics([{ topic, partitions: 2 }]);
    await send(topic, [
      { key: 'a', value: 'before-1' },
      { key: 'b', value: 'before-2' },
    ]);
    const latest = new Collector();
    const earliest = new Collector();
    await consume({ groupId: unique('g-latest'), topics: [topic], fromBeginning: false }, latest.handler);
    await consume({ groupId: unique('g-earliest'), topics: [topic], fromBeginning: true }, earliest.handler);
    await send(topic, [
      { key: 'a', value: 'after-1' },
      { key: 'b', value: 'after-2' },
    ]);
    await vi.waitFor(() => expect(earliest.messages).toHaveLength(4), wait);
    await vi.waitFor(() => expect(latest.messages).toHaveLength(2), wait);
    expect(latest.values().sort()).toEqual(['after-1', 'after-2']);
    expect(earliest.values().sort()).toEqual(['after-1', 'after-2', 'before-1', 'before-2']);
  });

  it('compacted topic: a fresh group reading from the beginning ends with the newest value per key', async () => {
    const topic = unique('compact');
    await bus.ensureTopics([{ topic, partitions: 2, compacted: true }]);
    const expected = new Map<string, string>();
    for (let round = 0; round < 4; round++) {
      const records = Array.from({ length: 10 }, (_, k) => ({
        key: `203.0.113.${k}`,
        value: `state-${round}-${k}`,
      }));
      for (const r of records) expected.set(r.key, r.value);
      await send(topic, records);
    }
    const got = new Collector();
    await consume({ groupId: unique('g'), topics: [topic], fromBeginning: true }, got.handler);
    const fold = () => new Map(got.messages.map((m) => [m.key!, m.value!.toString()]));
    await vi.waitFor(() => expect(fold()).toEqual(expected), wait);
    if (opts.exactCompaction) expect(got.messages).toHaveLength(expected.size);
    else expect(got.messages.length).toBeGreaterThanOrEqual(expected.size);
  });

  it('tombstones: a null value deletes the key of a compacted topic and is delivered as value null', async () => {
    const topic = unique('tomb');
    await bus.ensureTopics([{ topic, partitions: 2, compacted: true }]);
    await send(topic, [
      { key: '198.51.100.1', value: 'tempfail' },
      { key: '198.51.100.2', value: 'tempfail' },
    ]);
    await send(topic, [{ key: '198.51.100.1', value: null }]);
    const got = new Collector();
    await consume({ groupId: unique('g'), topics: [topic], fromBeginning: true }, got.handler);
    await vi.waitFor(
      () => expect(got.messages.some((m) => m.key === '198.51.100.1' && m.value === null)).toBe(true),
      wait,
    );
    await vi.waitFor(() => expect(got.messages.some((m) => m.key === '198.51.100.2')).toBe(true), wait);
    const state = new Map<string, string>();
    for (const m of got.messages) {
      if (m.value === null) state.delete(m.key!);
      else state.set(m.key!, m.value.toString());
    }
    expect(state).toEqual(new Map([['198.51.100.2', 'tempfail']]));
    if (opts.exactCompaction) expect(got.messages).toHaveLength(2);
  });

  it('a record just under the size limit is carried whole; one above it is refused with its size', async () => {
    const topic = unique('big');
    await bus.ensureTopics([{ topic, partitions: 1 }]);
    const p = await bus.producer();
    const big = 'b'.repeat(999_000);
    await expect(p.send(topic, [{ key: 'k', value: 'x'.repeat(1_000_001) }])).rejects.toThrow(
      /record 0 for topic .*1000002 bytes, above the 1000000/,
    );
    await p.send(topic, [
      { key: 'k', value: 'small' },
      { key: 'k', value: big },
    ]);
    await p.close();
    const got = new Collector();
    await consume({ groupId: unique('g'), topics: [topic], fromBeginning: true }, got.handler);
    await vi.waitFor(() => expect(got.messages).toHaveLength(2), wait);
    expect(got.messages[1]!.value!.length).toBe(999_000);
    expect(got.messages[1]!.value!.equals(Buffer.from(big))).toBe(true);
  });

  it('bad records are refused with an error naming the record; the producer keeps working', async () => {
    const topic = unique('bad');
    const compacted = unique('bad-compact');
    await bus.ensureTopics([
      { topic, partitions: 1 },
      { topic: compacted, partitions: 1, compacted: true },
    ]);
    const p = await bus.producer();
    await expect(p.send(topic, [{ key: null, value: null }])).rejects.toThrow(
      /record 0 .*tombstone needs a key/,
    );
    await expect(
      p.send(topic, [
        { key: 'k', value: 'ok' },
        { key: 'k', value: 42 as unknown as string },
      ]),
    ).rejects.toThrow(/record 1 for topic .*value must be/);
    await expect(p.send(compacted, [{ key: null, value: 'x' }])).rejects.toThrow(
      /compacted topic needs a key/,
    );
    await expect(p.send('bad topic name!', [{ key: 'k', value: 'x' }])).rejects.toThrow(/invalid topic name/);
    await p.send(topic, [{ key: 'k', value: 'fine' }]);
    await p.close();
    const got = new Collector();
    await consume({ groupId: unique('g'), topics: [topic], fromBeginning: true }, got.handler);
    await vi.waitFor(() => expect(got.values()).toEqual(['fine']), wait);
  });
}
