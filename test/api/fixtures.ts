import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MailEvent } from '../../src/event/mail-event.js';
import { LineParser } from '../../src/parse/parser.js';

// Events for the API tests, made by the real parser from real-shaped Postfix lines: one message
// mx1 -> mbox1, a bounce (null sender), a relay denial (testdata/mail.log), and a harvest.

export const TRACE_MESSAGE_ID = '20261127101500.ABC123@sender.example.org';

/** Parses log text; ids are `file:offset`, as the shipper makes them. */
export function parseLog(text: string, file: string): MailEvent[] {
  const parser = new LineParser({ year: 2026, timezone: 'UTC' });
  const out: MailEvent[] = [];
  let offset = 0;
  for (const line of text.split('\n')) {
    if (line !== '') out.push({ ...parser.parse(line), id: `${file}:${offset}` });
    offset += Buffer.byteLength(line) + 1;
  }
  return out;
}

export function mailLogEvents(): MailEvent[] {
  return parseLog(readFileSync(join(import.meta.dirname, 'testdata', 'mail.log'), 'utf8'), 'mail.log');
}

/**
 * A harvest against mx1 from 09:00 on: `perSource[i]` unknown-recipient rejects from
 * 198.51.100.(i+1), and `v6` from 2001:db8:5::7.
 */
export function harvestLog(perSource: number[], v6: number): string {
  const lines: string[] = [];
  let sec = 0;
  const reject = (ip: string, rcpt: string) => {
    const s = sec++;
    const t = `09:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
    lines.push(
      `Nov 27 ${t} mx1 postfix/smtpd[500]: NOQUEUE: reject: RCPT from unknown[${ip}]: 550 5.1.1 <${rcpt}>: ` +
        `Recipient address rejected: User unknown in local recipient table; from=<spam@bad.example> to=<${rcpt}> proto=ESMTP helo=<bad>`,
    );
  };
  perSource.forEach((n, i) => {
    for (let k = 0; k < n; k++) reject(`198.51.100.${i + 1}`, `u${i}.${k}@example.test`);
  });
  for (let k = 0; k < v6; k++) reject('2001:db8:5::7', `v6.${k}@example.test`);
  return `${lines.join('\n')}\n`;
}
