// The contract the detector relies on, stated directly (the fixtures hold the details).
import { describe, expect, it } from 'vitest';
import { LineParser } from '../../src/parse/parser.js';

const p = () => new LineParser({ year: 2026, timezone: 'UTC', host: 'mx-exim' });

describe('unknown-user rejections are always reason user_unknown', () => {
  it.each([
    'Nov 27 10:00:03 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 550 5.1.1 <a@example.org>: Recipient address rejected: User unknown in local recipient table; from=<s@x.example> to=<a@example.org> proto=ESMTP helo=<x>',
    'Nov 27 10:00:03 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 550 5.1.1 <a@example.org>: Recipient address rejected: User unknown in virtual mailbox table; from=<s@x.example> to=<a@example.org> proto=ESMTP helo=<x>',
    'Nov 27 10:00:03 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 450 4.1.1 <a@example.org>: Recipient address rejected: undeliverable address: User unknown; from=<s@x.example> to=<a@example.org> proto=ESMTP helo=<x>',
    '2026-11-27T10:00:03.000001+00:00 mx2 sm-mta[1]: 5ARA10aB004342: <a@example.org>... User unknown',
    '2026-11-27T10:00:03.000001+00:00 mx2 sendmail[1]: 5ARA10aB004339: ruleset=check_rcpt, arg1=<a@example.org>, relay=[192.0.2.1], reject=550 5.1.1 <a@example.org>... User unknown',
    '2026-11-27 10:02:04 H=(x) [192.0.2.1]:5 F=<s@x.example> rejected RCPT <a@example.org>: Unrouteable address',
    '2026-11-27 10:02:04 H=(x) [192.0.2.1]:5 F=<s@x.example> rejected RCPT <a@example.org>: unknown user',
    '2026-11-27 10:02:04 H=(x) [192.0.2.1]:5 F=<s@x.example> rejected RCPT <a@example.org>: No Such User Here',
    '2026-11-27 10:02:04 H=(x) [192.0.2.1]:5 F=<s@x.example> temporarily rejected RCPT <a@example.org>: Unrouteable address',
  ])('%s', (line) => {
    const ev = p().parse(line);
    expect(ev.kind).toBe('reject');
    expect(ev.reason).toBe('user_unknown');
    expect(ev.recipient).toBe('a@example.org');
  });
});

describe('field normalization', () => {
  it('gives IPv6 in RFC 5952 form without the IPv6: prefix', () => {
    const ev = p().parse(
      'Nov 27 10:01:00 mx2 sm-mta[4321]: 5ARA10aB004324: from=<b@example.com>, size=1, class=0, nrcpts=1, proto=ESMTP, daemon=MTA, relay=h.example.com [IPv6:2001:0DB8:0:0:0:0:0:0018]',
    );
    expect(ev.client_ip).toBe('2001:db8::18');
    const mapped = p().parse('Nov 27 10:00:00 mx1 postfix/smtpd[1]: connect from unknown[::FFFF:192.0.2.7]');
    expect(mapped.client_ip).toBe('::ffff:192.0.2.7');
  });

  it('gives the null sender as an empty string and strips angle brackets', () => {
    const ev = p().parse(
      'Nov 27 10:00:18 mx1 postfix/qmgr[5]: 3F1A22C0A1C: from=<>, size=4122, nrcpt=1 (queue active)',
    );
    expect(ev.sender).toBe('');
    const sm = p().parse(
      '2026-11-27T10:00:03.000001+00:00 mx2 sm-mta[1]: 5ARA10aB004322: from=<>, size=2, class=0, nrcpts=1, proto=ESMTP, daemon=MTA, relay=[192.0.2.1]',
    );
    expect(sm.sender).toBe('');
    const ex = p().parse('2026-11-27 10:02:01 1TrBfO-0003Wx-Ni <= <> H=[192.0.2.1] P=esmtp S=2301');
    expect(ex.sender).toBe('');
  });

  it('returns a JSON-serializable object whose JSON round-trips', () => {
    const ev = p().parse('Nov 27 10:00:00 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]');
    expect(JSON.parse(JSON.stringify(ev))).toEqual(JSON.parse(JSON.stringify(ev)));
    expect(Object.keys(JSON.parse(JSON.stringify(ev)))).toEqual([
      'ts',
      'host',
      'program',
      'pid',
      'mta',
      'kind',
      'client_ip',
      'raw',
    ]);
  });

  it('does not set id (the shipper does)', () => {
    expect(
      p().parse('Nov 27 10:00:00 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]').id,
    ).toBeUndefined();
  });
});

