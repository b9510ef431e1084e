// Sendmail (sm-mta, sendmail, sm-msp-queue, sm-acceptingconnections): `QID: key=value, ...` lines,
// SMTP-time rejections (`ruleset=... reject=`, `<rcpt>... User unknown`) and session events.
import type { MailEvent } from '../event/mail-event.js';
import {
  leadingInt,
  normalizeIp,
  sendmailDelay,
  setRecipients,
  setReply,
  setSendmailRelay,
  unbracket,
} from './fields.js';
import { isUserUnknownText, sendmailReason } from './reason.js';

const QID = /^(?:[0-9A-Za-z]{8,20}|NOQUEUE)$/;

const COMMAND_OF_RULESET: Record<string, string> = {
  check_relay: 'CONNECT',
  check_mail: 'MAIL',
  check_rcpt: 'RCPT',
  check_data: 'DATA',
  check_eoh: 'DATA',
  check_eom: 'DATA',
  check_compat: 'RCPT',
  check_etrn: 'ETRN',
  check_expn: 'EXPN',
  check_vrfy: 'VRFY',
};

export function parseSendmail(ev: MailEvent, msg: string): undefined {
  ev.mta = 'sendmail';
  let rest = msg;
  let colon = rest.indexOf(': ');
  if (colon >= 7 && colon <= 20) {
    const q = rest.slice(0, colon);
    if (QID.test(q)) {
      if (q !== 'NOQUEUE') ev.queue_id = q;
      rest = rest.slice(colon + 2);
      // `QID: NEWQID: DSN: ...`: the second id is the notification the MTA created
      colon = rest.indexOf(': ');
      if (colon >= 8 && colon <= 20) {
        const q2 = rest.slice(0, colon);
        if (q !== 'NOQUEUE' && QID.test(q2) && q2 !== 'NOQUEUE' && /\d/.test(q2)) {
          const after = rest.slice(colon + 2);
          if (isNotice(after)) return notice(ev, after, q2);
        }
      }
    }
  }
  const c0 = rest.charCodeAt(0);
  if (c0 === 102 && rest.startsWith('from=')) return from(ev, rest);
  if (c0 === 116 && rest.startsWith('to=')) return delivery(ev, rest);
  if (c0 === 114 && rest.startsWith('ruleset=')) return ruleset(ev, rest);
  if (c0 === 60 || rest.indexOf('... ') !== -1) {
    if (addressReply(ev, rest)) return;
  }
  if (isNotice(rest)) return notice(ev, rest, undefined);
  if (rest.startsWith('lost input channel from ')) return lostInput(ev, rest);
  if (rest.startsWith('timeout waiting for input from ')) return timeout(ev, rest);
  if (rest.startsWith('AUTH failure (')) return authFailure(ev, rest);
  if (rest.startsWith('AUTH=server, ')) return auth(ev, rest);
  if (rest.startsWith('STARTTLS=')) return starttls(ev, rest);
  if (rest.startsWith('Milter') || rest.startsWith('milter=')) return milter(ev, rest);
  if (rest.startsWith('Possible SMTP RCPT flood')) {
    ev.kind = 'rate_limited';
    ev.text = rest;
    return;
  }
  if (rest.startsWith('SYSERR')) {
    ev.kind = 'error';
    ev.text = rest;
    return;
  }
  if (rest.startsWith('collect: ')) return collect(ev, rest);
  if (rest.startsWith('rejecting commands from ')) return pregreet(ev, rest);
  if (rest.startsWith('tcpwrappers (')) return tcpwrappers(ev, rest);
  if (
    rest.startsWith('starting daemon') ||
    rest.startsWith('rejecting connections on daemon') ||
    rest.startsWith('accepting connections again') ||
    rest.startsWith('restarting ') ||
    rest.startsWith('stopping daemon') ||
    rest.startsWith('daemon ') ||
    rest.startsWith('alias database ') ||
    rest.startsWith('My unqualified host name') ||
    rest.startsWith('unable to qualify my own domain name') ||
    / aliases, longest \d+ bytes, /.test(rest)
  )
    return daemon(ev, rest);
  if (rest === 'discarded') {
    ev.kind = 'filter';
    ev.filter_action = 'discard';
    return;
  }
  const di = rest.indexOf(' did not issue ');
  if (di !== -1) return noMail(ev, rest, di);
  hostPrefixed(ev, rest);
}

