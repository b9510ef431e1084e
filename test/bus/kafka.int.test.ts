import { describe, expect, it } from 'vitest';
import { createBus } from '../../src/bus/create.js';
import type { KafkaBusOptions } from '../../src/bus/kafka.js';
import kafkajs from '../../src/bus/kafkajs.js';
import { configSchema } from '../../src/config/config.js';
import { registry } from '../../src/metrics/registry.js';
import { Collector, defineBusContract, unique } from './contract.js';
import { kafkaBusConfig } from './kafka-config.js';

// A short heartbeat so an idle member notices a rebalance within a second or two.
const fast: KafkaBusOptions = { heartbeatIntervalMs: 500, sessionTimeoutMs: 10_000, maxWaitTimeMs: 500 };

describe('kafka bus: contract (real broker)', () => {
  defineBusContract(() => createBus(kafkaBusConfig(), { kafka: fast }), {
    exactCompaction: false,
    timeoutMs: 60_000,
  });
});

describe('kafka bus with the @platformatic/kafka producer: contract (real broker)', () => {
  defineBusContract(
    () => createBus(kafkaBusConfig(), { kafka: { ...fast, producerClient: 'platformatic' } }),
    {
      exactCompaction: false,
      timeoutMs: 60_000,
    },
  );
});

describe('kafka bus with the producer in a worker thread: contract (real broker)', () => {
  defineBusContract(
    async () => {
      const bus = await createBus(kafkaBusConfig(), { kafka: { ...fast, producerClient: 'platformatic' } });
      const producer = bus.producer.bind(bus);
      bus.producer = (opts = {}) => producer({ ...opts, thread: true });
      return bus;
    },
    { exactCompaction: false, timeoutMs: 60_000 },
  );
});

describe('kafka bus: topics', () => {
  it('ensureTopics creates only what is missing, with its settings, and leaves existing topics as they are', async () => {
    const bus = await createBus(kafkaBusConfig(), { kafka: fast });
    const cfg = kafkaBusConfig();
    const admin = new kafkajs.Kafka({
      brokers: cfg.kafka.brokers,
      clientId: 'topics-test',
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const old = unique('exists');
      const fresh = unique('fresh');
      await bus.ensureTopics([{ topic: old, partitions: 1 }]);
      // Asked again with other settings, plus a new one: the old keeps its single partition.
      await bus.ensureTopics([
        { topic: old, partitions: 3 },
        { topic: fresh, partitions: 3, compacted: true },
      ]);
      const { topics } = await admin.fetchTopicMetadata({ topics: [old, fresh] });
      const partitions = Object.fromEntries(topics.map((t) => [t.name, t.partitions.length]));
      expect(partitions).toEqual({ [old]: 1, [fresh]: 3 });
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          { type: kafkajs.ConfigResourceTypes.TOPIC, name: fresh, configNames: ['cleanup.policy'] },
        ],
      });
      expect(described.resources[0]!.configEntries[0]!.configValue).toBe('compact');
    } finally {
      await admin.disconnect();
      await bus.close();
    }
  });
});

describe('kafka bus: taken batches', () => {
  it('a batch taken before an earlier one failed does not commit past it, even done after the redelivery began', async () => {
    const bus = await createBus(kafkaBusConfig(), { kafka: fast });
    try {
      const topic = unique('epoch');
      const groupId = unique('g');
      await bus.ensureTopics([{ topic, partitions: 1 }]);
      const send = async (values: string[]) => {
        const p = await bus.producer({ lingerMs: 2 });
        await p.send(
          topic,
          values.map((value) => ({ key: 'k', value })),
        );
        await p.close();
      };
      const taken: { first: string; settle: (err?: Error) => void }[] = [];
      const c = await bus.consumer({
        groupId,
        topics: [topic],
        fromBeginning: true,
        retry: { initialMs: 50 },
      });
      await c.run(async (messages) => {
        let settle!: (err?: Error) => void;
        const done = new Promise<void>((resolve, reject) => {
          settle = (err) => (err ? reject(err) : resolve());
        });
        taken.push({ first: messages[0]!.value!.toString(), settle });
        return { done };
      });
      await send(['a0', 'a1']);
      await expect.poll(() => taken.length, { timeout: 60_000 }).toBe(1);
      await send(['b0']);
      await expect.poll(() => taken.length, { timeout: 60_000 }).toBe(2);
      taken[0]!.settle(new Error('simulated: not stored'));
      // The partition is read again from a0; only then is b0's batch done.
      await expect.poll(() => taken.length, { timeout: 60_000 }).toBe(3);
      expect(taken[2]!.first).toBe('a0');
      taken[1]!.settle();
      await new Promise((r) => setTimeout(r, 500));
      for (const t of taken.slice(2)) t.settle(new Error('simulated: stopping'));
      await c.close();
      // Nothing was committed past a0: the group starts there again.
      const again = new Collector();
      await (await bus.consumer({ groupId, topics: [topic], fromBeginning: true })).run(again.handler);
      await expect.poll(() => again.values(), { timeout: 60_000 }).toEqual(['a0', 'a1', 'b0']);
    } finally {
      await bus.close();
    }
  });
});

