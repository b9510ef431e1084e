import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BusMessage } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory.js';
import { registry } from '../../src/metrics/registry.js';
import { Collector, defineBusContract, unique } from './contract.js';

describe('memory bus: contract', () => {
  defineBusContract(async () => new MemoryBus({ partitions: 4 }), { exactCompaction: true, timeoutMs: 5000 });
});

/** A promise with its resolve, to hold a handler until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

/** True if `p` is still pending after the event loop has turned a few times. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return !settled;
}

const records = (n: number, prefix = 'r') =>
  Array.from({ length: n }, (_, i) => ({ key: `k${i % 5}`, value: `${prefix}${i}` }));

describe('memory bus: memory bounds and backpressure', () => {
  const buses: MemoryBus[] = [];
  const open = (opts: ConstructorParameters<typeof MemoryBus>[0]) => {
    const b = new MemoryBus(opts);
    buses.push(b);
    return b;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
  });

  it('drops records once every group that subscribed has committed them', async () => {
    const bus = open({ partitions: 2 });
    const topic = unique('drop');
    const a = new Collector();
    const hold = gate();
    const b = new Collector();
    await (await bus.consumer({ groupId: 'a', topics: [topic] })).run(a.handler);
    await (await bus.consumer({ groupId: 'b', topics: [topic] })).run(async (m, ctx) => {
      await hold.promise;
      await b.handler(m, ctx);
    });
    const p = await bus.producer();
    await p.send(topic, records(40));
    await vi.waitFor(() => expect(a.messages).toHaveLength(40));
    expect(bus.topic(topic).retained).toBe(40);
    hold.open();
    await vi.waitFor(() => expect(b.messages).toHaveLength(40));
    await vi.waitFor(() => expect(bus.topic(topic).retained).toBe(0));
  });

  it('send waits while the topic holds its cap of uncommitted records, and goes on once a group commits', async () => {
    const bus = open({ partitions: 1, maxRetainedRecords: 10, maxBatchRecords: 4 });
    const topic = unique('cap');
    const hold = gate();
    const got = new Collector();
    await (await bus.consumer({ groupId: 'slow', topics: [topic] })).run(async (m, ctx) => {
      await hold.promise;
      await got.handler(m, ctx);
    });
    const p = await bus.producer();
    await p.send(topic, records(10));
    const blocked = p.send(topic, records(3, 'late'));
    const behind = p.send(topic, [{ key: 'x', value: 'last' }]);
    expect(await pending(blocked)).toBe(true);
    expect(await pending(behind)).toBe(true);
    expect(bus.topic(topic).retained).toBe(10);
    hold.open();
    await blocked;
    await behind;
    await vi.waitFor(() => expect(got.messages).toHaveLength(14));
    // Order is kept across the wait: the queued sends were appended in the order they were made.
    expect(got.values().slice(10)).toEqual(['late0', 'late1', 'late2', 'last']);
  });

  it('a topic nobody consumes fills to its cap; closing the bus fails the waiting send instead of hanging', async () => {
    const bus = open({ partitions: 1, maxRetainedRecords: 5 });
    const topic = unique('orphan');
    const p = await bus.producer();
    await p.send(topic, records(5));
    const blocked = p.send(topic, records(1));
    expect(await pending(blocked)).toBe(true);
    await bus.close();
    await expect(blocked).rejects.toThrow(/memory bus closed/);
  });

  it('retentionMs frees a topic nobody consumes', async () => {
    const bus = open({ partitions: 1, maxRetainedRecords: 5 });
    const topic = unique('retention');
    await bus.ensureTopics([{ topic, retentionMs: 50 }]);
    const p = await bus.producer();
    await p.send(topic, records(5));
    const started = Date.now();
    await p.send(topic, records(2, 'new'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
    expect(bus.topic(topic).retained).toBe(2);
  });

  it('tombstones leave a compacted topic after deleteRetentionMs', async () => {
    const bus = open({ partitions: 1, deleteRetentionMs: 20 });
    const topic = unique('tomb');
    await bus.ensureTopics([{ topic, compacted: true }]);
    const p = await bus.producer();
    await p.send(topic, [
      { key: 'gone', value: 'x' },
      { key: 'kept', value: 'y' },
    ]);
    await p.send(topic, [{ key: 'gone', value: null }]);
    expect(bus.topic(topic).retained).toBe(2);
    await new Promise((r) => setTimeout(r, 30));
    await p.send(topic, [{ key: 'other', value: 'z' }]);
    expect(bus.topic(topic).retained).toBe(2);
    const got = new Collector();
    await (await bus.consumer({ groupId: 'fresh', topics: [topic], fromBeginning: true })).run(got.handler);
    await vi.waitFor(() => expect(got.messages.map((m) => m.key).sort()).toEqual(['kept', 'other']));
  });
});

describe('memory bus: groups', () => {
  let bus: MemoryBus;
  afterEach(async () => {
    await bus.close();
  });

  it('rebalances on leave: the remaining member takes every partition and continues where the group was', async () => {
    bus = new MemoryBus({ partitions: 4 });
    const topic = unique('leave');
    const a = new Collector();
    const b = new Collector();
    const ca = await bus.consumer({ groupId: 'g', topics: [topic] });
    const cb = await bus.consumer({ groupId: 'g', topics: [topic] });
    await ca.run(a.handler);
    await cb.run(b.handler);
    expect(ca.assignment()).toHaveLength(2);
    expect(cb.assignment()).toHaveLength(2);
    const p = await bus.producer();
    await p.send(topic, records(40, 'one'));
    await vi.waitFor(() => expect(a.messages.length + b.messages.length).toBe(40));
    await cb.close();
    expect(cb.assignment()).toEqual([]);
    expect(
      ca
        .assignment()
        .map((tp) => tp.partition)
        .sort(),
    ).toEqual([0, 1, 2, 3]);
    await p.send(topic, records(40, 'two'));
    await vi.waitFor(() => expect(a.values().filter((v) => v.startsWith('two'))).toHaveLength(40));
    expect(a.messages.length + b.messages.length).toBe(80);
  });

  it("calls a member's handler for one batch at a time unless partitionsConsumedConcurrently allows more", async () => {
    bus = new MemoryBus({ partitions: 4, maxBatchRecords: 2 });
    const topic = unique('conc');
    const peak = async (concurrency: number | undefined) => {
      let active = 0;
      let max = 0;
      let seen = 0;
      const c = await bus.consumer({
        groupId: unique('g'),
        topics: [topic],
        partitionsConsumedConcurrently: concurrency,
      });
      await c.run(async (m) => {
        active++;
        max = Math.max(max, active);
        await new Promise((r) => setTimeout(r, 2));
        seen += m.length;
        active--;
      });
      // Records consumed by every known group are gone: each round sends its own.
      await (await bus.producer()).send(topic, records(40));
      await vi.waitFor(() => expect(seen).toBe(40));
      await c.close();
      return max;
    };
    expect(await peak(undefined)).toBe(1);
    expect(await peak(4)).toBeGreaterThan(1);
  });

  it('close waits for the batch in flight and commits it', async () => {
    bus = new MemoryBus({ partitions: 1 });
    const topic = unique('inflight');
    const hold = gate();
    let entered = false;
    let finished = false;
    const c = await bus.consumer({ groupId: 'g', topics: [topic] });
    await c.run(async () => {
      entered = true;
      await hold.promise;
      finished = true;
    });
    await (await bus.producer()).send(topic, records(3));
    await vi.waitFor(() => expect(entered).toBe(true));
    const closing = c.close();
    expect(await pending(closing)).toBe(true);
    hold.open();
    await closing;
    expect(finished).toBe(true);
    const again = new Collector();
    await (await bus.consumer({ groupId: 'g', topics: [topic], fromBeginning: true })).run(again.handler);
    await (await bus.producer()).send(topic, [{ key: 'k', value: 'next' }]);
    await vi.waitFor(() => expect(again.values()).toEqual(['next']));
  });

  it('whatever handlers throw, every record is handled exactly once per successful batch, in order per partition', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), fc.boolean()), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
        async (sends, failures) => {
          bus = new MemoryBus({ partitions: 3, maxBatchRecords: 4 });
          const topic = unique('prop');
          let call = 0;
          const handled: BusMessage[] = [];
          const c = await bus.consumer({
            groupId: 'g',
            topics: [topic],
            fromBeginning: true,
            retry: { initialMs: 1, maxMs: 2 },
          });
          await c.run(async (m) => {
            if (failures[call++ % failures.length] && call < 40) throw new Error('flaky');
            handled.push(...m);
          });
          const p = await bus.producer();
          let i = 0;
          for (const [key, split] of sends) {
            const r = { key, value: String(i++) };
            if (split) await p.send(topic, [r]);
            else void p.send(topic, [r]);
          }
          await vi.waitFor(() => expect(handled).toHaveLength(sends.length), { timeout: 5000, interval: 5 });
          expect(handled.map((m) => Number(m.value!.toString())).sort((x, y) => x - y)).toEqual(
            sends.map((_, j) => j),
          );
          for (const key of new Set(sends.map(([k]) => k))) {
            const mine = handled.filter((m) => m.key === key).map((m) => Number(m.value!.toString()));
            expect(mine).toEqual([...mine].sort((x, y) => x - y));
          }
          await bus.close();
        },
      ),
      { numRuns: 40 },
    );
    bus = new MemoryBus();
  });
});

describe('memory bus: metrics', () => {
  it('counts produced and consumed records and reports lag per group and partition', async () => {
    const bus = new MemoryBus({ partitions: 2 });
    try {
      const topic = unique('metrics');
      const hold = gate();
      const c = await bus.consumer({ groupId: 'metrics-g', topics: [topic] });
      await c.run(async () => {
        await hold.promise;
      });
      await (await bus.producer()).send(topic, records(10));
      let text = await registry.metrics();
      expect(text).toContain(`mizugiwa_bus_records_produced_total{bus="memory",topic="${topic}"} 10`);
      const lag = [
        ...text.matchAll(new RegExp(`mizugiwa_bus_consumer_lag\\{[^}]*topic="${topic}"[^}]*\\} (\\d+)`, 'g')),
      ];
      expect(lag.reduce((s, m) => s + Number(m[1]), 0)).toBe(10);
      hold.open();
      await vi.waitFor(async () => {
        text = await registry.metrics();
        expect(text).toContain(
          `mizugiwa_bus_records_consumed_total{bus="memory",topic="${topic}",group="metrics-g"} 10`,
        );
      });
    } finally {
      await bus.close();
    }
  });
});
