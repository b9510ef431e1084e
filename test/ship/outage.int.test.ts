// Kafka away for 30 s while lines keep coming: `mizugiwa ship` (the compiled CLI) pauses reading
// at its in-flight cap, keeps its memory bounded, and delivers everything once Kafka is back.
// The broker stopped here is a private one (test/ship/private-kafka.ts), so other components'
// tests on the shared broker of scripts/services.sh are not disturbed.
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { postfixLines, seqOf } from '../../bench/ship/lines.js';
import type { Bus } from '../../src/bus/bus.js';
import { repoRoot } from '../services/services.js';
import { tmp } from './helpers.js';
import { Collector, openBus, testTopic, waitUntil } from './kafka-helpers.js';
import { PrivateKafka } from './private-kafka.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const CAP_BYTES = 8 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
const OUTAGE_MS = 30_000;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function scrape(port: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      const m = /^(mizugiwa_ship_[a-z_]+)(?:\{[^}]*\})? (\S+)$/.exec(line);
      if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
    }
  } catch {
    // not up yet
  }
  return out;
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

let kafka: PrivateKafka | null = null;
let child: ChildProcess | null = null;
let bus: Bus | null = null;
afterAll(async () => {
  child?.kill('SIGKILL');
  await bus?.close().catch(() => {});
  await kafka?.stop('SIGKILL');
});

describe('mizugiwa ship: Kafka down for 30 s', () => {
  it('pauses at the in-flight cap, stays bounded, and delivers every line after Kafka returns', async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build first`);
    const dir = tmp('outage');
    kafka = await PrivateKafka.create(join(dir, 'kafka'));
    await kafka.start();
    const topic = testTopic('outage');
    bus = await openBus(kafka.brokers);
    await bus.ensureTopics([{ topic, partitions: 4 }]);

    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const metricsPort = await freePort();
    const cfgFile = join(dir, 'mizugiwa.yaml');
    writeFileSync(
      cfgFile,
      [
        'host: mx-outage',
        `data_dir: ${join(dir, 'var')}`,
        `metrics: { listen: "127.0.0.1:${metricsPort}" }`,
        'bus:',
        '  kind: kafka',
        `  kafka: { brokers: [${kafka.brokers.join(', ')}] }`,
        `  topics: { events: ${topic} }`,
        'ship:',
        `  files: [${log}]`,
        `  read_chunk_bytes: ${CHUNK_BYTES}`,
        `  max_in_flight_bytes: ${CAP_BYTES}`,
        '  max_in_flight_events: 100000',
        '',
      ].join('\n'),
    );
    child = spawn(process.execPath, [CLI, 'ship', '--config', cfgFile], {
      stdio: ['ignore', 'ignore', openSync(join(dir, 'ship.log'), 'a')],
    });
    await waitUntil(() => existsSync(join(dir, 'var', 'ship', 'checkpoint.json')), 30_000, 'the shipper');
    const pid = child.pid!;

    let seq = 0;
    const appender = setInterval(() => {
      appendFileSync(log, postfixLines(seq, seq + 30, 'mx-outage'));
      seq += 30;
    }, 10);
    let peakInFlight = 0;
    let peakRss = 0;
    let phase = 'before';
    const peaks: Record<string, number> = {};
    const rssPeaks: Record<string, number> = {};
    const sampler = setInterval(async () => {
      const m = await scrape(metricsPort);
      const b = m.get('mizugiwa_ship_in_flight_bytes') ?? 0;
      peakInFlight = Math.max(peakInFlight, b);
      peaks[phase] = Math.max(peaks[phase] ?? 0, b);
      const rss = rssMb(pid);
      peakRss = Math.max(peakRss, rss);
      rssPeaks[phase] = Math.max(rssPeaks[phase] ?? 0, rss);
    }, 200);
    try {
      await new Promise((r) => setTimeout(r, 5_000));
      phase = 'outage';
      const downAt = Date.now();
      await kafka.stop();
      const readAtDown = (await scrape(metricsPort)).get('mizugiwa_ship_lines_read_total') ?? 0;
      await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
      const during = await scrape(metricsPort);
      phase = 'after';
      await kafka.start();
      await new Promise((r) => setTimeout(r, 5_000));
      clearInterval(appender);
      const total = seq;

      await bus.close();
      bus = await openBus(kafka.brokers);
      const collector = await Collector.start(bus, topic);
      const seen = () => new Set(collector.received.map((r) => seqOf(r.event.raw)));
      await waitUntil(() => seen().size >= total, 180_000, `all ${total} lines`);
      await collector.close();
      const have = seen();
      const missing = [...Array(total).keys()].filter((n) => !have.has(n));
      // eslint-disable-next-line no-console
      console.log(
        `outage test: ${total} lines, ${collector.received.length} records; in-flight bytes peak ` +
          `${(peakInFlight / 2 ** 20).toFixed(1)} MiB (cap ${CAP_BYTES / 2 ** 20} MiB; before ${((peaks.before ?? 0) / 2 ** 20).toFixed(1)}, ` +
          `outage ${((peaks.outage ?? 0) / 2 ** 20).toFixed(1)}, after ${((peaks.after ?? 0) / 2 ** 20).toFixed(1)}); ` +
          `shipper RSS peak ${peakRss.toFixed(0)} MB (before ${rssPeaks.before?.toFixed(0)}, outage ` +
          `${rssPeaks.outage?.toFixed(0)}, catch-up ${rssPeaks.after?.toFixed(0)}); lines read when Kafka went down ${readAtDown}, ` +
          `30 s later ${during.get('mizugiwa_ship_lines_read_total')}, bytes behind then ${during.get('mizugiwa_ship_bytes_behind')}`,
      );
      expect(missing).toEqual([]);
      // Reading paused: the cap was reached, not passed by more than the lines of one read chunk
      // (each line counts as its raw bytes plus its encoded event, about 5x its bytes in the file).
      expect(peaks.outage ?? 0).toBeGreaterThan(CAP_BYTES / 2);
      expect(peakInFlight).toBeLessThanOrEqual(CAP_BYTES + 8 * CHUNK_BYTES);
      expect(during.get('mizugiwa_ship_bytes_behind') ?? 0).toBeGreaterThan(0);
      // The shipper kept running through it and stops cleanly.
      child.kill('SIGTERM');
      expect(await new Promise((res) => child!.once('exit', res))).toBe(0);
      child = null;
      clearInterval(sampler);
      await kafka.stop();
      kafka = null;
      rmSync(dir, { recursive: true, force: true }); // kept when a check fails, for a look
    } finally {
      clearInterval(appender);
      clearInterval(sampler);
    }
  }, 400_000);
});