/** key=value list: `from=<s>, size=418, class=0, nrcpts=1, msgid=<m>, ..., relay=host [ip]`. Calls back with each pair. */
function eachPair(rest: string, fn: (key: string, value: string, end: number) => boolean): undefined {
  let p = 0;
  while (p < rest.length) {
    const eq = rest.indexOf('=', p);
    if (eq === -1) {
      fn(rest.slice(p), '', rest.length);
      return;
    }
    const comma = rest.indexOf(', ', p);
    if (comma !== -1 && comma < eq) {
      // a flag without value (`discard`, `quarantine`)
      if (!fn(rest.slice(p, comma), '', comma)) return;
      p = comma + 2;
      continue;
    }
    const key = rest.slice(p, eq);
    let e: number;
    if (key === 'stat' || key === 'reject' || key === 'quarantine' || key === 'reply') {
      e = key === 'reply' ? rest.indexOf(', ', eq) : -1;
      if (e === -1) e = rest.length;
    } else if (rest.charCodeAt(eq + 1) === 60) {
      // `<a>`, `<a>,<b>` or `<a> (uid/gid)`: the value ends at the first `, ` after a `>`
      const gt = rest.indexOf('>', eq + 1);
      e = gt === -1 ? -1 : rest.indexOf(', ', gt);
      if (e === -1) e = rest.length;
    } else {
      e = rest.indexOf(', ', eq + 1);
      if (e === -1) e = rest.length;
    }
    if (!fn(key, rest.slice(eq + 1, e), e)) return;
    p = e + 2;
  }
}

/** `from=<s>, size=N, class=0, nrcpts=N, msgid=<m>, bodytype=8BITMIME, proto=ESMTP, daemon=MTA, relay=host [ip]` */
function from(ev: MailEvent, rest: string): undefined {
  // relay= is always last: a line without it was cut
  if (rest.indexOf(', relay=') === -1) return;
  ev.kind = 'queued';
  eachPair(rest, (k, v) => {
    switch (k) {
      case 'from':
        ev.sender = unbracket(v);
        break;
      case 'size':
        ev.size = leadingInt(v);
        break;
      case 'nrcpts':
        ev.nrcpt = leadingInt(v);
        break;
      case 'msgid':
        ev.message_id = unbracket(v);
        break;
      case 'proto':
        ev.proto = v;
        break;
      case 'relay':
        ev.relay = v;
        setSendmailRelay(ev, v);
        break;
      case 'reject':
        setReply(ev, v);
        ev.text = v;
        break;
    }
    return true;
  });
}

/** `to=<r>, ctladdr=<c> (0/0), delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120, relay=mx. [ip], dsn=2.0.0, stat=Sent (...)` */
function delivery(ev: MailEvent, rest: string): undefined {
  ev.kind = 'delivery';
  let stat: string | undefined;
  eachPair(rest, (k, v) => {
    switch (k) {
      case 'to':
        setRecipients(ev, v);
        break;
      case 'delay':
        ev.delay = sendmailDelay(v);
        break;
      case 'relay':
        ev.relay = v;
        break;
      case 'dsn':
        ev.dsn = v;
        break;
      case 'reply':
        setReply(ev, v);
        break;
      case 'stat':
        stat = v;
        break;
    }
    return true;
  });
  if (stat === undefined) {
    // stat= is always last: a line without it was cut
    ev.kind = 'unknown';
    return;
  }
  const paren = stat.indexOf(' (');
  const word = paren === -1 ? stat : stat.slice(0, paren);
  const dsn = ev.dsn;
  if (word === 'Sent') {
    ev.status = 'sent';
    ev.text = paren === -1 ? stat : stat.slice(paren + 2, stat.endsWith(')') ? -1 : undefined);
  } else if (stat.startsWith('Deferred')) {
    ev.status = 'deferred';
    ev.text = stat.length > 10 ? stat.slice(10) : stat;
  } else if (word === 'queued' || word === 'Queued') {
    ev.status = 'queued';
    ev.text = stat;
  } else {
    ev.status = dsn?.startsWith('4') ? 'deferred' : dsn?.startsWith('2') ? 'sent' : 'bounced';
    ev.text = stat;
  }
  if (ev.reply_code === undefined) {
    const m = /^([245]\d\d)[ -]/.exec(ev.text ?? '');
    if (m) ev.reply_code = +m[1]!;
  }
  if (ev.status !== 'sent' && isUserUnknownText(stat) && (dsn === undefined || dsn.startsWith('5.1.')))
    ev.reason = 'user_unknown';
}

