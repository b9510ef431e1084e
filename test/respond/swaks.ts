import { swaks as runSwaks } from '../services/swaks.js';

// A real SMTP client (swaks) speaking from a chosen loopback address, as the attacker or the
// legitimate source of the tests. Returns the answer that decided the transaction: the first
// error reply (at connect, HELO, MAIL or RCPT), or else the reply to RCPT.

export interface SmtpAnswer {
  /** "450 4.7.1 <unknown[127.0.0.31]>: Client host rejected: ..." */
  reply: string;
  code: number;
  transcript: string;
}

export async function swaks(server: string, from: string, to: string, rcpt: string): Promise<SmtpAnswer> {
  const { transcript } = await runSwaks({
    server,
    localInterface: from,
    from: 'probe@client.test',
    to,
    quitAfter: 'RCPT',
    helo: 'client.test',
  });
  const lines = transcript.split('\n');
  const error = lines.find((l) => l.startsWith('<**'));
  const rcptAt = lines.findIndex((l) => l.includes(`RCPT TO:<${rcpt}>`));
  const afterRcpt = rcptAt >= 0 ? lines.slice(rcptAt + 1).find((l) => l.startsWith('<')) : undefined;
  const line = error ?? afterRcpt;
  if (!line) throw new Error(`swaks gave no SMTP answer:\n${transcript}`);
  const reply = line.replace(/^<(\*\*|-)\s+/, '');
  return { reply, code: Number(reply.slice(0, 3)), transcript };
}
