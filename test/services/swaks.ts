// Plays an SMTP client with swaks(1) from a chosen loopback address.
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';

export interface SmtpSession {
  /** exit code of swaks: 0 = all accepted, 2x = a rejection at some step */
  code: number;
  /** the whole transcript */
  transcript: string;
  /** server replies swaks marked as errors ("<** ...") */
  errors: string[];
}

export interface SwaksOptions {
  server: string;
  from: string;
  to: string;
  /** source address, e.g. 127.0.0.7 (any 127/8 address works on Linux loopback) */
  localInterface: string;
  quitAfter?: 'CONNECT' | 'EHLO' | 'MAIL' | 'RCPT';
  /** the name given in EHLO (swaks' default: this host's name) */
  helo?: string;
  timeoutMs?: number;
}

export function swaks(opts: SwaksOptions): Promise<SmtpSession> {
  const args = ['--server', opts.server, '--local-interface', opts.localInterface];
  args.push('--from', opts.from, '--to', opts.to, '--timeout', '20');
  if (opts.quitAfter) args.push('--quit-after', opts.quitAfter);
  if (opts.helo) args.push('--helo', opts.helo);
  return new Promise((resolve, reject) => {
    execFile('swaks', args, { timeout: opts.timeoutMs ?? 30_000 }, (err, stdout, stderr) => {
      const transcript = `${stdout}${stderr}`;
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (err && typeof err.code !== 'number') {
        reject(new Error(`swaks ${args.join(' ')} failed to run: ${err.message}\n${transcript}`));
        return;
      }
      const errors = transcript
        .split('\n')
        .filter((l) => l.startsWith('<**'))
        .map((l) => l.slice(3).trim());
      resolve({ code, transcript, errors });
    });
  });
}

/** A random source address in 127.100.0.0-127.199.255.255, so reruns never share a client. */
export function uniqueLoopback(): string {
  return `127.${randomInt(100, 200)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

/** A recipient local part nobody has, unique per call. */
export function unknownUser(prefix = 'nosuch'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomInt(1e9).toString(36)}`;
}

/** One RCPT to a user nobody has, from a fresh loopback address: what a harvester does. */
export async function probeUnknownUser(
  server: string,
  from: string,
): Promise<{ client: string; user: string; session: SmtpSession }> {
  const client = uniqueLoopback();
  const user = unknownUser();
  const session = await swaks({
    server,
    localInterface: client,
    from,
    to: `${user}@example.test`,
    quitAfter: 'RCPT',
  });
  return { client, user, session };
}
