import type { Decision, Detection } from '../../src/decision/decision.js';
import type { MailEvent } from '../../src/event/mail-event.js';

// MailEvents shaped as the parser makes them, for store tests that need known content.
// One message crossing three hosts (MX -> filter -> mailbox) and a harvest from a /24.

export const TRACE_MESSAGE_ID = '20261127101500.ABC123@sender.example.org';

export function traceEvents(): MailEvent[] {
  const base = { mta: 'postfix' as const };
  return [
    {
      ...base,
      id: 'mx1:1:100',
      ts: '2026-11-27T10:15:00.100000+01:00',
      host: 'mx1',
      program: 'postfix/smtpd',
      pid: 101,
      kind: 'connect',
      client_ip: '192.0.2.10',
      client_host: 'out.sender.example.org',
      raw: 'Nov 27 10:15:00 mx1 postfix/smtpd[101]: connect from out.sender.example.org[192.0.2.10]',
    },
    {
      ...base,
      id: 'mx1:1:200',
      ts: '2026-11-27T10:15:00.200000+01:00',
      host: 'mx1',
      program: 'postfix/smtpd',
      pid: 101,
      kind: 'client',
      queue_id: 'AAA111',
      client_ip: '192.0.2.10',
      client_host: 'out.sender.example.org',
      raw: 'Nov 27 10:15:00 mx1 postfix/smtpd[101]: AAA111: client=out.sender.example.org[192.0.2.10]',
    },
    {
      ...base,
      id: 'mx1:1:300',
      ts: '2026-11-27T10:15:00.300000+01:00',
      host: 'mx1',
      program: 'postfix/cleanup',
      pid: 102,
      kind: 'message_id',
      queue_id: 'AAA111',
      message_id: TRACE_MESSAGE_ID,
      raw: `Nov 27 10:15:00 mx1 postfix/cleanup[102]: AAA111: message-id=<${TRACE_MESSAGE_ID}>`,
    },
    {
      ...base,
      id: 'mx1:1:400',
      ts: '2026-11-27T10:15:00.400000+01:00',
      host: 'mx1',
      program: 'postfix/qmgr',
      pid: 103,
      kind: 'queued',
      queue_id: 'AAA111',
      sender: 'alice@sender.example.org',
      size: 2048,
      nrcpt: 1,
      raw: 'Nov 27 10:15:00 mx1 postfix/qmgr[103]: AAA111: from=<alice@sender.example.org>, size=2048, nrcpt=1 (queue active)',
    },
    {
      ...base,
      id: 'mx1:1:500',
      ts: '2026-11-27T10:15:01.000000+01:00',
      host: 'mx1',
      program: 'postfix/smtp',
      pid: 104,
      kind: 'delivery',
      queue_id: 'AAA111',
      recipient: 'bob@example.test',
      relay: 'filter1[10.0.0.2]:10024',
      status: 'sent',
      dsn: '2.0.0',
      delay: 0.9,
      raw: 'Nov 27 10:15:01 mx1 postfix/smtp[104]: AAA111: to=<bob@example.test>, relay=filter1[10.0.0.2]:10024, delay=0.9, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as BBB222)',
      text: '250 2.0.0 Ok: queued as BBB222',
    },
    {
      ...base,
      id: 'flt:1:100',
      ts: '2026-11-27T10:15:00.950000+01:00',
      host: 'filter1',
      program: 'postfix/smtpd',
      pid: 201,
      kind: 'client',
      queue_id: 'BBB222',
      client_ip: '10.0.0.1',
      client_host: 'mx1',
      raw: 'Nov 27 10:15:00 filter1 postfix/smtpd[201]: BBB222: client=mx1[10.0.0.1]',
    },
    {
      ...base,
      id: 'flt:1:200',
      ts: '2026-11-27T10:15:00.960000+01:00',
      host: 'filter1',
      program: 'postfix/cleanup',
      pid: 202,
      kind: 'message_id',
      queue_id: 'BBB222',
      message_id: TRACE_MESSAGE_ID,
      raw: `Nov 27 10:15:00 filter1 postfix/cleanup[202]: BBB222: message-id=<${TRACE_MESSAGE_ID}>`,
    },
    {
      ...base,
      id: 'flt:1:300',
      ts: '2026-11-27T10:15:02.000000+01:00',
      host: 'filter1',
      program: 'postfix/lmtp',
      pid: 203,
      kind: 'delivery',
      queue_id: 'BBB222',
      recipient: 'bob@example.test',
      relay: 'mbox1[10.0.0.3]:24',
      status: 'sent',
      dsn: '2.0.0',
      raw: 'Nov 27 10:15:02 filter1 postfix/lmtp[203]: BBB222: to=<bob@example.test>, relay=mbox1[10.0.0.3]:24, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as CCC333)',
      text: '250 2.0.0 Ok: queued as CCC333',
    },
    {
      ...base,
      id: 'mbx:1:100',
      ts: '2026-11-27T10:15:01.900000+01:00',
      host: 'mbox1',
      program: 'postfix/lmtpd',
      pid: 301,
      kind: 'client',
      queue_id: 'CCC333',
      client_ip: '10.0.0.2',
      raw: 'Nov 27 10:15:01 mbox1 postfix/smtpd[301]: CCC333: client=filter1[10.0.0.2]',
    },
    {
      ...base,
      id: 'mbx:1:200',
      ts: '2026-11-27T10:15:01.950000+01:00',
      host: 'mbox1',
      program: 'postfix/cleanup',
      pid: 302,
      kind: 'message_id',
      queue_id: 'CCC333',
      message_id: TRACE_MESSAGE_ID,
      raw: `Nov 27 10:15:01 mbox1 postfix/cleanup[302]: CCC333: message-id=<${TRACE_MESSAGE_ID}>`,
    },
    {
      ...base,
      id: 'mbx:1:300',
      ts: '2026-11-27T10:15:03.000000+01:00',
      host: 'mbox1',
      program: 'postfix/local',
      pid: 303,
      kind: 'delivery',
      queue_id: 'CCC333',
      recipient: 'bob@example.test',
      relay: 'local',
      status: 'sent',
      dsn: '2.0.0',
      raw: 'Nov 27 10:15:03 mbox1 postfix/local[303]: CCC333: to=<bob@example.test>, relay=local, dsn=2.0.0, status=sent (delivered to mailbox)',
    },
    // An unrelated message on mx1 that must not show up in the trace.
    {
      ...base,
      id: 'mx1:1:900',
      ts: '2026-11-27T10:16:00.000000+01:00',
      host: 'mx1',
      program: 'postfix/cleanup',
      pid: 102,
      kind: 'message_id',
      queue_id: 'ZZZ999',
      message_id: 'other@example.net',
      raw: 'Nov 27 10:16:00 mx1 postfix/cleanup[102]: ZZZ999: message-id=<other@example.net>',
    },
  ];
}