/** `ruleset=check_rcpt, arg1=<r>, relay=host [ip], reject=550 5.7.1 <r>... Relaying denied` */
function ruleset(ev: MailEvent, rest: string): undefined {
  let rs: string | undefined;
  let arg1: string | undefined;
  let arg2: string | undefined;
  let rejectText: string | undefined;
  let flag: string | undefined;
  eachPair(rest, (k, v) => {
    switch (k) {
      case 'ruleset':
        rs = v;
        break;
      case 'arg1':
        arg1 = v;
        break;
      case 'arg2':
        arg2 = v;
        break;
      case 'relay':
        setSendmailRelay(ev, v);
        break;
      case 'reject':
        rejectText = v;
        break;
      case 'discard':
        flag = 'discard';
        break;
      case 'quarantine':
        flag = 'quarantine';
        ev.text = v;
        break;
    }
    return true;
  });
  if (rs === undefined) return;
  ev.command = COMMAND_OF_RULESET[rs] ?? rs;
  if (rs === 'check_rcpt' && arg1 !== undefined) ev.recipient = unbracket(arg1);
  else if (rs === 'check_mail' && arg1 !== undefined) ev.sender = unbracket(arg1);
  else if (rs === 'check_relay') {
    if (ev.client_ip === undefined && arg2 !== undefined) {
      const ip = normalizeIp(arg2);
      if (ip !== undefined) ev.client_ip = ip;
    }
    if (ev.client_host === undefined && arg1 !== undefined && arg1 !== 'unknown' && !arg1.startsWith('['))
      ev.client_host = arg1;
  }
  if (rejectText !== undefined) {
    ev.kind = 'reject';
    const used = setReply(ev, rejectText);
    const text = used === 0 ? rejectText : rejectText.slice(used + 1);
    ev.text = text;
    ev.reason = sendmailReason(rs, text, ev.reply_code);
  } else if (flag !== undefined) {
    ev.kind = 'filter';
    ev.filter_action = flag;
  }
}

const ADDR_REPLY = /^(<[^>]{0,1024}>|[^\s<>]{1,1024})\.\.\. /;

/** `<r>... User unknown`, `<r>... Relaying denied` (SMTP-time replies logged with the address). */
function addressReply(ev: MailEvent, rest: string): boolean {
  const m = ADDR_REPLY.exec(rest);
  if (!m) return false;
  const addr = unbracket(m[1]!);
  const text = rest.slice(m[0].length);
  ev.text = text;
  if (isUserUnknownText(text)) {
    ev.kind = 'reject';
    ev.reason = 'user_unknown';
    ev.command = 'RCPT';
    ev.recipient = addr;
    return true;
  }
  const reason = sendmailReason(undefined, text, undefined);
  if (reason !== 'other' || /[Rr]ejected|[Dd]enied|[Rr]efused/.test(text)) {
    ev.kind = 'reject';
    ev.reason = reason;
    ev.recipient = addr;
    ev.command = 'RCPT';
    return true;
  }
  ev.kind = 'warning';
  ev.recipient = addr;
  return true;
}

function isNotice(rest: string): boolean {
  return (
    rest.startsWith('DSN: ') ||
    rest.startsWith('return to sender: ') ||
    rest.startsWith('sender notify: ') ||
    rest.startsWith('postmaster notify: ')
  );
}

/** `DSN: User unknown` (after `QID: NEWQID: `), `return to sender: ...`, `postmaster notify: ...` */
function notice(ev: MailEvent, rest: string, newQid: string | undefined): undefined {
  const c = rest.indexOf(': ');
  ev.kind = 'bounce_notice';
  if (newQid !== undefined) ev.bounce_queue_id = newQid;
  const text = rest.slice(c + 2);
  ev.text = text;
  ev.status = rest.startsWith('DSN') ? 'dsn' : rest.slice(0, c).replaceAll(' ', '-');
  if (isUserUnknownText(text)) ev.reason = 'user_unknown';
}

