// The real Postfix test instance (scripts/services.sh up postfix): rejects and tempfails land
// in its maillog in the form the parsers and the respond agent rely on.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { addAccessLine, postmap, removeAccessLine } from './access-map.js';
import { waitForLogLine } from './maillog.js';
import { loadServices } from './services.js';
import { probeUnknownUser, swaks, uniqueLoopback } from './swaks.js';

const { postfix } = loadServices('postfix');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanups.splice(0)) f();
});

describe('postfix test instance', () => {
  it('answers an unknown local user with 550 5.1.1 and logs the reject', async () => {
    const { client, user, session: s } = await probeUnknownUser(postfix.smtp, 'harvester@spam.test');
    expect(s.errors.join('\n')).toMatch(
      /^550 5\.1\.1 <.*>: Recipient address rejected: User unknown in local recipient table/,
    );
    const line = await waitForLogLine(postfix.maillog, [`[${client}]`, `to=<${user}@example.test>`]);
    expect(line).toMatch(
      new RegExp(
        `postfix/smtpd\\[\\d+\\]: NOQUEUE: reject: RCPT from unknown\\[${client.replace(/\./g, '\\.')}\\]: 550 5\\.1\\.1 `,
      ),
    );
  });

  it('accepts mail for an alias and relays nothing for outside clients', async () => {
    const client = uniqueLoopback();
    const ok = await swaks({
      server: postfix.smtp,
      localInterface: client,
      from: 'a@b.test',
      to: 'alice@example.test',
    });
    expect(ok.code).toBe(0);
    const relay = await swaks({
      server: postfix.smtp,
      localInterface: client,
      from: 'a@b.test',
      to: 'someone@elsewhere.test',
      quitAfter: 'RCPT',
    });
    expect(relay.errors.join('\n')).toMatch(/^554 5\.7\.1 <someone@elsewhere\.test>: Relay access denied/);
  });

  it('tempfails a client listed in the access map (hash:, no reload) and lets it in again', async () => {
    const client = uniqueLoopback();
    const entry = `${client} 450 4.7.1 Too many unknown recipients; try later`;
    const rebuild = postmap(postfix.postmap);
    addAccessLine(postfix.access_map, entry, rebuild);
    cleanups.push(() => removeAccessLine(postfix.access_map, entry, rebuild));

    // Postfix notices the rebuilt .db when an smtpd starts a session; allow a few tries
    let errors: string[] = [];
    for (let i = 0; i < 20; i++) {
      errors = (
        await swaks({
          server: postfix.smtp,
          localInterface: client,
          from: 'a@b.test',
          to: 'alice@example.test',
          quitAfter: 'RCPT',
        })
      ).errors;
      if (errors.some((e) => e.startsWith('450'))) break;
      await sleep(500);
    }
    expect(errors.join('\n')).toContain(
      `450 4.7.1 <unknown[${client}]>: Client host rejected: Too many unknown recipients; try later`,
    );
    const line = await waitForLogLine(postfix.maillog, [`RCPT from unknown[${client}]: 450 4.7.1`]);
    expect(line).toContain('Client host rejected: Too many unknown recipients; try later');

    cleanups.pop()!();
    let lifted = false;
    for (let i = 0; i < 20 && !lifted; i++) {
      const s = await swaks({
        server: postfix.smtp,
        localInterface: client,
        from: 'a@b.test',
        to: 'alice@example.test',
        quitAfter: 'RCPT',
      });
      lifted = s.code === 0;
      if (!lifted) await sleep(500);
    }
    expect(lifted).toBe(true);
  });
});
