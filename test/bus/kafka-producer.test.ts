import { afterEach, describe, expect, it } from 'vitest';
import { KafkaProducer, type KafkaProducerSettings } from '../../src/bus/kafka-producer.js';
import type { OutMessage, ProduceTransport } from '../../src/bus/kafka-transport.js';
import { logger } from '../../src/log/logger.js';

// The linger/batching layer of the Kafka producer, over a fake transport (the real broker is in
// kafka.int.test.ts): what goes into which produce request, and who is told what.

interface Request {
  topics: Map<string, OutMessage[]>;
  ack: () => void;
  fail: (err: Error) => void;
}

class FakeTransport implements ProduceTransport {
  readonly requests: Request[] = [];
  closed = false;
  autoAck = true;
  send(topics: ReadonlyMap<string, OutMessage[]>): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = { topics: new Map([...topics].map(([t, m]) => [t, [...m]])), ack: resolve, fail: reject };
      this.requests.push(req);
      if (this.autoAck) setImmediate(resolve);
    });
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  values(i: number, topic = 't'): string[] {
    return (this.requests[i]?.topics.get(topic) ?? []).map((m) => String(m.value));
  }
}

const settings = (over: Partial<KafkaProducerSettings> = {}): KafkaProducerSettings => ({
  lingerMs: 10,
  maxBatchBytes: 1_000_000,
  maxBufferedBytes: 10_000_000,
  maxRecordBytes: 1_000_000,
  closeTimeoutMs: 1000,
  ...over,
});

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(cond()).toBe(true);
};

