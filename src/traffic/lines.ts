import type { MailEvent, Mta } from '../event/mail-event.js';

// One function per log line shape: each returns the MailEvent the parser produces for the line it
// renders, so the generator yields events (fast, for tests and benchmarks) and the same traffic as
// log files (for `replay`, the shipper and the parser). Lines carry RFC 3339 timestamps (rsyslog's
// high-precision format), so the round trip through the parser keeps exact times.

export interface Session {
  host: string;
  mta: Mta;
  pid: number;
  ip: string;
  clientHost: string;
  port: number;
  helo: string;
}

export interface LineOptions {
  /** Render raw lines (false: raw is '' — events only, less memory). */
  render: boolean;
}

type Fields = Omit<MailEvent, 'raw' | 'kind' | 'ts' | 'host' | 'program' | 'pid' | 'mta'>;

function ev(
  o: LineOptions,
  s: Pick<Session, 'host' | 'mta'>,
  program: string,
  pid: number,
  ms: number,
  kind: MailEvent['kind'],
  fields: Fields,
  msg: () => string,
): MailEvent {
  const ts = new Date(ms).toISOString();
  const e: MailEvent = { ts, host: s.host, program, pid, mta: s.mta, kind, ...fields, raw: '' };
  if (o.render) e.raw = `${ts} ${s.host} ${program}[${pid}]: ${msg()}`;
  return e;
}

const nam = (s: Session) => `${s.clientHost}[${s.ip}]`;
const rel = (s: Session) => `${s.clientHost} [${s.ip}]`;

// ---- postfix ----

export function pfConnect(o: LineOptions, s: Session, ms: number): MailEvent {
  return ev(
    o,
    s,
    'postfix/smtpd',
    s.pid,
    ms,
    'connect',
    { client_ip: s.ip, client_host: s.clientHost },
    () => `connect from ${nam(s)}`,
  );
}

export function pfRejectUnknown(
  o: LineOptions,
  s: Session,
  ms: number,
  sender: string,
  rcpt: string,
): MailEvent {
  return ev(
    o,
    s,
    'postfix/smtpd',
    s.pid,
    ms,
    'reject',
    {
      reason: 'user_unknown',
      command: 'RCPT',
      client_ip: s.ip,
      client_host: s.clientHost,
      sender,
      recipient: rcpt,
      reply_code: 550,
      dsn: '5.1.1',
      helo: s.helo,
    },
    () =>
      `NOQUEUE: reject: RCPT from ${nam(s)}: 550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in local recipient table; from=<${sender}> to=<${rcpt}> proto=ESMTP helo=<${s.helo}>`,
  );
}

export function pfClient(o: LineOptions, s: Session, ms: number, qid: string): MailEvent {
  return ev(
    o,
    s,
    'postfix/smtpd',
    s.pid,
    ms,
    'client',
    { queue_id: qid, client_ip: s.ip, client_host: s.clientHost },
    () => `${qid}: client=${nam(s)}`,
  );
}

export function pfQueued(
  o: LineOptions,
  s: Pick<Session, 'host' | 'mta'>,
  ms: number,
  qid: string,
  sender: string,
  size: number,
  nrcpt: number,
): MailEvent {
  return ev(
    o,
    s,
    'postfix/qmgr',
    1000,
    ms,
    'queued',
    { queue_id: qid, sender, size, nrcpt },
    () => `${qid}: from=<${sender}>, size=${size}, nrcpt=${nrcpt} (queue active)`,
  );
}

