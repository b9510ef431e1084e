import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createBus } from '../../src/bus/create.js';
import { kafkaLogCreator } from '../../src/bus/kafka-log.js';
import kafkajs from '../../src/bus/kafkajs.js';
import { MemoryBus } from '../../src/bus/memory.js';
import { configSchema } from '../../src/config/config.js';

describe('createBus', () => {
  it('gives the memory bus for kind memory, with bus.partitions as the default partition count', async () => {
    const cfg = configSchema.parse({ bus: { kind: 'memory', partitions: 3 } }).bus;
    const bus = await createBus(cfg);
    try {
      expect(bus.kind).toBe('memory');
      expect(bus).toBeInstanceOf(MemoryBus);
      await bus.ensureTopics([{ topic: 'mail.events' }]);
      expect((bus as MemoryBus).topic('mail.events').logs).toHaveLength(3);
    } finally {
      await bus.close();
    }
  });

  it('refuses bad memory options with the option named', async () => {
    const cfg = configSchema.parse({}).bus;
    await expect(createBus(cfg, { memory: { maxRetainedRecords: 0 } })).rejects.toThrow(/maxRetainedRecords/);
  });
});

describe('kafkajs log lines', () => {
  it('go to pino with their level, message and fields, and the kafkajs namespace', () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    });
    const log = pino({ level: 'info' }, sink);
    const entry = kafkaLogCreator(log)(kafkajs.logLevel.WARN);
    entry({
      namespace: 'Runner',
      level: kafkajs.logLevel.WARN,
      label: 'WARN',
      log: {
        message: 'The group is rebalancing, re-joining',
        timestamp: 'x',
        logger: 'kafkajs',
        groupId: 'g1',
      } as never,
    });
    entry({
      namespace: 'Connection',
      level: kafkajs.logLevel.ERROR,
      label: 'ERROR',
      log: { message: 'Connection error', timestamp: 'x', logger: 'kafkajs', broker: '127.0.0.1:1' } as never,
    });
    // A broker's routine error answer (kafkajs rejoins by itself) comes through at info.
    entry({
      namespace: 'Connection',
      level: kafkajs.logLevel.ERROR,
      label: 'ERROR',
      log: {
        message: 'Response Heartbeat(key: 12, version: 3)',
        timestamp: 'x',
        logger: 'kafkajs',
        error: 'The group is rebalancing, so a rejoin is needed',
      } as never,
    });
    entry({
      namespace: 'Connection',
      level: kafkajs.logLevel.ERROR,
      label: 'ERROR',
      log: {
        message: 'Response Produce(key: 0, version: 7)',
        timestamp: 'x',
        logger: 'kafkajs',
        error: 'The request included a message larger than the max message size the server will accept',
      } as never,
    });
    expect(lines.slice(2)).toEqual([
      expect.objectContaining({
        level: 30,
        msg: 'Response Heartbeat(key: 12, version: 3)',
        kafkajs: 'Connection',
      }),
      expect.objectContaining({
        level: 50,
        msg: 'Response Produce(key: 0, version: 7)',
        kafkajs: 'Connection',
      }),
    ]);
    expect(lines.slice(0, 2)).toEqual([
      expect.objectContaining({
        level: 40,
        msg: 'The group is rebalancing, re-joining',
        kafkajs: 'Runner',
        groupId: 'g1',
      }),
      expect.objectContaining({
        level: 50,
        msg: 'Connection error',
        kafkajs: 'Connection',
        broker: '127.0.0.1:1',
      }),
    ]);
    expect(lines[0]).not.toHaveProperty('timestamp');
  });
});
