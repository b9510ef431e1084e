// The shipper against the real Kafka broker and the real Postfix of scripts/services.sh.
import { execFile } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postfixLines, seqOf } from '../../bench/ship/lines.js';
import type { Bus, Producer } from '../../src/bus/bus.js';
import { type Config, configSchema } from '../../src/config/config.js';
import type { Shipper } from '../../src/ship/shipper.js';
import { shipperFromConfig, shipProducer } from '../../src/ship/start.js';
import { loadServices } from '../services/services.js';
import { quiet, tmp } from './helpers.js';
import { Collector, kafkaBrokers, openBus, orderViolations, testTopic, waitUntil } from './kafka-helpers.js';

const run = promisify(execFile);

function config(dir: string, topic: string, ship: Record<string, unknown>): Config {
  return configSchema.parse({
    host: 'mx-test',
    data_dir: join(dir, 'var'),
    bus: { kind: 'kafka', kafka: { brokers: kafkaBrokers() }, topics: { events: topic } },
    ship: { poll_interval_ms: 100, rescan_interval_ms: 500, ...ship },
  });
}

let bus: Bus;
beforeAll(async () => {
  bus = await openBus();
});
afterAll(async () => {
  await bus?.close();
});

async function startShipper(cfg: Config): Promise<{ shipper: Shipper; producer: Producer }> {
  await bus.ensureTopics([{ topic: cfg.bus.topics.events, partitions: 4 }]);
  const producer = await shipProducer(bus, cfg);
  const shipper = shipperFromConfig(cfg, producer, quiet);
  await shipper.start();
  return { shipper, producer };
}

describe('ship -> Kafka', () => {
  it('200,000 lines appended while shipping: exactly 200,000 distinct ids arrive, in per-file order', async () => {
    const dir = tmp('int');
    const topic = testTopic('200k');
    const files = [join(dir, 'a.log'), join(dir, 'b.log')];
    for (const f of files) writeFileSync(f, '');
    const cfg = config(dir, topic, { files: [join(dir, '*.log')], start_at: 'beginning' });
    const { shipper, producer } = await startShipper(cfg);
    const collector = await Collector.start(bus, topic);
    const perFile = 100_000;
    const step = 2_000;
    for (let i = 0; i < perFile; i += step) {
      appendFileSync(files[0]!, postfixLines(i, i + step, 'mx-a'));
      appendFileSync(files[1]!, postfixLines(i, i + step, 'mx-b'));
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitUntil(() => collector.ids().size >= 2 * perFile, 150_000, '200,000 ids');
    await new Promise((r) => setTimeout(r, 2_000)); // anything extra would show up now
    await shipper.stop();
    await producer.close();
    await collector.close();

    const got = collector.received;
    expect(collector.ids().size).toBe(200_000);
    expect(got.length).toBe(200_000); // no crash, so no duplicate either
    expect(orderViolations(got)).toBe(0);
    for (const host of ['mx-a', 'mx-b']) {
      const seqs = new Set(got.filter((r) => r.event.host === host).map((r) => seqOf(r.event.raw)));
      expect(seqs.size).toBe(perFile);
    }
    // parsed at the edge, keyed by client IP
    expect(got.filter((r) => r.event.kind === 'unknown')).toHaveLength(0);
    expect(got.every((r) => r.key === r.event.client_ip)).toBe(true);
    expect(got.every((r) => r.event.id!.startsWith('mx-test:'))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('garbage bytes and a 1 MB line are shipped as unknown events; the shipper keeps running', async () => {
    const dir = tmp('int');
    const topic = testTopic('garbage');
    const log = join(dir, 'mail.log');
    writeFileSync(log, '');
    const cfg = config(dir, topic, { files: [log] });
    const { shipper, producer } = await startShipper(cfg);
    const collector = await Collector.start(bus, topic);
    const garbage = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80, 0x01, 0x1b, 0x5b, 0x41, 0x0a]);
    const big = Buffer.alloc(1024 * 1024, 0x41);
    appendFileSync(log, Buffer.concat([garbage, big, Buffer.from('\n')]));
    appendFileSync(log, postfixLines(7, 8));
    await waitUntil(() => collector.received.length >= 3, 60_000, '3 events');
    const [g, b, ok] = collector.received
      .slice()
      .sort((x, y) => Number(x.event.id!.split(':').pop()) - Number(y.event.id!.split(':').pop()));
    expect(g!.event.kind).toBe('unknown');
    expect(g!.event.raw).toContain('\uFFFD');
    expect(b!.event.kind).toBe('unknown');
    expect(b!.headers.truncated_bytes).toBe(String(big.length + 1));
    expect(b!.event.raw.length).toBeLessThan(200_000);
    expect(ok!.event.kind).not.toBe('unknown');
    expect(ok!.event.id).toMatch(new RegExp(`:${garbage.length + big.length + 1}$`));
    expect(shipper.stats().unknownEvents).toBe(2);
    // still running: a later line arrives too
    appendFileSync(log, postfixLines(8, 9));
    await waitUntil(() => collector.received.length >= 4, 30_000, 'a later line');
    await shipper.stop();
    await producer.close();
    await collector.close();
  });

  it('lines the real Postfix writes arrive parsed', async () => {
    const { postfix } = loadServices('postfix');
    const dir = tmp('int');
    const topic = testTopic('postfix');
    const cfg = config(dir, topic, { files: [postfix.maillog], start_at: 'end' });
    const { shipper, producer } = await startShipper(cfg);
    const collector = await Collector.start(bus, topic);
    const tag = Math.random().toString(36).slice(2, 8);
    const clients = [21, 22, 23].map((n) => `127.0.0.${n}`);
    for (const ip of clients) {
      await run('swaks', [
        '--server',
        postfix.smtp,
        '--local-interface',
        ip,
        '--from',
        `sender-${tag}@example.org`,
        '--to',
        `nosuch-${tag}@example.test`,
        '--quit-after',
        'RCPT',
      ]).catch(() => {}); // swaks exits non-zero on the 550, which is the point
    }
    const rejects = () =>
      collector.received.filter(
        (r) => r.event.kind === 'reject' && r.event.recipient === `nosuch-${tag}@example.test`,
      );
    await waitUntil(() => rejects().length === 3, 60_000, 'three Postfix rejects');
    for (const r of rejects()) {
      expect(r.event.mta).toBe('postfix');
      expect(r.event.reason).toBe('user_unknown');
      expect(r.event.reply_code).toBe(550);
      expect(clients).toContain(r.event.client_ip);
      expect(r.key).toBe(r.event.client_ip);
    }
    expect(new Set(rejects().map((r) => r.event.client_ip)).size).toBe(3);
    const connects = collector.received.filter(
      (r) => r.event.kind === 'connect' && clients.includes(r.event.client_ip!),
    );
    expect(connects.length).toBeGreaterThanOrEqual(3);
    await shipper.stop();
    await producer.close();
    await collector.close();
  });
});