describe('syslog envelopes', () => {
  it('takes local times in the configured zone, with DST', () => {
    const berlin = new LineParser({ year: 2026, timezone: 'Europe/Berlin' });
    expect(berlin.parse('Jul  1 12:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]').ts).toBe(
      '2026-07-01T12:00:00+02:00',
    );
    const b2 = new LineParser({ year: 2026, timezone: 'Europe/Berlin' });
    expect(b2.parse('Jan  1 12:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]').ts).toBe(
      '2026-01-01T12:00:00+01:00',
    );
    const ny = new LineParser({ year: 2026, timezone: 'America/New_York', host: 'ex' });
    expect(ny.parse('2026-11-27 10:02:00 1TrBfO-0003Wx-Nj Completed').ts).toBe('2026-11-27T10:02:00-05:00');
  });

  it('uses --host only for lines without one', () => {
    const q = new LineParser({ host: 'mx-exim', year: 2026, timezone: 'UTC' });
    expect(q.parse('2026-11-27 10:02:00 1TrBfO-0003Wx-Nj Completed').host).toBe('mx-exim');
    expect(q.parse('Nov 27 10:00:00 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]').host).toBe('mx1');
  });

  it('rejects an unknown time zone at construction', () => {
    expect(() => new LineParser({ timezone: 'Mars/Olympus' })).toThrow(RangeError);
  });
});

describe('cut lines', () => {
  it('a reject cut before its from=/to= tail is unknown, not a reject with a guessed reason', () => {
    const full =
      'Nov 27 10:00:03 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 550 5.1.1 <a@example.org>: Recipient address rejected: User unknown in local recipient table; from=<s@x.example> to=<a@example.org> proto=ESMTP helo=<x>';
    const cut = full.slice(0, full.indexOf('User unk') + 8);
    const ev = p().parse(cut);
    expect(ev.kind).toBe('unknown');
    expect(ev.raw).toBe(cut);
    expect(ev.mta).toBe('postfix');
    expect(p().parse(full).reason).toBe('user_unknown');
  });

  it('a delivery cut before status= is unknown', () => {
    const line =
      'Nov 27 10:00:19 mx1 postfix/smtp[6789]: 3F1A22C0A1B: to=<nosuch@example.net>, relay=mx.example.net[198.51.100.7]:25, delay=0.9, delays=0.1/0/0.3/0.5, dsn=5.1.1, stat';
    expect(p().parse(line).kind).toBe('unknown');
  });
});

describe('milters refusing unknown recipients', () => {
  it.each([
    'Nov 27 10:00:16 mx1 postfix/smtpd[1]: NOQUEUE: milter-reject: RCPT from unknown[192.0.2.1]: 550 5.1.1 <a@example.org>: User unknown; from=<s@x.example> to=<a@example.org> proto=ESMTP helo=<x>',
    '2026-11-27T10:00:03.000001+00:00 mx2 sm-mta[1]: 5ARA10aB004359: Milter: to=<a@example.org>, reject=550 5.1.1 <a@example.org>... User unknown',
  ])('%s', (line) => {
    const ev = p().parse(line);
    expect(ev).toMatchObject({
      kind: 'reject',
      reason: 'user_unknown',
      recipient: 'a@example.org',
      command: 'RCPT',
    });
  });
});