describe('kafka producer batching', () => {
  const producers: KafkaProducer[] = [];
  const make = (t: FakeTransport, over?: Partial<KafkaProducerSettings>, compacted = false) => {
    const p = new KafkaProducer(
      t,
      settings(over),
      () => compacted,
      logger('test'),
      () => {},
    );
    producers.push(p);
    return p;
  };
  afterEach(async () => {
    await Promise.all(producers.splice(0).map((p) => p.close()));
  });

  it('gathers the records of concurrent sends into one produce request, in call order', async () => {
    const t = new FakeTransport();
    const p = make(t);
    await Promise.all([
      p.send('t', [{ key: 'a', value: '1' }]),
      p.send('t', [
        { key: 'a', value: '2' },
        { key: 'b', value: '3' },
      ]),
      p.send('u', [{ key: 'c', value: 'x', headers: { h: 'v' } }]),
    ]);
    expect(t.requests).toHaveLength(1);
    expect(t.values(0)).toEqual(['1', '2', '3']);
    expect(t.requests[0]!.topics.get('u')).toEqual([{ key: 'c', value: 'x', headers: { h: 'v' } }]);
  });

  it('splits at maxBatchBytes and resolves a send only once every batch carrying its records is acknowledged', async () => {
    const t = new FakeTransport();
    t.autoAck = false;
    // Each record is 8 bytes (key 'k' + 'value-N'): two fit in 20.
    const p = make(t, { maxBatchBytes: 20 });
    let done = false;
    const sending = p
      .send(
        't',
        Array.from({ length: 5 }, (_, i) => ({ key: 'k', value: `value-${i}` })),
      )
      .then(() => (done = true));
    await until(() => t.requests.length === 1);
    // One batch in flight at a time: the rest waits for the first acknowledgement.
    expect(t.values(0)).toEqual(['value-0', 'value-1']);
    t.requests[0]!.ack();
    await until(() => t.requests.length === 2);
    expect(done).toBe(false);
    t.requests[1]!.ack();
    await until(() => t.requests.length === 3);
    expect(t.values(2)).toEqual(['value-4']);
    expect(done).toBe(false);
    t.requests[2]!.ack();
    await sending;
    expect(done).toBe(true);
  });

  it('a refused batch fails exactly the sends whose records it carried', async () => {
    const t = new FakeTransport();
    t.autoAck = false;
    const p = make(t, { lingerMs: 5 });
    const first = p.send('t', [{ key: 'a', value: 'in-first' }]);
    await until(() => t.requests.length === 1);
    const second = p.send('t', [{ key: 'a', value: 'in-second' }]);
    t.requests[0]!.fail(new Error('NOT_ENOUGH_REPLICAS'));
    await expect(first).rejects.toThrow(/Kafka produce of 1 records to t failed: NOT_ENOUGH_REPLICAS/);
    await until(() => t.requests.length === 2);
    t.requests[1]!.ack();
    await expect(second).resolves.toBeUndefined();
  });

  it('waits while maxBufferedBytes are unacknowledged, then lets senders in in order', async () => {
    const t = new FakeTransport();
    t.autoAck = false;
    // 16 bytes each (key 'k' + 15): one fits under 20 at a time.
    const p = make(t, { maxBufferedBytes: 20, lingerMs: 1 });
    const a = p.send('t', [{ key: 'k', value: 'x'.repeat(15) }]);
    const order: string[] = [];
    const b = p.send('t', [{ key: 'k', value: 'y'.repeat(15) }]).then(() => order.push('b'));
    const c = p.send('t', [{ key: 'k', value: 'z'.repeat(15) }]).then(() => order.push('c'));
    await until(() => t.requests.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(t.requests).toHaveLength(1);
    t.requests[0]!.ack();
    await a;
    await until(() => t.requests.length === 2);
    expect(t.values(1)).toEqual(['y'.repeat(15)]);
    await new Promise((r) => setTimeout(r, 20));
    expect(t.requests).toHaveLength(2);
    t.requests[1]!.ack();
    await until(() => t.requests.length === 3);
    expect(t.values(2)).toEqual(['z'.repeat(15)]);
    t.requests[2]!.ack();
    await Promise.all([b, c]);
    expect(order).toEqual(['b', 'c']);
  });

  it('close also flushes sends still waiting for room', async () => {
    const t = new FakeTransport();
    const p = make(t, { maxBufferedBytes: 20, lingerMs: 60_000 });
    const sends = ['x', 'y', 'z'].map((ch) => p.send('t', [{ key: 'k', value: ch.repeat(15) }]));
    await p.close();
    await Promise.all(sends);
    expect(t.requests.flatMap((_, i) => t.values(i))).toEqual(['x', 'y', 'z'].map((ch) => ch.repeat(15)));
    expect(t.closed).toBe(true);
  });

  it('refuses bad records before anything is batched', async () => {
    const t = new FakeTransport();
    const p = make(t, { maxRecordBytes: 10 }, true);
    await expect(p.send('t', [{ key: 'k', value: 'x'.repeat(20) }])).rejects.toThrow(/record 0 .*21 bytes/);
    await expect(p.send('t', [{ key: null, value: 'x' }])).rejects.toThrow(/compacted topic needs a key/);
    await expect(p.send('t', 'nope' as never)).rejects.toThrow(/records must be an array/);
    expect(t.requests).toHaveLength(0);
  });

  it('close sends what is pending, then closes the client; later sends are refused', async () => {
    const t = new FakeTransport();
    const p = make(t, { lingerMs: 60_000 });
    const pendingSend = p.send('t', [{ key: 'k', value: 'late' }]);
    await p.close();
    await pendingSend;
    expect(t.values(0)).toEqual(['late']);
    expect(t.closed).toBe(true);
    await expect(p.send('t', [{ key: 'k', value: 'x' }])).rejects.toThrow(/producer closed/);
  });

  it('close gives up after closeTimeoutMs and fails the senders still waiting', async () => {
    const t = new FakeTransport();
    t.autoAck = false;
    const p = make(t, { lingerMs: 1, closeTimeoutMs: 30, maxBatchBytes: 10 });
    const stuck = p.send('t', [
      { key: 'k', value: 'x'.repeat(8) },
      { key: 'k', value: 'y'.repeat(8) },
    ]);
    stuck.catch(() => {});
    await until(() => t.requests.length === 1);
    await p.close();
    await expect(stuck).rejects.toThrow(/producer closed before Kafka acknowledged/);
    expect(t.closed).toBe(true);
  });
});
