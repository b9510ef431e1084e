// The parser against lines the real Postfix and Sendmail (scripts/services.sh up postfix sendmail)
// write while swaks plays harvester, relay abuser, silent client and honest sender.
import { createReadStream, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { MailEvent } from '../../src/event/mail-event.js';
import { parseStreams } from '../../src/parse/command.js';
import { LineParser } from '../../src/parse/parser.js';
import { waitForLogLine } from '../services/maillog.js';
import { loadServices } from '../services/services.js';
import { probeUnknownUser, swaks, uniqueLoopback } from '../services/swaks.js';

const services = loadServices('postfix', 'sendmail');
const parse = (line: string): MailEvent => new LineParser().parse(line);

async function wholeFile(file: string): Promise<{ lines: number; events: number }> {
  const lines = readFileSync(file, 'utf8').split('\n').length - 1;
  let events = 0;
  const out = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const b of chunk) if (b === 10) events++;
      cb();
    },
  });
  const res = await parseStreams([() => createReadStream(file)], out, {});
  expect(res.lines).toBe(events);
  return { lines, events };
}

describe('parse: real Postfix', () => {
  const pf = services.postfix;

  it('an unknown recipient is a user_unknown reject from the client address', async () => {
    const { client: ip, user } = await probeUnknownUser(pf.smtp, 'h@bot.test');
    const ev = parse(await waitForLogLine(pf.maillog, [`[${ip}]`, 'reject: RCPT', user]));
    expect(ev).toMatchObject({
      mta: 'postfix',
      kind: 'reject',
      reason: 'user_unknown',
      command: 'RCPT',
      client_ip: ip,
      recipient: `${user}@example.test`,
      sender: 'h@bot.test',
      reply_code: 550,
      dsn: '5.1.1',
    });
    const disc = parse(await waitForLogLine(pf.maillog, [`disconnect from unknown[${ip}]`]));
    expect(disc.kind).toBe('disconnect');
    expect(disc.command_counts?.rcpt).toEqual({ ok: 0, total: 1 });
  });

  it('a foreign recipient is relay_denied; an accepted message has client, queued, delivery', async () => {
    const ip = uniqueLoopback();
    await swaks({
      server: pf.smtp,
      localInterface: ip,
      from: 's@bot.test',
      to: 'v@other.test',
      quitAfter: 'RCPT',
    });
    expect(parse(await waitForLogLine(pf.maillog, [`[${ip}]`, 'Relay access denied'])).reason).toBe(
      'relay_denied',
    );

    const ip2 = uniqueLoopback();
    await swaks({
      server: pf.smtp,
      localInterface: ip2,
      from: 'friend@client.test',
      to: 'alice@example.test',
    });
    const client = parse(await waitForLogLine(pf.maillog, [`client=unknown[${ip2}]`]));
    expect(client).toMatchObject({ kind: 'client', client_ip: ip2 });
    const qid = client.queue_id!;
    expect(parse(await waitForLogLine(pf.maillog, [`${qid}: from=<friend@client.test>`]))).toMatchObject({
      kind: 'queued',
      sender: 'friend@client.test',
      nrcpt: 1,
    });
    expect(parse(await waitForLogLine(pf.maillog, [`${qid}: to=<`, 'status=']))).toMatchObject({
      kind: 'delivery',
      status: 'sent',
      orig_to: 'alice@example.test',
    });
  });

  it('every line of the maillog gives exactly one event', async () => {
    const { lines, events } = await wholeFile(pf.maillog);
    expect(events).toBe(lines);
  });
});

describe('parse: real Sendmail', () => {
  const sm = services.sendmail;

  it('an unknown recipient is a user_unknown reject; the session names the client', async () => {
    const { client: ip, user } = await probeUnknownUser(sm.smtp, 'h@bot.test');
    const ev = parse(await waitForLogLine(sm.maillog, [`<${user}@example.test>... User unknown`]));
    expect(ev).toMatchObject({
      mta: 'sendmail',
      kind: 'reject',
      reason: 'user_unknown',
      recipient: `${user}@example.test`,
    });
    expect(ev.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$/);
    const from = parse(await waitForLogLine(sm.maillog, [`${ev.queue_id}: from=<h@bot.test>`]));
    expect(from).toMatchObject({ kind: 'queued', client_ip: ip, nrcpt: 0, sender: 'h@bot.test' });
  });

  it('relaying is relay_denied and a silent client is no_mail', async () => {
    const ip = uniqueLoopback();
    await swaks({
      server: sm.smtp,
      localInterface: ip,
      from: 's@bot.test',
      to: 'v@other.test',
      quitAfter: 'RCPT',
    });
    expect(parse(await waitForLogLine(sm.maillog, [`relay=[${ip}]`, 'ruleset=check_rcpt']))).toMatchObject({
      kind: 'reject',
      reason: 'relay_denied',
      client_ip: ip,
      recipient: 'v@other.test',
    });
    const ip2 = uniqueLoopback();
    await swaks({
      server: sm.smtp,
      localInterface: ip2,
      from: 'a@b.test',
      to: 'alice@example.test',
      quitAfter: 'EHLO',
    });
    expect(parse(await waitForLogLine(sm.maillog, [`[${ip2}] did not issue`]))).toMatchObject({
      kind: 'no_mail',
      client_ip: ip2,
    });
  });

  it('every line of the maillog gives exactly one event', async () => {
    const { lines, events } = await wholeFile(sm.maillog);
    expect(events).toBe(lines);
  });
});