export function pfDisconnect(
  o: LineOptions,
  s: Session,
  ms: number,
  rcptOk: number,
  rcptTotal: number,
  data: boolean,
): MailEvent {
  const counts: Record<string, { ok: number; total: number }> = { ehlo: { ok: 1, total: 1 } };
  let cmds = 1;
  let ok = 1;
  if (rcptTotal > 0) {
    counts.mail = { ok: 1, total: 1 };
    counts.rcpt = { ok: rcptOk, total: rcptTotal };
    cmds += 1 + rcptTotal;
    ok += 1 + rcptOk;
  }
  if (data) {
    counts.data = { ok: 1, total: 1 };
    cmds++;
    ok++;
  }
  counts.quit = { ok: 1, total: 1 };
  counts.commands = { ok: ok + 1, total: cmds + 1 };
  const text = Object.entries(counts)
    .map(([k, v]) =>
      v.ok === v.total && k !== 'rcpt' && k !== 'commands' ? `${k}=${v.ok}` : `${k}=${v.ok}/${v.total}`,
    )
    .join(' ');
  return ev(
    o,
    s,
    'postfix/smtpd',
    s.pid,
    ms,
    'disconnect',
    { client_ip: s.ip, client_host: s.clientHost, command_counts: counts },
    () => `disconnect from ${nam(s)} ${text}`,
  );
}

export function pfPregreet(o: LineOptions, s: Session, ms: number): MailEvent {
  return ev(
    o,
    s,
    'postfix/postscreen',
    s.pid,
    ms,
    'pregreet',
    { client_ip: s.ip, client_port: s.port, count: 11 },
    () => `PREGREET 11 after 0.08 from [${s.ip}]:${s.port}: EHLO ${s.helo}\\r\\n`,
  );
}

export function pfLost(o: LineOptions, s: Session, ms: number, after: string): MailEvent {
  return ev(
    o,
    s,
    'postfix/smtpd',
    s.pid,
    ms,
    'lost_connection',
    { command: after, client_ip: s.ip, client_host: s.clientHost },
    () => `lost connection after ${after} from ${nam(s)}`,
  );
}

export function pfBounceNotice(
  o: LineOptions,
  s: Pick<Session, 'host' | 'mta'>,
  ms: number,
  qid: string,
  newQid: string,
  who: 'sender' | 'postmaster',
): MailEvent {
  return ev(
    o,
    s,
    'postfix/bounce',
    2000,
    ms,
    'bounce_notice',
    {
      queue_id: qid,
      status: 'non-delivery',
      bounce_queue_id: newQid,
      text: `${who} non-delivery notification`,
    },
    () => `${qid}: ${who} non-delivery notification: ${newQid}`,
  );
}

// ---- sendmail ----

export function smRejectUnknown(
  o: LineOptions,
  s: Session,
  ms: number,
  qid: string,
  rcpt: string,
): MailEvent {
  return ev(
    o,
    s,
    'sm-mta',
    s.pid,
    ms,
    'reject',
    {
      queue_id: qid,
      reason: 'user_unknown',
      command: 'RCPT',
      client_ip: s.ip,
      client_host: s.clientHost,
      recipient: rcpt,
      reply_code: 550,
      dsn: '5.1.1',
    },
    () =>
      `${qid}: ruleset=check_rcpt, arg1=<${rcpt}>, relay=${rel(s)}, reject=550 5.1.1 <${rcpt}>... User unknown`,
  );
}

export function smFrom(
  o: LineOptions,
  s: Session,
  ms: number,
  qid: string,
  sender: string,
  size: number,
  nrcpt: number,
  msgid: string,
): MailEvent {
  return ev(
    o,
    s,
    'sm-mta',
    s.pid,
    ms,
    'queued',
    {
      queue_id: qid,
      sender,
      size,
      nrcpt,
      message_id: msgid,
      proto: 'ESMTP',
      client_ip: s.ip,
      client_host: s.clientHost,
    },
    () =>
      `${qid}: from=<${sender}>, size=${size}, class=0, nrcpts=${nrcpt}, msgid=<${msgid}>, proto=ESMTP, daemon=MTA, relay=${rel(s)}`,
  );
}

export function smNoMail(o: LineOptions, s: Session, ms: number, qid: string): MailEvent {
  return ev(
    o,
    s,
    'sm-mta',
    s.pid,
    ms,
    'no_mail',
    { queue_id: qid, client_ip: s.ip, client_host: s.clientHost },
    () => `${qid}: ${rel(s)} did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA`,
  );
}
