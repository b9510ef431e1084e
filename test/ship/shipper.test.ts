import {
  appendFileSync,
  copyFileSync,
  readFileSync,
  renameSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { registry } from '../../src/metrics/registry.js';
import { TRUNCATION_MARKER } from '../../src/parse/parser.js';
import { readCheckpoint } from '../../src/ship/checkpoint.js';
import type { ShipConfig } from '../../src/ship/config.js';
import { Shipper } from '../../src/ship/shipper.js';
import { quiet, RecordingProducer, shipConfig, testParser, tmp, waitFor } from './helpers.js';

const running: Shipper[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop(0);
});

function lines(from: number, to: number, tag = 'l'): string {
  let s = '';
  for (let i = from; i < to; i++) s += `${tag}${i} ip=10.0.${i % 256}.1\n`;
  return s;
}

async function ship(dir: string, over: Partial<ShipConfig>, producer = new RecordingProducer()) {
  const shipper = new Shipper({
    config: shipConfig(over),
    host: 'mx1',
    checkpointPath: join(dir, 'state', 'checkpoint.json'),
    topic: 'mail.events',
    producer,
    parser: testParser,
    log: quiet,
  });
  running.push(shipper);
  await shipper.start();
  return { shipper, producer };
}

async function stop(shipper: Shipper): Promise<void> {
  running.splice(running.indexOf(shipper), 1);
  await shipper.stop();
}

