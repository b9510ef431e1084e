import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientJoin } from '../../src/enrich/client-join.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { LineParser } from '../../src/parse/parser.js';

// Real Sendmail lines (from the test Sendmail of scripts/services.sh): the unknown-user reject
// comes before the from= line that names the client.
const LINES = [
  '2026-11-27T21:54:50.569360+00:00 vm sendmail[25258]: 6ARLso1T025258: <nosuch-13@example.test>... User unknown',
  '2026-11-27T21:54:50.580001+00:00 vm sendmail[25258]: 6ARLso1T025258: <nosuch-14@example.test>... User unknown',
  '2026-11-27T21:54:50.586481+00:00 vm postfix/smtpd[1]: connect from unknown[198.51.100.9]',
  '2026-11-27T21:54:50.596630+00:00 vm sendmail[25258]: 6ARLso1T025258: from=<probe@client.test>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=[127.139.90.136]',
  '2026-11-27T21:54:51.000000+00:00 vm sendmail[25258]: 6ARLso1T025258: <late@example.test>... User unknown',
];

function parsed(): MailEvent[] {
  const p = new LineParser({ host: 'vm' });
  return LINES.map((l) => p.parse(l));
}

describe('ClientJoin', () => {
  it('stamps a Sendmail unknown-user reject with the client of its queue id, keeping input order', () => {
    let now = 0;
    const join = new ClientJoin<number>({ holdMs: 2000, maxHeld: 100, now: () => now });
    const out: Array<[MailEvent, number]> = [];
    const evs = parsed();
    expect(evs[0]!.reason).toBe('user_unknown');
    expect(evs[0]!.client_ip).toBeUndefined();
    evs.forEach((ev, i) => {
      now += 5;
      join.push(ev, i, (e, n) => out.push([e, n]));
      if (i === 2) expect(out).toHaveLength(0); // the postfix line waits behind the held rejects
    });
    expect(out.map(([, n]) => n)).toEqual([0, 1, 2, 3, 4]);
    expect(out[0]![0].client_ip).toBe('127.139.90.136');
    expect(out[1]![0].client_ip).toBe('127.139.90.136');
    expect(out[2]![0].client_ip).toBe('198.51.100.9');
    // A reject after the from= line is stamped from memory, without waiting.
    expect(out[4]![0].client_ip).toBe('127.139.90.136');
    expect(join.stats).toEqual({ stamped: 3, unresolved: 0 });
    expect(join.held).toBe(0);
  });

  it('lets a reject go unstamped after hold_ms, and everything behind it', () => {
    let now = 0;
    const join = new ClientJoin<number>({ holdMs: 1000, maxHeld: 100, now: () => now });
    const out: number[] = [];
    const [a, , c] = parsed();
    join.push(a!, 0, (_e, n) => out.push(n));
    join.push(c!, 1, (_e, n) => out.push(n));
    expect(out).toEqual([]);
    expect(join.nextDueIn()).toBe(1000);
    now = 999;
    join.expire((_e, n) => out.push(n));
    expect(out).toEqual([]);
    now = 1000;
    join.expire((_e, n) => out.push(n));
    expect(out).toEqual([0, 1]);
    expect(join.stats.unresolved).toBe(1);
    expect(join.nextDueIn()).toBeNull();
  });

  it('never holds more than max_held events', () => {
    const join = new ClientJoin<number>({ holdMs: 60_000, maxHeld: 3, now: () => 0 });
    const out: number[] = [];
    const p = new LineParser({ host: 'vm' });
    for (let i = 0; i < 10; i++) {
      const ev = p.parse(
        `2026-11-27T21:54:50.000000+00:00 vm sendmail[1]: q${i}: <u${i}@example.test>... User unknown`,
      );
      join.push(ev, i, (_e, n) => out.push(n));
      expect(join.held).toBeLessThanOrEqual(3);
    }
    join.drain((_e, n) => out.push(n));
    expect(out).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('property: every event comes out exactly once, in input order', () => {
    const evs = parsed();
    fc.assert(
      fc.property(
        fc.array(fc.record({ pick: fc.nat(evs.length - 1), dt: fc.nat(3000), expire: fc.boolean() }), {
          maxLength: 200,
        }),
        fc.integer({ min: 1, max: 50 }),
        (steps, maxHeld) => {
          let now = 0;
          const join = new ClientJoin<number>({ holdMs: 2000, maxHeld, now: () => now });
          const out: number[] = [];
          steps.forEach((s, i) => {
            now += s.dt;
            join.push({ ...evs[s.pick]! }, i, (_e, n) => out.push(n));
            if (s.expire) join.expire((_e, n) => out.push(n));
            expect(join.held).toBeLessThanOrEqual(maxHeld);
          });
          join.drain((_e, n) => out.push(n));
          expect(out).toEqual(steps.map((_, i) => i));
        },
      ),
    );
  });
});
