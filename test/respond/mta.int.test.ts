import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Responder } from '../../src/respond/agent.js';
import { BEGIN, END } from '../../src/respond/section.js';
import { loadServices } from '../services/services.js';
import { decision, removeStateDirs, respondConfig, responder, run, stateDir, until } from './helpers.js';
import { swaks } from './swaks.js';

// The responder against the real Postfix and Sendmail that scripts/services.sh starts: a decision
// for 127.0.0.X makes the MTA answer X with 450 4.7.1 while Y is served as before, and the entry
// lifts by itself on the agent's clock.

const services = loadServices('postfix', 'sendmail');
const running: Responder[] = [];
afterAll(async () => {
  for (const r of running) await r.stop();
  removeStateDirs();
});

function adminPart(text: string): string {
  const b = text.indexOf(BEGIN);
  if (b < 0) return text;
  const e = text.indexOf('\n', text.indexOf(END)) + 1;
  return text.slice(0, b) + text.slice(e);
}

describe('Postfix check_client_access hash: map', () => {
  const pf = services.postfix;
  const X = '127.0.0.41';
  const Y = '127.0.0.42';

  it('tempfails X with 450 4.7.1, keeps Y at 250, and lifts X by itself', async () => {
    const dir = stateDir('postfix');
    const r = responder(
      respondConfig({
        mta: 'postfix',
        map_path: pf.access_map,
        map_type: 'hash',
        postmap: [pf.postmap],
        state_path: join(dir, 'state.json'),
      }),
      dir,
    );
    running.push(r);
    const adminBefore = adminPart(readFileSync(pf.access_map, 'latin1'));
    await r.start();

    expect((await swaks(pf.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);

    const d = decision(X, 4000);
    expect(await r.apply(d)).toMatchObject({ outcome: 'added', in_force: true });
    const q = await run([pf.postmap, '-q', X, `hash:${pf.access_map}`]);
    expect(q.stdout.trim()).toBe(d.reply);

    const blocked = await swaks(pf.smtp, X, 'postmaster@example.test', 'postmaster@example.test');
    expect(blocked.reply).toMatch(
      /^450 4\.7\.1 .*Client host rejected: Too many unknown recipients; try later/,
    );
    expect((await swaks(pf.smtp, Y, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);
    const unknown = await swaks(pf.smtp, Y, 'nosuchuser@example.test', 'nosuchuser@example.test');
    expect(unknown.reply).toMatch(/^550 5\.1\.1 /);

    // The administrator's lines are untouched.
    expect(adminPart(readFileSync(pf.access_map, 'latin1'))).toBe(adminBefore);

    // Lifted on the agent's clock: gone from the table within 1 s of expires_at.
    await until(
      async () => (await run([pf.postmap, '-q', X, `hash:${pf.access_map}`])).code === 1,
      6000,
      'entry removed from the postfix table',
    );
    expect(Date.now()).toBeLessThan(Date.parse(d.expires_at) + 1000);
    expect((await swaks(pf.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);
    await r.stop();
  });
});

describe('Sendmail access db', () => {
  const sm = services.sendmail;
  const X = '127.0.0.43';
  const Y = '127.0.0.44';

  it('tempfails X with 450 4.7.1, keeps Y at 250, and lifts X by itself', async () => {
    const dir = stateDir('sendmail');
    const r = responder(
      respondConfig({
        mta: 'sendmail',
        map_path: sm.access_map,
        map_type: 'hash',
        makemap: [sm.makemap],
        state_path: join(dir, 'state.json'),
      }),
      dir,
    );
    running.push(r);
    const adminBefore = adminPart(readFileSync(sm.access_map, 'latin1'));
    await r.start();

    expect((await swaks(sm.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);

    const d = decision(X, 4000);
    expect(await r.apply(d)).toMatchObject({ outcome: 'added', in_force: true });
    const dump = await run([sm.makemap, '-u', 'hash', sm.access_map]);
    expect(dump.stdout).toContain(`connect:${X}\tERROR:4.7.1:"${d.reply}"`);

    const blocked = await swaks(sm.smtp, X, 'postmaster@example.test', 'postmaster@example.test');
    expect(blocked.reply).toMatch(/^450 4\.7\.1 .*Too many unknown recipients; try later/);
    expect((await swaks(sm.smtp, Y, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);
    const unknown = await swaks(sm.smtp, Y, 'nosuchuser@example.test', 'nosuchuser@example.test');
    expect(unknown.reply).toMatch(/^550 5\.1\.1 /);
    expect(adminPart(readFileSync(sm.access_map, 'latin1'))).toBe(adminBefore);

    await until(
      async () => !(await run([sm.makemap, '-u', 'hash', sm.access_map])).stdout.includes(`connect:${X}\t`),
      6000,
      'entry removed from the sendmail access db',
    );
    expect(Date.now()).toBeLessThan(Date.parse(d.expires_at) + 1000);
    expect((await swaks(sm.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);
    await r.stop();
  });
});

describe.each([
  [
    'postfix',
    { mta: 'postfix', map_path: services.postfix.access_map, postmap: [services.postfix.postmap] },
    services.postfix.smtp,
  ],
  [
    'sendmail',
    { mta: 'sendmail', map_path: services.sendmail.access_map, makemap: [services.sendmail.makemap] },
    services.sendmail.smtp,
  ],
] as const)('%s: a /24 decision', (name, respond, smtp) => {
  it('tempfails every address of the prefix and nothing outside it; a lift removes it at once', async () => {
    const dir = stateDir(`prefix-${name}`);
    const r = responder(respondConfig({ ...respond, state_path: join(dir, 'state.json') }), dir);
    running.push(r);
    await r.start();
    const d = decision('127.3.3.0/24', 600_000, { reply: '451 4.7.1 Prefix under harvest; try later' });
    expect(await r.apply(d)).toMatchObject({ outcome: 'added', in_force: true });
    for (const from of ['127.3.3.9', '127.3.3.200']) {
      expect((await swaks(smtp, from, 'postmaster@example.test', 'postmaster@example.test')).reply).toMatch(
        /^451 4\.7\.1 .*Prefix under harvest; try later/,
      );
    }
    expect((await swaks(smtp, '127.3.4.9', 'postmaster@example.test', 'postmaster@example.test')).code).toBe(
      250,
    );
    expect(await r.apply({ ...d, state: 'lifted' })).toMatchObject({ outcome: 'removed', in_force: true });
    expect((await swaks(smtp, '127.3.3.9', 'postmaster@example.test', 'postmaster@example.test')).code).toBe(
      250,
    );
    await r.stop();
  });
});