describe('Shipper (unit, real files, recording producer)', () => {
  it('starts at the end on first start by default and ships what is appended, with exact offsets', async () => {
    const dir = tmp();
    const log = join(dir, 'mail.log');
    writeFileSync(log, lines(0, 10));
    const before = readFileSync(log).length;
    const { shipper, producer } = await ship(dir, { files: [log] });
    appendFileSync(log, lines(10, 20));
    appendFileSync(log, 'partial ip=1.2.3.4');
    await waitFor(() => producer.records.length === 10);
    expect(producer.raws()).toEqual(lines(10, 20).trimEnd().split('\n'));
    // ids: host, file id, byte offset of the line
    const first = producer.records[0]!.event.id!;
    expect(first).toMatch(new RegExp(`^mx1:[0-9a-f]{16}:${before}$`));
    expect(producer.records[0]!.key).toBe('10.0.10.1');
    await new Promise((r) => setTimeout(r, 100));
    expect(producer.records.length).toBe(10); // the partial line is held
    appendFileSync(log, '\n');
    await waitFor(() => producer.records.length === 11);
    expect(producer.records[10]!.event.raw).toBe('partial ip=1.2.3.4');
    await stop(shipper);
    const cp = await readCheckpoint(join(dir, 'state', 'checkpoint.json'));
    expect(cp!.files).toHaveLength(1);
    expect(cp!.files[0]!.offset).toBe(readFileSync(log).length);
  });

  it('start_at: beginning reads existing content; a restart resumes exactly at the checkpoint', async () => {
    const dir = tmp();
    const log = join(dir, 'mail.log');
    writeFileSync(log, lines(0, 100));
    const a = await ship(dir, { files: [log], start_at: 'beginning' });
    await waitFor(() => a.producer.records.length === 100);
    await stop(a.shipper);
    appendFileSync(log, lines(100, 150));
    const b = await ship(dir, { files: [log], start_at: 'beginning' });
    await waitFor(() => b.producer.records.length === 50);
    await b.shipper.idle();
    expect(b.producer.raws()).toEqual(lines(100, 150).trimEnd().split('\n'));
    // same file, same file id in both runs
    const idA = a.producer.records[0]!.event.id!.split(':')[1];
    const idB = b.producer.records[0]!.event.id!.split(':')[1];
    expect(idB).toBe(idA);
  });

  it('moves the checkpoint only after the bus acknowledged', async () => {
    const dir = tmp();
    const log = join(dir, 'mail.log');
    writeFileSync(log, '');
    const producer = new RecordingProducer();
    producer.hold();
    const { shipper } = await ship(dir, { files: [log] }, producer);
    appendFileSync(log, lines(0, 50));
    await waitFor(() => producer.sends > 0);
    await new Promise((r) => setTimeout(r, 100));
    const cpPath = join(dir, 'state', 'checkpoint.json');
    const held = await readCheckpoint(cpPath);
    expect(held!.files.every((f) => f.offset === 0)).toBe(true);
    expect(await registry.metrics()).toMatch(/mizugiwa_ship_oldest_unacked_seconds 0\.\d*[1-9]/);
    producer.release();
    await waitFor(async () => (await readCheckpoint(cpPath))!.files[0]?.offset === readFileSync(log).length);
    await stop(shipper);
  });

  it('a file is in the checkpoint before any of its lines is sent', async () => {
    const dir = tmp();
    const producer = new RecordingProducer();
    producer.hold();
    const { shipper } = await ship(
      dir,
      { files: [join(dir, '*.log')], checkpoint_interval_ms: 60_000 },
      producer,
    );
    writeFileSync(join(dir, 'new.log'), lines(0, 5));
    await waitFor(() => producer.sends > 0);
    const cp = await readCheckpoint(join(dir, 'state', 'checkpoint.json'));
    expect(cp!.files.map((f) => [f.path, f.offset])).toEqual([[join(dir, 'new.log'), 0]]);
    producer.release();
    await stop(shipper);
  });

  it('pauses reading when the in-flight cap is reached, and retries a failing bus until it works', async () => {
    const dir = tmp();
    const log = join(dir, 'mail.log');
    writeFileSync(log, '');
    const producer = new RecordingProducer();
    producer.failing = true;
    const { shipper } = await ship(
      dir,
      {
        files: [log],
        max_in_flight_events: 100,
        batch_max_events: 10,
        read_chunk_bytes: 4096,
        retry_initial_ms: 5,
        retry_max_ms: 20,
      },
      producer,
    );
    appendFileSync(log, lines(0, 5000));
    await waitFor(() => producer.failures > 5);
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      peak = Math.max(peak, shipper.stats().inFlightEvents);
      await new Promise((r) => setTimeout(r, 10));
    }
    // reading stops at the cap (+ at most the lines of one read chunk)
    const shortest = Math.min(
      ...lines(0, 5000)
        .split('\n')
        .map((l) => l.length + 1),
    );
    expect(peak).toBeGreaterThanOrEqual(100);
    expect(peak).toBeLessThanOrEqual(100 + Math.ceil(4096 / shortest));
    expect(shipper.stats().linesRead).toBeLessThan(5000);
    producer.failing = false;
    await waitFor(() => producer.records.length === 5000);
    expect(producer.raws()).toEqual(lines(0, 5000).trimEnd().split('\n'));
    await stop(shipper);
  });

  it('with sends acknowledged out of order and some failing, the checkpoint never passes an unacknowledged line', async () => {
    const dir = tmp();
    const log = join(dir, 'mail.log');
    writeFileSync(log, '');
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const delivered = new Set<number>(); // byte offsets of delivered lines
    const producer = new RecordingProducer();
    const chaos = {
      async send(topic: string, records: Parameters<RecordingProducer['send']>[1]) {
        await new Promise((r) => setTimeout(r, rand() * 20));
        if (rand() < 0.2) throw new Error('chaos');
        await producer.send(topic, records);
        for (const r of records) delivered.add(Number(JSON.parse(String(r.value)).id.split(':').pop()));
      },
      async close() {},
    };
    const { shipper } = await ship(
      dir,
      { files: [log], batch_max_events: 13, max_in_flight_requests: 8, retry_initial_ms: 1, retry_max_ms: 5 },
      chaos as unknown as RecordingProducer,
    );
    const text = lines(0, 3000);
    const starts: number[] = [];
    let off = 0;
    for (const l of text.split('\n').slice(0, -1)) {
      starts.push(off);
      off += Buffer.byteLength(l) + 1;
    }
    for (let i = 0; i < 3000; i += 100) appendFileSync(log, lines(i, i + 100));
    const cpPath = join(dir, 'state', 'checkpoint.json');
    let checks = 0;
    while (producer.records.length < 3000 || shipper.stats().inFlightEvents > 0) {
      const cp = await readCheckpoint(cpPath);
      const at = cp?.files[0]?.offset ?? 0;
      // every line that starts before the checkpoint offset was delivered
      for (const s0 of starts) {
        if (s0 >= at) break;
        expect(delivered.has(s0)).toBe(true);
      }
      checks++;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(checks).toBeGreaterThan(5);
    expect(new Set(producer.records.map((r) => r.event.raw))).toEqual(new Set(text.trimEnd().split('\n')));
    expect(shipper.stats().produceErrors).toBeGreaterThan(0);
    await stop(shipper);
    expect((await readCheckpoint(cpPath))!.files[0]!.offset).toBe(off);
  }, 30_000);

  it('rename-and-create: reads the old file to its end (late writes too), then the new one from 0', async () => {
    const dir = tmp();
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const { shipper, producer } = await ship(dir, { files: [log], rotate_wait_ms: 500 });
    appendFileSync(log, lines(0, 100, 'a'));
    await waitFor(() => producer.records.length === 100);
    const fd = (await import('node:fs')).openSync(log, 'a');
    renameSync(log, `${log}.1`);
    writeFileSync(log, lines(0, 50, 'b'));
    // the daemon has not reopened yet: it still writes to the old file
    (await import('node:fs')).writeSync(fd, lines(100, 120, 'a'));
    (await import('node:fs')).closeSync(fd);
    await waitFor(() => producer.records.length === 170);
    const raws = producer.raws();
    expect(raws.filter((r) => r.startsWith('a'))).toEqual(lines(0, 120, 'a').trimEnd().split('\n'));
    expect(raws.filter((r) => r.startsWith('b'))).toEqual(lines(0, 50, 'b').trimEnd().split('\n'));
    await waitFor(() => shipper.stats().openFiles === 1, 5000);
    expect(new Set(producer.records.map((r) => r.event.id)).size).toBe(170);
    await stop(shipper);
  });

  it('copytruncate: finds the copy for the unread rest, then reads the truncated file from 0', async () => {
    const dir = tmp();
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const producer = new RecordingProducer();
    const { shipper } = await ship(dir, { files: [log] }, producer);
    appendFileSync(log, lines(0, 100, 'a'));
    await waitFor(() => producer.records.length === 100);
    producer.hold(); // the shipper falls behind
    appendFileSync(log, lines(100, 200, 'a'));
    await new Promise((r) => setTimeout(r, 50));
    copyFileSync(log, `${log}.1`);
    truncateSync(log, 0);
    appendFileSync(log, lines(0, 30, 'b'));
    producer.release();
    await waitFor(() => producer.records.length >= 230);
    await shipper.idle();
    const raws = producer.raws();
    expect(raws.filter((r) => r.startsWith('a'))).toEqual(lines(0, 200, 'a').trimEnd().split('\n'));
    expect(raws.filter((r) => r.startsWith('b'))).toEqual(lines(0, 30, 'b').trimEnd().split('\n'));
    expect(new Set(producer.records.map((r) => r.event.id)).size).toBe(230);
    await stop(shipper);
  });

  it('copytruncate under a glob: the copy is not read as new, then taken up once the truncation is seen', async () => {
    const dir = tmp();
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const producer = new RecordingProducer();
    const { shipper } = await ship(
      dir,
      {
        files: [join(dir, 'maillog*')],
        rescan_interval_ms: 20,
        max_in_flight_events: 60,
        read_chunk_bytes: 4096,
      },
      producer,
    );
    appendFileSync(log, lines(0, 50, 'a'));
    await waitFor(() => producer.records.length === 50);
    producer.hold();
    appendFileSync(log, lines(50, 300, 'a'));
    await new Promise((r) => setTimeout(r, 50));
    copyFileSync(log, `${log}.1`);
    await new Promise((r) => setTimeout(r, 100)); // rescans see the copy before the truncation
    truncateSync(log, 0);
    appendFileSync(log, lines(0, 20, 'b'));
    expect(shipper.stats().linesRead).toBeLessThan(300); // behind: the rest is only in the copy
    producer.release();
    await waitFor(() => producer.records.length >= 320);
    await shipper.idle();
    const raws = producer.raws();
    expect(raws.filter((r) => r.startsWith('a'))).toEqual(lines(0, 300, 'a').trimEnd().split('\n'));
    expect(raws.filter((r) => r.startsWith('b'))).toEqual(lines(0, 20, 'b').trimEnd().split('\n'));
    expect(new Set(producer.records.map((r) => r.event.id)).size).toBe(320);
    await stop(shipper);
  });

  it('a restart after a rotation while stopped finds the rotated file and reads its rest', async () => {
    const dir = tmp();
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const a = await ship(dir, { files: [log] });
    appendFileSync(log, lines(0, 40, 'a'));
    await waitFor(() => a.producer.records.length === 40);
    await stop(a.shipper);
    appendFileSync(log, lines(40, 60, 'a'));
    renameSync(log, `${log}.1`);
    writeFileSync(log, lines(0, 10, 'b'));
    const b = await ship(dir, { files: [log] });
    await waitFor(() => b.producer.records.length === 30);
    await b.shipper.idle();
    expect(b.producer.raws().filter((r) => r.startsWith('a'))).toEqual(
      lines(40, 60, 'a').trimEnd().split('\n'),
    );
    expect(b.producer.raws().filter((r) => r.startsWith('b'))).toEqual(
      lines(0, 10, 'b').trimEnd().split('\n'),
    );
  });

  it('two rotations between two looks: the file created and rotated away in between is read too', async () => {
    const dir = tmp();
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const { shipper, producer } = await ship(dir, {
      files: [log],
      poll_interval_ms: 1500,
      rescan_interval_ms: 5000,
    });
    appendFileSync(log, lines(0, 10, 'x'));
    await waitFor(() => producer.records.length === 10);
    await new Promise((r) => setTimeout(r, 1600)); // just after a poll
    renameSync(log, `${log}.1`);
    writeFileSync(log, lines(0, 10, 'y'));
    renameSync(`${log}.1`, `${log}.2`);
    renameSync(log, `${log}.1`);
    writeFileSync(log, lines(0, 10, 'z'));
    await waitFor(() => producer.records.length === 30, 8000);
    await shipper.idle();
    for (const t of ['x', 'y', 'z'])
      expect(producer.raws().filter((r) => r.startsWith(t))).toEqual(lines(0, 10, t).trimEnd().split('\n'));
    await stop(shipper);
  });

  it('two rotations while stopped: the checkpointed file resumes, the unseen one is read from 0', async () => {
    const dir = tmp();
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const a = await ship(dir, { files: [log] });
    appendFileSync(log, lines(0, 10, 'x'));
    await waitFor(() => a.producer.records.length === 10);
    await stop(a.shipper);
    writeFileSync(join(dir, 'maillog.5'), lines(0, 10, 'ancient')); // an old rotation: not read
    const { utimesSync } = await import('node:fs');
    utimesSync(join(dir, 'maillog.5'), new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    await new Promise((r) => setTimeout(r, 50));
    appendFileSync(log, lines(10, 15, 'x'));
    renameSync(log, `${log}.1`);
    writeFileSync(log, lines(0, 10, 'y'));
    renameSync(`${log}.1`, `${log}.2`);
    renameSync(log, `${log}.1`);
    writeFileSync(log, lines(0, 10, 'z'));
    const b = await ship(dir, { files: [log] });
    await waitFor(() => b.producer.records.length === 25);
    await b.shipper.idle();
    expect(b.producer.raws().filter((r) => r.startsWith('x'))).toEqual(
      lines(10, 15, 'x').trimEnd().split('\n'),
    );
    for (const t of ['y', 'z'])
      expect(b.producer.raws().filter((r) => r.startsWith(t))).toEqual(lines(0, 10, t).trimEnd().split('\n'));
    expect(b.producer.raws().some((r) => r.startsWith('ancient'))).toBe(false);
  });

  it('follows globs, picks up files that appear later, never reads compressed rotations', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'maillog'), lines(0, 5, 'old'));
    writeFileSync(join(dir, 'maillog.2.gz'), gzipSync(lines(0, 5, 'gz')));
    writeFileSync(join(dir, 'maillog.3'), gzipSync(lines(0, 5, 'gzip-without-extension')));
    const { shipper, producer } = await ship(dir, { files: [join(dir, 'maillog*')], start_at: 'beginning' });
    await waitFor(() => producer.records.length === 5);
    writeFileSync(join(dir, 'maillog.new'), lines(0, 7, 'new'));
    await waitFor(() => producer.records.length === 12);
    await shipper.idle();
    expect(producer.raws().filter((r) => r.startsWith('new'))).toHaveLength(7);
    expect(producer.raws().some((r) => r.includes('gz'))).toBe(false);
    await stop(shipper);
  });

  it('does not read a copy of a file it is reading (glob), and a reused inode is a new file', async () => {
    const dir = tmp();
    const log = join(dir, 'maillog');
    writeFileSync(log, lines(0, 20, 'a'));
    const { shipper, producer } = await ship(dir, { files: [join(dir, 'maillog*')], start_at: 'beginning' });
    await waitFor(() => producer.records.length === 20);
    copyFileSync(log, join(dir, 'maillog.bak'));
    await new Promise((r) => setTimeout(r, 200));
    expect(producer.records.length).toBe(20);
    await stop(shipper);
    // delete + create: likely the same inode number, different first line
    unlinkSync(join(dir, 'maillog.bak'));
    unlinkSync(log);
    writeFileSync(log, lines(0, 3, 'c'));
    const b = await ship(dir, { files: [join(dir, 'maillog*')] });
    await waitFor(() => b.producer.records.length === 3);
    expect(b.producer.raws()).toEqual(lines(0, 3, 'c').trimEnd().split('\n'));
  });

  it('ships garbage bytes, NUL and a 1 MB line as events and keeps going', async () => {
    const dir = tmp();
    const log = join(dir, 'mail.log');
    writeFileSync(log, '');
    const { shipper, producer } = await ship(dir, { files: [log], max_line_bytes: 4096 });
    const garbage = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x0a]);
    const big = Buffer.alloc(1024 * 1024, 0x41);
    appendFileSync(log, Buffer.concat([garbage, big, Buffer.from('\nafter ip=1.1.1.1\n')]));
    await waitFor(() => producer.records.length === 3);
    const [g, b, after] = producer.records;
    expect(g!.event.kind).toBe('unknown');
    expect(b!.event).toMatchObject({ kind: 'unknown', truncated: true });
    expect(b!.event.raw).toBe(`${'A'.repeat(4096)}${TRUNCATION_MARKER}`);
    expect(b!.headers).toEqual({ truncated_bytes: String(big.length + 1) });
    expect(after!.event.raw).toBe('after ip=1.1.1.1');
    expect(after!.event.id!.endsWith(`:${garbage.length + big.length + 1}`)).toBe(true);
    await stop(shipper);
  });

  it('SIGHUP (reopen) looks at the paths at once and lets a drained rotated file go', async () => {
    const dir = tmp();
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const { shipper, producer } = await ship(dir, {
      files: [log],
      poll_interval_ms: 60_000,
      rescan_interval_ms: 60_000,
      rotate_wait_ms: 60_000,
    });
    appendFileSync(log, lines(0, 5, 'a'));
    await waitFor(() => producer.records.length === 5); // fs.watch woke the reader
    renameSync(log, `${log}.1`);
    writeFileSync(log, lines(0, 5, 'b'));
    await new Promise((r) => setTimeout(r, 200));
    expect(producer.records.length).toBe(5); // no poll yet: the new file is not known
    shipper.reopen();
    await waitFor(() => producer.records.length === 10);
    shipper.reopen();
    await waitFor(() => shipper.stats().openFiles === 1);
    await stop(shipper);
  });

  it('exposes its metrics on the registry', async () => {
    const dir = tmp();
    const log = join(dir, 'mail.log');
    writeFileSync(log, '');
    const { shipper, producer } = await ship(dir, { files: [log] });
    appendFileSync(log, lines(0, 3));
    await waitFor(() => producer.records.length === 3);
    await waitFor(() => shipper.stats().checkpointWrites > 1);
    const text = await registry.metrics();
    expect(text).toMatch(
      new RegExp(`mizugiwa_ship_lines_read_total\\{file="${log.replaceAll('/', '\\/')}"\\} 3`),
    );
    expect(text).toMatch(/mizugiwa_ship_events_produced_total \d+/);
    expect(text).toMatch(/mizugiwa_ship_bytes_behind\{file="[^"]*mail\.log"\} 0/);
    expect(text).toMatch(/mizugiwa_ship_checkpoint_age_seconds \d/);
    expect(text).toMatch(/mizugiwa_ship_oldest_unacked_seconds 0/);
    await stop(shipper);
  });

  it('refuses to start when the checkpoint cannot be written', async () => {
    const dir = tmp();
    const log = join(dir, 'mail.log');
    writeFileSync(log, '');
    // A directory where the temp file goes: reading finds nothing (a first start), writing fails
    // (permissions would not do: tests run as root).
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'state', `checkpoint.json.${process.pid}.tmp`), { recursive: true });
    const shipper = new Shipper({
      config: shipConfig({ files: [log] }),
      host: 'mx1',
      checkpointPath: join(dir, 'state', 'checkpoint.json'),
      topic: 'mail.events',
      producer: new RecordingProducer(),
      parser: testParser,
      log: quiet,
    });
    await expect(shipper.start()).rejects.toThrow(/cannot write checkpoint .*writable data_dir/);
    expect(shipper.stats().openFiles).toBe(0);
  });

  it('refuses a damaged checkpoint instead of starting over', async () => {
    const dir = tmp();
    const log = join(dir, 'mail.log');
    writeFileSync(log, '');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'state'));
    writeFileSync(join(dir, 'state', 'checkpoint.json'), '{"version":1,"files":[{"offset":');
    await expect(ship(dir, { files: [log] })).rejects.toThrow(/not valid JSON/);
    running.pop();
  });
});
