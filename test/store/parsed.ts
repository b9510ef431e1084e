import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MailEvent } from '../../src/event/mail-event.js';
import { LineParser } from '../../src/parse/parser.js';

// Events for store tests, made by the real parser from real-shaped log lines. Ids are what the
// shipper gives: host + file + byte offset.

export const TRACE_MESSAGE_ID = '20261127101500.ABC123@sender.example.org';

/** Parses log text; ids are `file:offset`. */
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

/** One message through mx1 -> filter1 -> mbox1, plus an unrelated message (testdata/trace.log). */
export function traceLogEvents(): MailEvent[] {
  return parseLog(readFileSync(join(import.meta.dirname, 'testdata', 'trace.log'), 'utf8'), 'trace.log');
}

/**
 * A harvest against mx1 between 09:00 and 09:59: `perSource[i]` unknown-recipient rejects from
 * 198.51.100.(i+1); two IPv6 sources in 2001:db8:1::/64 with 3 each; one legitimate RCPT reject
 * that is not an unknown user.
 */
export function harvestLog(perSource: number[]): string {
  const lines: string[] = [];
  const reject = (sec: number, ip: string, rcpt: string) => {
    const t = `09:${String(Math.floor(sec / 60) % 60).padStart(2, '0')}:${String(sec % 60).padStart(2, '0')}`;
    return (
      `Nov 27 ${t} mx1 postfix/smtpd[500]: NOQUEUE: reject: RCPT from unknown[${ip}]: 550 5.1.1 <${rcpt}>: ` +
      `Recipient address rejected: User unknown in local recipient table; from=<spam@bad.example> to=<${rcpt}> proto=ESMTP helo=<bad>`
    );
  };
  let sec = 0;
  perSource.forEach((n, i) => {
    for (let k = 0; k < n; k++) lines.push(reject(sec++, `198.51.100.${i + 1}`, `u${i}.${k}@example.test`));
  });
  for (const ip of ['2001:db8:1::5', '2001:db8:1:0:ffff::6']) {
    for (let k = 0; k < 3; k++) lines.push(reject(sec++, ip, `v6.${k}@example.test`));
  }
  lines.push(
    `Nov 27 09:59:00 mx1 postfix/smtpd[501]: NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 <x@elsewhere.test>: Relay access denied; from=<a@b.test> to=<x@elsewhere.test> proto=ESMTP helo=<c>`,
  );
  return `${lines.join('\n')}\n`;
}

/** A message from a Sendmail MX to a Postfix mailbox server (testdata/trace-sendmail.log). */
export function sendmailTraceEvents(): MailEvent[] {
  return parseLog(
    readFileSync(join(import.meta.dirname, 'testdata', 'trace-sendmail.log'), 'utf8'),
    'trace-sendmail.log',
  );
}