describe('kafka bus: producer', () => {
  it('one send larger than a batch is split over several produce requests and resolves after all', async () => {
    const bus = await createBus(kafkaBusConfig(), { kafka: fast });
    try {
      const topic = unique('split-send');
      await bus.ensureTopics([{ topic, partitions: 2 }]);
      const p = await bus.producer({ lingerMs: 2, maxBatchBytes: 10_000, compression: 'gzip' });
      const value = 'x'.repeat(400);
      await p.send(
        topic,
        Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: `${i}:${value}` })),
      );
      await p.close();
      const got = new Collector();
      const c = await bus.consumer({ groupId: unique('g'), topics: [topic], fromBeginning: true });
      await c.run(got.handler);
      await expect.poll(() => got.messages.length, { timeout: 60_000 }).toBe(300);
      expect(new Set(got.values().map((v) => Number(v.split(':')[0]))).size).toBe(300);
    } finally {
      await bus.close();
    }
  });

  it('refuses a record above the record size limit without failing the records of other senders', async () => {
    const bus = await createBus(kafkaBusConfig(), { kafka: { ...fast, maxRecordBytes: 1000 } });
    try {
      const topic = unique('big');
      await bus.ensureTopics([{ topic, partitions: 1 }]);
      const p = await bus.producer({ lingerMs: 20 });
      const ok = p.send(topic, [{ key: 'a', value: 'small' }]);
      await expect(p.send(topic, [{ key: 'b', value: 'y'.repeat(2000) }])).rejects.toThrow(
        /record 0 .*2001 bytes/,
      );
      await ok;
      await p.close();
    } finally {
      await bus.close();
    }
  });

  it('refuses compressions its kafkajs consumers could not read back', async () => {
    const bus = await createBus(kafkaBusConfig(), { kafka: fast });
    try {
      await expect(bus.producer({ compression: 'snappy' })).rejects.toThrow(/snappy.*use none or gzip/);
    } finally {
      await bus.close();
    }
  });

  it('counts produced and consumed records and sets the consumer lag', async () => {
    const bus = await createBus(kafkaBusConfig(), { kafka: fast });
    try {
      const topic = unique('metrics');
      const groupId = unique('g');
      await bus.ensureTopics([{ topic, partitions: 1 }]);
      const p = await bus.producer();
      await p.send(
        topic,
        Array.from({ length: 7 }, (_, i) => ({ key: 'k', value: String(i) })),
      );
      await p.close();
      const got = new Collector();
      await (await bus.consumer({ groupId, topics: [topic], fromBeginning: true })).run(got.handler);
      await expect.poll(() => got.messages.length, { timeout: 60_000 }).toBe(7);
      await expect
        .poll(() => registry.metrics(), { timeout: 10_000 })
        .toContain(`mizugiwa_bus_records_consumed_total{bus="kafka",topic="${topic}",group="${groupId}"} 7`);
      const text = await registry.metrics();
      expect(text).toContain(`mizugiwa_bus_records_produced_total{bus="kafka",topic="${topic}"} 7`);
      expect(text).toContain(
        `mizugiwa_bus_consumer_lag{bus="kafka",topic="${topic}",partition="0",group="${groupId}"} 0`,
      );
    } finally {
      await bus.close();
    }
  });

  it('an unreachable broker fails createBus with the brokers named', async () => {
    const cfg = configSchema.parse({
      bus: { kind: 'kafka', kafka: { brokers: ['127.0.0.1:1'], connection_timeout_ms: 200 } },
    }).bus;
    await expect(createBus(cfg, { kafka: { retries: 1 } })).rejects.toThrow(
      /cannot reach Kafka at 127\.0\.0\.1:1/,
    );
  });
});
