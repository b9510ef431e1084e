import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LineParser } from '../../src/parse/parser.js';
import { readCheckpoint } from '../../src/ship/checkpoint.js';
import type { ShipConfig } from '../../src/ship/config.js';
import { Shipper } from '../../src/ship/shipper.js';
import { quiet, RecordingProducer, shipConfig, tmp, waitFor } from './helpers.js';

// The shipper gives a Sendmail `<rcpt>... User unknown` the client that the from= line of its
// queue id names (written after it), keyed by that client, without reordering the file.

const running: Shipper[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop(0);
});

async function ship(dir: string, over: Partial<ShipConfig>) {
  const producer = new RecordingProducer();
  const shipper = new Shipper({
    config: shipConfig(over),
    host: 'mx1',
    checkpointPath: join(dir, 'checkpoint.json'),
    topic: 'mail.events',
    producer,
    parser: new LineParser({ host: 'mx1' }),
    log: quiet,
  });
  running.push(shipper);
  await shipper.start();
  return { shipper, producer };
}

const T = '2026-11-27T21:54:50';
const reject = (q: string, n: number) =>
  `${T}.56${n}+00:00 mx1 sendmail[1]: ${q}: <nosuch${n}@example.test>... User unknown\n`;
const from = (q: string, ip: string) =>
  `${T}.59+00:00 mx1 sendmail[1]: ${q}: from=<p@client.test>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=[${ip}]\n`;
const other = `${T}.57+00:00 mx1 postfix/smtpd[2]: connect from unknown[198.51.100.9]\n`;

describe('Shipper: Sendmail rejects get their client (client join)', () => {
  it('holds the rejects until the from= line, stamps and keys them by client, keeps file order', async () => {
    const dir = tmp('ship-join');
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const { shipper, producer } = await ship(dir, { files: [log], client_join_hold_ms: 60_000 });
    appendFileSync(log, reject('6ARLsoAA025258', 1) + reject('6ARLsoAA025258', 2) + other);
    await new Promise((r) => setTimeout(r, 300));
    expect(producer.records).toHaveLength(0); // waiting for qA's client; the postfix line waits behind
    appendFileSync(log, from('6ARLsoAA025258', '203.0.113.50'));
    await waitFor(() => producer.records.length === 4);
    expect(producer.records.map((r) => r.event.kind)).toEqual(['reject', 'reject', 'connect', 'queued']);
    expect(producer.records.map((r) => r.key)).toEqual([
      '203.0.113.50',
      '203.0.113.50',
      '198.51.100.9',
      '203.0.113.50',
    ]);
    expect(producer.records[0]!.event.client_ip).toBe('203.0.113.50');
    expect(producer.records[0]!.event.reason).toBe('user_unknown');
    await shipper.stop();
    running.length = 0;
    const cp = await readCheckpoint(join(dir, 'checkpoint.json'));
    expect(cp!.files[0]!.offset).toBe(
      (
        reject('6ARLsoAA025258', 1) +
        reject('6ARLsoAA025258', 2) +
        other +
        from('6ARLsoAA025258', '203.0.113.50')
      ).length,
    );
  });

  it('lets a reject go without a client after client_join_hold_ms; the checkpoint never passed it before', async () => {
    const dir = tmp('ship-join');
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const { producer } = await ship(dir, {
      files: [log],
      client_join_hold_ms: 400,
      checkpoint_interval_ms: 20,
    });
    appendFileSync(log, reject('6ARLsoBB025258', 1));
    await new Promise((r) => setTimeout(r, 200));
    expect(producer.records).toHaveLength(0);
    const cp = await readCheckpoint(join(dir, 'checkpoint.json'));
    expect(cp?.files[0]?.offset ?? 0).toBe(0);
    await waitFor(() => producer.records.length === 1, 5_000);
    expect(producer.records[0]!.event.client_ip).toBeUndefined();
    expect(producer.records[0]!.key).toBe('mx1:6ARLsoBB025258');
  });

  it('SIGTERM-style stop sends what is still waiting', async () => {
    const dir = tmp('ship-join');
    const log = join(dir, 'maillog');
    writeFileSync(log, '');
    const { shipper, producer } = await ship(dir, { files: [log], client_join_hold_ms: 60_000 });
    appendFileSync(log, reject('6ARLsoCC025258', 1));
    await new Promise((r) => setTimeout(r, 200));
    expect(producer.records).toHaveLength(0);
    await shipper.stop();
    running.length = 0;
    expect(producer.records).toHaveLength(1);
  });
});
