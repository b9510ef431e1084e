import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MailEvent } from '../../src/event/mail-event.js';
import { parseLog } from '../store/parsed.js';

// Events for the API tests, made by the real parser from real-shaped Postfix lines: one message
// mx1 -> mbox1, a bounce (null sender), a relay denial (testdata/mail.log), and a harvest.

// The same message as the store tests trace; logs are parsed the way the store tests do.
export { parseLog, TRACE_MESSAGE_ID } from '../store/parsed.js';

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
