// The real Sendmail 8.17 test instance (scripts/services.sh up sendmail), logging through its
// private rsyslogd into its maillog.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { addAccessLine, makemap, removeAccessLine } from './access-map.js';
import { waitForLogLine } from './maillog.js';
import { loadServices } from './services.js';
import { probeUnknownUser, swaks, uniqueLoopback } from './swaks.js';

const { sendmail } = loadServices('sendmail');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanups.splice(0)) f();
});

describe('sendmail test instance', () => {
  it('answers an unknown local user with 550 5.1.1 and logs it', async () => {
    const { client, user, session: s } = await probeUnknownUser(sendmail.smtp, 'harvester@spam.test');
    expect(s.errors).toContain(`550 5.1.1 <${user}@example.test>... User unknown`);
    const reject = await waitForLogLine(sendmail.maillog, [`<${user}@example.test>... User unknown`]);
    // RFC 3339 timestamp, host, sendmail[pid]: QUEUEID: <rcpt>... User unknown
    expect(reject).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d \S+ sendmail\[\d+\]: \w+: <.*>\.\.\. User unknown$/,
    );
    const queueId = reject.match(/sendmail\[\d+\]: (\w+):/)![1]!;
    const from = await waitForLogLine(sendmail.maillog, [`${queueId}: from=<harvester@spam.test>`]);
    expect(from).toContain(`relay=[${client}]`);
  });

  it('accepts mail for an alias', async () => {
    const s = await swaks({
      server: sendmail.smtp,
      localInterface: uniqueLoopback(),
      from: 'a@b.test',
      to: 'alice@example.test',
    });
    expect(s.code).toBe(0);
  });

  it('tempfails a client listed in the access map at connect (check_relay)', async () => {
    const client = uniqueLoopback();
    const entry = `Connect:${client}\tERROR:4.7.1:"450 Too many unknown recipients; try later"`;
    const rebuild = makemap(sendmail.makemap);
    addAccessLine(sendmail.access_map, entry, rebuild);
    cleanups.push(() => removeAccessLine(sendmail.access_map, entry, rebuild));

    let errors: string[] = [];
    for (let i = 0; i < 20; i++) {
      errors = (
        await swaks({
          server: sendmail.smtp,
          localInterface: client,
          from: 'a@b.test',
          to: 'alice@example.test',
          quitAfter: 'RCPT',
        })
      ).errors;
      if (errors.some((e) => e.startsWith('450'))) break;
      await sleep(500);
    }
    expect(errors).toContain('450 4.7.1 Too many unknown recipients; try later');
    const line = await waitForLogLine(sendmail.maillog, [`ruleset=check_relay, arg1=[${client}]`]);
    expect(line).toContain('reject=450 4.7.1 Too many unknown recipients; try later');

    cleanups.pop()!();
    let lifted = false;
    for (let i = 0; i < 20 && !lifted; i++) {
      const s = await swaks({
        server: sendmail.smtp,
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