/** A harvest: `sources` addresses of 198.51.100.0/24 each try `perSource` unknown users on mx1. */
export function harvestEvents(
  sources: number,
  perSource: number,
  start = Date.parse('2026-11-27T09:00:00Z'),
): MailEvent[] {
  const out: MailEvent[] = [];
  for (let s = 0; s < sources; s++) {
    const ip = `198.51.100.${s + 1}`;
    for (let i = 0; i < perSource; i++) {
      const t = new Date(start + (s * perSource + i) * 1000).toISOString();
      const rcpt = `user${s}x${i}@example.test`;
      out.push({
        id: `mx1:harvest:${s}:${i}`,
        ts: t,
        host: 'mx1',
        program: 'postfix/smtpd',
        pid: 500 + s,
        mta: 'postfix',
        kind: 'reject',
        reason: 'user_unknown',
        command: 'RCPT',
        client_ip: ip,
        client_host: 'unknown',
        sender: `spam${s}@bad.example`,
        recipient: rcpt,
        reply_code: 550,
        dsn: '5.1.1',
        text: `<${rcpt}>: Recipient address rejected: User unknown in local recipient table`,
        raw: `Nov 27 09:00:00 mx1 postfix/smtpd[${500 + s}]: NOQUEUE: reject: RCPT from unknown[${ip}]: 550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in local recipient table; from=<spam${s}@bad.example> to=<${rcpt}> proto=ESMTP helo=<x>`,
      });
    }
  }
  return out;
}

export function decisionFor(target: string, over: Partial<Decision> = {}): Decision {
  return {
    id: `dec-${target}`,
    target,
    action: 'tempfail',
    reply: '450 4.7.1 Too many unknown recipients; try later',
    detector: 'dha_source',
    reason: 'user_unknown over threshold',
    confidence: 0.9,
    evidence: { counts: { user_unknown: 20 }, window_s: 600, sample_event_ids: ['mx1:harvest:0:0'] },
    created_at: '2026-11-27T09:10:00.000Z',
    expires_at: '2026-11-27T10:10:00.000Z',
    state: 'active',
    origin: 'dha_source',
    ...over,
  };
}

export function detectionFor(subject: string, over: Partial<Detection> = {}): Detection {
  return {
    id: `det-${subject}`,
    detector: 'dha_source',
    subject,
    subject_kind: 'ip',
    reason: 'user_unknown over threshold',
    confidence: 0.9,
    evidence: {
      counts: { user_unknown: 20 },
      window_s: 600,
      sample_event_ids: ['mx1:harvest:0:0'],
      hosts: ['mx1'],
    },
    ts: '2026-11-27T09:10:00.000Z',
    ...over,
  };
}
