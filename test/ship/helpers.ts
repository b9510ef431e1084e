import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { BusRecord, Producer } from '../../src/bus/bus.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { type ShipConfig, shipSchema } from '../../src/ship/config.js';
import type { EventParser } from '../../src/ship/shipper.js';

/** Tests log nothing unless MIZUGIWA_TEST_LOG is set. */
export const quiet = pino({ level: process.env.MIZUGIWA_TEST_LOG ?? 'silent' });

export function tmp(prefix = 'ship'): string {
  return mkdtempSync(join(tmpdir(), `mizugiwa-${prefix}-`));
}

export function shipConfig(over: Partial<ShipConfig>): ShipConfig {
  return shipSchema.parse({
    poll_interval_ms: 20,
    rescan_interval_ms: 50,
    rotate_wait_ms: 300,
    checkpoint_interval_ms: 20,
    linger_ms: 5,
    ...over,
  });
}

/** A parser for unit tests: `ip=A.B.C.D` gives a client_ip; everything is kind unknown. */
export const testParser: EventParser = {
  parse(line: string | Buffer): MailEvent {
    const raw = typeof line === 'string' ? line : line.toString('utf8');
    const ip = /ip=(\S+)/.exec(raw)?.[1];
    return ip ? { kind: 'connect', client_ip: ip, raw } : { kind: 'unknown', raw };
  },
};

/** Records every acknowledged record; can be made to fail or to hold sends. */
export class RecordingProducer implements Producer {
  readonly records: (BusRecord & { event: MailEvent })[] = [];
  sends = 0;
  failures = 0;
  /** While set, send() rejects. */
  failing = false;
  /** While set, send() waits. */
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;

  hold(): void {
    this.gate ??= new Promise((res) => {
      this.openGate = res;
    });
  }

  release(): void {
    this.openGate?.();
    this.gate = null;
    this.openGate = null;
  }

  async send(_topic: string, records: BusRecord[]): Promise<void> {
    this.sends++;
    if (this.gate) await this.gate;
    if (this.failing) {
      this.failures++;
      throw new Error('broker not available (test)');
    }
    for (const r of records) this.records.push({ ...r, event: JSON.parse(String(r.value)) as MailEvent });
  }

  async close(): Promise<void> {}

  raws(): string[] {
    return this.records.map((r) => r.event.raw);
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
