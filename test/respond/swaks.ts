import { execFile } from 'node:child_process';

// A real SMTP client (swaks) speaking from a chosen loopback address, as the attacker or the
// legitimate source of the tests. Returns the answer that decided the transaction: the first
// error reply (at connect, HELO, MAIL or RCPT), or else the reply to RCPT.

export interface SmtpAnswer {
  /** "450 4.7.1 <unknown[127.0.0.31]>: Client host rejected: ..." */
  reply: string;
  code: number;
  transcript: string;
}

export function swaks(server: string, from: string, to: string, rcpt: string): Promise<SmtpAnswer> {
  const args = ['--server', server, '--local-interface', from, '--from', 'probe@client.test', '--to', to];
  args.push('--quit-after', 'RCPT', '--timeout', '20', '--helo', 'client.test');
  return new Promise((resolve, reject) => {
    execFile('swaks', args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const transcript = `${stdout}${stderr}`;
      const replies = transcript.split('\n').filter((l) => l.startsWith('<-') || l.startsWith('<**'));
      const error = replies.find((l) => l.startsWith('<**'));
      const lines = transcript.split('\n');
      const rcptAt = lines.findIndex((l) => l.includes(`RCPT TO:<${rcpt}>`));
      const afterRcpt = rcptAt >= 0 ? lines.slice(rcptAt + 1).find((l) => l.startsWith('<')) : undefined;
      const line = error ?? afterRcpt;
      if (!line) {
        reject(new Error(`swaks gave no SMTP answer (${err?.message ?? 'no error'}):\n${transcript}`));
        return;
      }
      const reply = line.replace(/^<(\*\*|-)\s+/, '');
      resolve({ reply, code: Number(reply.slice(0, 3)), transcript });
    });
  });
}