/** `lost input channel from host [ip] to MTA after rcpt` */
function lostInput(ev: MailEvent, rest: string): undefined {
  const to = rest.lastIndexOf(' to ');
  const host = to > 24 ? rest.slice(24, to) : rest.slice(24);
  setSendmailRelay(ev, host);
  ev.kind = 'lost_connection';
  const after = rest.lastIndexOf(' after ');
  if (after !== -1 && after > to) ev.command = rest.slice(after + 7).toUpperCase();
}

/** `timeout waiting for input from host [ip] during server cmd read` */
function timeout(ev: MailEvent, rest: string): undefined {
  const d = rest.lastIndexOf(' during ');
  setSendmailRelay(ev, d === -1 ? rest.slice(31) : rest.slice(31, d));
  ev.kind = 'timeout';
  if (d !== -1) ev.text = rest.slice(d + 8);
}

/** `AUTH failure (LOGIN): authentication failure (-13) SASL(-13): ..., user=u, relay=host [ip]` */
function authFailure(ev: MailEvent, rest: string): undefined {
  ev.kind = 'auth_failure';
  const close = rest.indexOf('): ', 14);
  if (close !== -1) ev.sasl_method = rest.slice(14, close);
  const r = rest.lastIndexOf(', relay=');
  let textEnd = rest.length;
  if (r !== -1) {
    setSendmailRelay(ev, rest.slice(r + 8));
    textEnd = r;
  }
  const u = rest.lastIndexOf(', user=', textEnd);
  if (u !== -1) {
    ev.sasl_username = rest.slice(u + 7, textEnd);
    textEnd = u;
  }
  if (close !== -1) ev.text = rest.slice(close + 3, textEnd);
}

/** `AUTH=server, relay=host [ip], authid=u, mech=PLAIN, bits=0` */
function auth(ev: MailEvent, rest: string): undefined {
  ev.kind = 'auth';
  eachPair(rest, (k, v) => {
    if (k === 'relay') setSendmailRelay(ev, v);
    else if (k === 'authid') ev.sasl_username = v;
    else if (k === 'mech') ev.sasl_method = v;
    return true;
  });
}

/** `STARTTLS=server, relay=host [ip], version=TLSv1.3, verify=NO, cipher=..., bits=256/256` */
function starttls(ev: MailEvent, rest: string): undefined {
  ev.kind = 'tls';
  const server = rest.startsWith('STARTTLS=server');
  eachPair(rest, (k, v) => {
    if (k === 'relay') {
      if (server) setSendmailRelay(ev, v);
      else ev.relay = v;
    }
    return true;
  });
  ev.text = rest;
}

/** `Milter: data, reject=554 5.7.1 ...`, `milter=name, action=data, reject=...`, `Milter add: header: ...` */
function milter(ev: MailEvent, rest: string): undefined {
  ev.kind = 'milter';
  const r = rest.indexOf('reject=');
  if (r !== -1) {
    const text = rest.slice(r + 7);
    const used = setReply(ev, text);
    ev.kind = 'reject';
    ev.filter_action = 'milter-reject';
    ev.text = used === 0 ? text : text.slice(used + 1);
    const to = /(?:^|[ ,])to=(<[^>]{0,1024}>|[^,\s]{1,1024})/.exec(rest);
    if (to) ev.recipient = unbracket(to[1]!);
    const fr = /(?:^|[ ,])from=(<[^>]{0,1024}>|[^,\s]{1,1024})/.exec(rest);
    if (fr) ev.sender = unbracket(fr[1]!);
    const a = /action=(\w{1,20})/.exec(rest) ?? /^Milter: (\w{1,20}),/.exec(rest);
    const stage = a?.[1]?.toLowerCase();
    ev.command =
      stage === 'data' || stage === 'eom' || stage === 'body'
        ? 'DATA'
        : to
          ? 'RCPT'
          : fr
            ? 'MAIL'
            : stage?.toUpperCase();
    ev.reason = ev.command === 'RCPT' && isUserUnknownText(ev.text) ? 'user_unknown' : 'policy';
    return;
  }
  ev.text = rest;
  if (/, discard$|discard$/.test(rest)) {
    ev.kind = 'filter';
    ev.filter_action = 'milter-discard';
  } else if (rest.indexOf('quarantine=') !== -1) {
    ev.kind = 'filter';
    ev.filter_action = 'milter-quarantine';
  }
}

