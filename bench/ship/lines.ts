// Seeded, realistic Postfix log lines for the shipper's tests and benchmark. Every line carries
// its sequence number as `h<N>.example.net` (client host name), so a consumer can tell which
// lines arrived whatever the parser made of them.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// The same seeded generator as the parse benchmark's log.
export { rng } from '../parse/generate.js';

function stamp(t: Date): string {
  const d = String(t.getUTCDate()).padStart(2, ' ');
  const hh = String(t.getUTCHours()).padStart(2, '0');
  const mm = String(t.getUTCMinutes()).padStart(2, '0');
  const ss = String(t.getUTCSeconds()).padStart(2, '0');
  return `${MONTHS[t.getUTCMonth()]} ${d} ${hh}:${mm}:${ss}`;
}

export function postfixLine(seq: number, host = 'mx1', base = Date.UTC(2026, 10, 27, 12, 0, 0)): string {
  const ip = `10.${(seq >>> 16) & 255}.${(seq >>> 8) & 255}.${seq & 255}`;
  const client = `h${seq}.example.net[${ip}]`;
  const pid = 1000 + (seq % 5000);
  const ts = stamp(new Date(base + Math.floor(seq / 100) * 1000));
  switch (seq % 4) {
    case 0:
      return `${ts} ${host} postfix/smtpd[${pid}]: connect from ${client}`;
    case 1:
      return (
        `${ts} ${host} postfix/smtpd[${pid}]: NOQUEUE: reject: RCPT from ${client}: 550 5.1.1 ` +
        `<nosuch${seq}@example.test>: Recipient address rejected: User unknown in local recipient table; ` +
        `from=<sender${seq % 97}@example.org> to=<nosuch${seq}@example.test> proto=ESMTP helo=<h${seq}.example.net>`
      );
    case 2:
      return (
        `${ts} ${host} postfix/smtpd[${pid}]: ${queueId(seq)}: client=${client}, ` +
        `sasl_method=PLAIN, sasl_username=user${seq % 13}`
      );
    default:
      return `${ts} ${host} postfix/smtpd[${pid}]: disconnect from ${client} ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4`;
  }
}

function queueId(seq: number): string {
  return (0x100000000 + seq * 2654435761).toString(16).toUpperCase().slice(-10);
}

/** Lines [from, to) joined, each with its newline. */
export function postfixLines(from: number, to: number, host = 'mx1'): string {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(postfixLine(i, host));
  return `${out.join('\n')}\n`;
}

/** The sequence number a line carries (see postfixLine); null for other lines. */
export function seqOf(raw: string): number | null {
  const m = /\bh(\d+)\.example\.net\b/.exec(raw);
  return m ? Number(m[1]) : null;
}
