import { randomUUID } from 'node:crypto';
import type { Bus, BusMessage, Consumer } from '../../src/bus/bus.js';
import { openKafkaBus } from '../../src/bus/kafka.js';
import { configSchema } from '../../src/config/config.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { loadServices } from '../services/services.js';

export function kafkaBrokers(): string[] {
  return loadServices('kafka').kafka.brokers;
}

export function busConfig(brokers: string[]) {
  return configSchema.parse({
    bus: { kind: 'kafka', partitions: 4, kafka: { brokers, client_id: 'mizugiwa-ship-test' } },
  }).bus;
}

export async function openBus(brokers = kafkaBrokers()): Promise<Bus> {
  return openKafkaBus(busConfig(brokers));
}

export function testTopic(name: string): string {
  return `ship-test.${name}.${randomUUID().slice(0, 8)}`;
}

export interface Received {
  partition: number;
  offset: bigint;
  key: string | null;
  event: MailEvent;
  headers: Record<string, string>;
}

/** Reads a topic from its beginning into `received`, in partition order as Kafka gives it. */
export class Collector {
  readonly received: Received[] = [];
  private consumer: Consumer | null = null;

  static async start(bus: Bus, topic: string): Promise<Collector> {
    const c = new Collector();
    c.consumer = await bus.consumer({
      groupId: `ship-test-${randomUUID()}`,
      topics: [topic],
      fromBeginning: true,
    });
    await c.consumer.run(async (messages: BusMessage[]) => {
      for (const m of messages) {
        c.received.push({
          partition: m.partition,
          offset: BigInt(m.offset),
          key: m.key,
          event: JSON.parse(m.value!.toString('utf8')) as MailEvent,
          headers: m.headers,
        });
      }
    });
    return c;
  }

  async close(): Promise<void> {
    await this.consumer?.close();
  }

  ids(): Set<string> {
    return new Set(this.received.map((r) => r.event.id!));
  }
}

/**
 * Per-file order: within each partition, the lines of one file (file id) must come with rising
 * byte offsets; a duplicate (an offset seen again after a crash) may repeat an earlier one.
 * Returns the number of violations.
 */
export function orderViolations(received: Received[]): number {
  const last = new Map<string, number>();
  const seen = new Set<string>();
  let bad = 0;
  for (const r of received) {
    const id = r.event.id!;
    const i = id.lastIndexOf(':');
    const file = `${r.partition}/${id.slice(0, i)}`;
    const offset = Number(id.slice(i + 1));
    if (seen.has(id)) continue;
    seen.add(id);
    const prev = last.get(file);
    if (prev !== undefined && offset <= prev) bad++;
    last.set(file, offset);
  }
  return bad;
}

export async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
