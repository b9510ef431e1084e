// Crash safety of `mizugiwa ship` (the compiled CLI, as deployed): kill -9 at random moments
// while lines keep being appended and the file is rotated both ways (rename-and-create and
// copytruncate, logrotate style with numbered rotations); after a final restart every line must
// have arrived at least once. Duplicates are counted and reported.
// Needs `npm run build` (dist/) and Kafka from scripts/services.sh. Seed: SHIP_CRASH_SEED.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postfixLines, rng, seqOf } from '../../bench/ship/lines.js';
import type { Bus } from '../../src/bus/bus.js';
import { repoRoot } from '../services/services.js';
import { tmp } from './helpers.js';
import { Collector, kafkaBrokers, openBus, testTopic, waitUntil } from './kafka-helpers.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const KILLS = 10;
const IN_FLIGHT_EVENTS = 2000;
const CHECKPOINT_MS = 250;
const CHUNK_BYTES = 64 * 1024;

let bus: Bus;
beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build first`);
  bus = await openBus();
});
afterAll(async () => {
  await bus?.close();
});

function shiftRotations(log: string): void {
  const n = readdirSync(join(log, '..'))
    .map((f) => /^maillog\.(\d+)$/.exec(f)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number)
    .sort((a, b) => b - a);
  for (const i of n) renameSync(`${log}.${i}`, `${log}.${i + 1}`);
}

describe('mizugiwa ship: kill -9 at random moments, rotations both ways', () => {
  it('every line arrives at least once; duplicates are bounded by what was unacknowledged', async () => {
    const seed = Number(process.env.SHIP_CRASH_SEED ?? Date.now() % 1_000_000);
    const rand = rng(seed);
    const dir = tmp('crash');
    const log = join(dir, 'maillog');
    const topic = testTopic('crash');
    writeFileSync(log, '');
    const cfgFile = join(dir, 'mizugiwa.yaml');
    writeFileSync(
      cfgFile,
      [
        'host: mx-crash',
        `data_dir: ${join(dir, 'var')}`,
        'log: { level: info }',
        'bus:',
        '  kind: kafka',
        `  kafka: { brokers: [${kafkaBrokers().join(', ')}] }`,
        `  topics: { events: ${topic} }`,
        'ship:',
        `  files: [${log}]`,
        '  start_at: beginning',
        '  poll_interval_ms: 100',
        '  rescan_interval_ms: 500',
        '  rotate_wait_ms: 2000',
        `  checkpoint_interval_ms: ${CHECKPOINT_MS}`,
        `  read_chunk_bytes: ${CHUNK_BYTES}`,
        '  batch_max_events: 500',
        `  max_in_flight_events: ${IN_FLIGHT_EVENTS}`,
        '',
      ].join('\n'),
    );
    await bus.ensureTopics([{ topic, partitions: 4 }]);
    const collector = await Collector.start(bus, topic);

    const stderr = openSync(join(dir, 'ship.log'), 'a');
    const start = (): ChildProcess =>
      spawn(process.execPath, [CLI, 'ship', '--config', cfgFile], { stdio: ['ignore', 'ignore', stderr] });
    const exited = (p: ChildProcess) =>
      new Promise<number | null>((res) =>
        p.exitCode !== null ? res(p.exitCode) : p.once('exit', (c) => res(c)),
      );
    // First start: its checkpoint must exist before anything rotates (a first start reads the
    // configured file, not the rotations that happened before it ever ran).
    let child = start();
    await waitUntil(
      () => existsSync(join(dir, 'var', 'ship', 'checkpoint.json')),
      30_000,
      'the first checkpoint',
    );

    // The appender: 40 lines every 10 ms; every ~1.2 s a rotation, alternating the two styles.
    let seq = 0;
    let rotations = 0;
    let lastRotation = Date.now();
    const appender = setInterval(() => {
      appendFileSync(log, postfixLines(seq, seq + 40, 'mx-crash'));
      seq += 40;
      if (Date.now() - lastRotation > 1200) {
        lastRotation = Date.now();
        shiftRotations(log);
        if (rotations % 2 === 0) {
          renameSync(log, `${log}.1`);
          writeFileSync(log, '');
        } else {
          copyFileSync(log, `${log}.1`);
          truncateSync(log, 0);
        }
        rotations++;
      }
    }, 10);

    try {
      for (let k = 0; k < KILLS; k++) {
        await new Promise((r) => setTimeout(r, 700 + rand() * 2500));
        child.kill('SIGKILL');
        await exited(child);
        await new Promise((r) => setTimeout(r, rand() * 1500)); // lines and rotations go on meanwhile
        child = start();
      }
      await new Promise((r) => setTimeout(r, 2000));
      clearInterval(appender);
      const total = seq;
      const seen = () => {
        const s = new Set<number>();
        for (const r of collector.received) {
          const n = seqOf(r.event.raw);
          if (n !== null) s.add(n);
        }
        return s;
      };
      try {
        await waitUntil(() => seen().size >= total, 120_000, `all ${total} lines`);
      } catch (err) {
        const have = seen();
        const missing = [...Array(total).keys()].filter((n) => !have.has(n));
        writeFileSync(join(dir, 'missing.json'), JSON.stringify(missing));
        throw new Error(`${(err as Error).message}: ${missing.length} missing, see ${dir}/missing.json`);
      }
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
      await new Promise((r) => setTimeout(r, 1000));
      await collector.close();

      const got = collector.received;
      const distinct = new Set(got.map((r) => r.event.id)).size;
      const duplicates = got.length - distinct;
      const have = seen();
      const missing = [...Array(total).keys()].filter((n) => !have.has(n));
      // eslint-disable-next-line no-console
      console.log(
        `crash test seed ${seed}: ${total} lines, ${KILLS} kills, ${rotations} rotations, ` +
          `${got.length} records, ${distinct} distinct ids, ${duplicates} duplicates ` +
          `(${(duplicates / KILLS).toFixed(0)} per kill)`,
      );
      expect(missing).toEqual([]);
      expect(distinct).toBe(total); // one id per line, whichever file (or copy) it was read from
      // Re-sent after a kill: what was in flight plus what was acknowledged since the last
      // checkpoint write (plus the lines of one read chunk read past the cap).
      const perKill = IN_FLIGHT_EVENTS + CHUNK_BYTES / 100 + 4000 * (CHECKPOINT_MS / 1000) * 2;
      expect(duplicates).toBeLessThanOrEqual(KILLS * perKill);
      rmSync(dir, { recursive: true, force: true }); // kept when a check fails, for a look
    } finally {
      clearInterval(appender);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 400_000);
});