/** `collect: premature EOM: unexpected close`, `collect: I/O error on connection from host [ip], from=<s>` */
function collect(ev: MailEvent, rest: string): undefined {
  ev.kind = 'lost_connection';
  ev.command = 'DATA';
  ev.text = rest.slice(9);
  if (rest.startsWith('relay=', 9)) {
    // 8.17: `collect: relay=[ip], from=<s>, info=unexpected close`
    eachPair(rest.slice(9), (k, v) => {
      if (k === 'relay') setSendmailRelay(ev, v);
      else if (k === 'from') ev.sender = unbracket(v);
      else if (k === 'info') ev.text = v;
      return true;
    });
    return;
  }
  const f = rest.indexOf(' on connection from ');
  if (f !== -1) {
    let e = rest.indexOf(', ', f + 20);
    if (e === -1) e = rest.length;
    setSendmailRelay(ev, rest.slice(f + 20, e));
    const s = /, (?:from|sender)=(<[^>]{0,1024}>|\S{1,1024})$/.exec(rest);
    if (s) ev.sender = unbracket(s[1]!);
  }
}

/** `rejecting commands from host [ip] due to pre-greeting traffic after 0 seconds` */
function pregreet(ev: MailEvent, rest: string): undefined {
  const d = rest.indexOf(' due to ');
  if (d === -1 || rest.indexOf('pre-greeting', d) === -1) return;
  setSendmailRelay(ev, rest.slice(24, d));
  ev.kind = 'pregreet';
  ev.text = rest.slice(d + 8);
}

/** `tcpwrappers (host, ip) rejection` */
function tcpwrappers(ev: MailEvent, rest: string): undefined {
  const m = /^tcpwrappers \(([^,]{0,255}), ([^)]{1,64})\) rejection/.exec(rest);
  if (!m) return;
  if (m[1] !== 'unknown' && m[1] !== '') ev.client_host = m[1];
  const ip = normalizeIp(m[2]!);
  if (ip !== undefined) ev.client_ip = ip;
  ev.kind = 'reject';
  ev.reason = 'client_rejected';
  ev.command = 'CONNECT';
}

function daemon(ev: MailEvent, rest: string): undefined {
  ev.kind = 'daemon';
  ev.text = rest;
  const la = /load average: (\d+)/.exec(rest);
  if (la) ev.count = +la[1]!;
}

/** `host [ip] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA` */
function noMail(ev: MailEvent, rest: string, at: number): undefined {
  setSendmailRelay(ev, rest.slice(0, at));
  ev.kind = 'no_mail';
  ev.text = rest.slice(at + 1);
}

/** `host [ip]: possible SMTP attack: command=AUTH, count=6`, `host [ip]: probable open proxy: command=GET /`, `host [ip]: VRFY x [rejected]` */
function hostPrefixed(ev: MailEvent, rest: string): undefined {
  const b = rest.indexOf(']: ');
  if (b === -1 || b > 300) return;
  const host = rest.slice(0, b + 1);
  if (host.indexOf('[') === -1) return;
  const text = rest.slice(b + 3);
  ev.text = text;
  if (text.startsWith('possible SMTP attack') || text.startsWith('probable open proxy')) {
    setSendmailRelay(ev, host);
    ev.kind = 'protocol_error';
    const c = /command=([^,]{0,60})/.exec(text);
    if (c && text.startsWith('possible')) ev.command = c[1]!.split(' ')[0]!.toUpperCase();
    const n = /count=(\d+)/.exec(text);
    if (n) ev.count = +n[1]!;
    return;
  }
  const vr = /^(VRFY|EXPN) (.{0,1024}) \[rejected\]$/.exec(text);
  if (vr) {
    setSendmailRelay(ev, host);
    ev.kind = 'reject';
    ev.reason = 'policy';
    ev.command = vr[1];
    ev.recipient = unbracket(vr[2]!);
    return;
  }
  if (
    /^(?:Too many|too many)/.test(text) ||
    text.indexOf('bad command') !== -1 ||
    text.indexOf('Bad command') !== -1
  ) {
    setSendmailRelay(ev, host);
    ev.kind = 'protocol_error';
    return;
  }
  // other per-client notes (`[ip]: ETRN example.org`, ...)
  setSendmailRelay(ev, host);
  ev.kind = 'warning';
}
