// The store bench's data: real-shaped Postfix lines, parsed by the real parser, seeded.
import type { MailEvent } from '../../src/event/mail-event.js';
import { LineParser } from '../../src/parse/parser.js';
import { rng } from '../lib/rng.js';

/** A day of mixed Postfix traffic on 4 hosts: sessions, deliveries, unknown-user rejects. */
export function makeEvents(n: number): MailEvent[] {
  const rnd = rng(42);
  const parser = new LineParser({ year: 2026, timezone: 'UTC' });
  const out: MailEvent[] = [];
  let offset = 0;
  let i = 0;
  while (out.length < n) {
    const host = `mx${Math.floor(rnd() * 4)}`;
    const sec = Math.floor((i++ / n) * 86_399);
    const t = `${String(Math.floor(sec / 3600)).padStart(2, '0')}:${String(Math.floor(sec / 60) % 60).padStart(2, '0')}:${String(sec % 60).padStart(2, '0')}`;
    const ip = `${rnd() < 0.1 ? '198.51.100' : `10.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`}.${Math.floor(rnd() * 256)}`;
    const qid = Math.floor(rnd() * 0xffffffffff)
      .toString(16)
      .toUpperCase()
      .padStart(10, '0');
    const user = `user${Math.floor(rnd() * 50_000)}@example.test`;
    const pid = 1000 + Math.floor(rnd() * 30_000);
    const p = `Nov 27 ${t} ${host}`;
    const lines =
      rnd() < 0.35
        ? [
            `${p} postfix/smtpd[${pid}]: connect from unknown[${ip}]`,
            `${p} postfix/smtpd[${pid}]: NOQUEUE: reject: RCPT from unknown[${ip}]: 550 5.1.1 <${user}>: Recipient address rejected: User unknown in local recipient table; from=<spam@bad.example> to=<${user}> proto=ESMTP helo=<x>`,
            `${p} postfix/smtpd[${pid}]: disconnect from unknown[${ip}] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4`,
          ]
        : [
            `${p} postfix/smtpd[${pid}]: connect from mail.sender.example[${ip}]`,
            `${p} postfix/smtpd[${pid}]: ${qid}: client=mail.sender.example[${ip}]`,
            `${p} postfix/cleanup[${pid + 1}]: ${qid}: message-id=<${qid}.${i}@sender.example>`,
            `${p} postfix/qmgr[99]: ${qid}: from=<news@sender.example>, size=${1000 + Math.floor(rnd() * 50_000)}, nrcpt=1 (queue active)`,
            `${p} postfix/local[${pid + 2}]: ${qid}: to=<${user}>, relay=local, delay=0.12, delays=0.05/0.01/0/0.06, dsn=2.0.0, status=sent (delivered to mailbox)`,
            `${p} postfix/qmgr[99]: ${qid}: removed`,
            `${p} postfix/smtpd[${pid}]: disconnect from mail.sender.example[${ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5`,
          ];
    for (const line of lines) {
      out.push({ ...parser.parse(line), id: `${host}:mail.log:${offset}` });
      offset += line.length + 1;
    }
  }
  return out.slice(0, n);
}
