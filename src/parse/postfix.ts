// Postfix: one function per message shape, dispatched on the first bytes of the message after the
// optional queue id. The daemon name (smtpd, postscreen, ...) only matters where two daemons share
// a prefix; multi-instance and service names (`postfix-out/smtp`, `postfix/submission/smtpd`)
// therefore need nothing special.
import type { MailEvent } from '../event/mail-event.js';
import {
  decimal,
  leadingInt,
  normalizeIp,
  setNamAddr,
  setRecipients,
  setReply,
  setReplyIn,
  toInt,
  unbracket,
} from './fields.js';
import { isUserUnknownText, postfixReason } from './reason.js';

/** Short (hex) and long (base-52, no vowels) Postfix queue ids, and NOQUEUE. */
const QID = /^(?:[0-9A-F]{5,15}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,20}|NOQUEUE)$/;

/** The daemon names Postfix logs under (the last component of `syslog_name/service`). */
export const POSTFIX_DAEMONS = new Set([
  'smtpd',
  'smtp',
  'lmtp',
  'local',
  'virtual',
  'pipe',
  'error',
  'retry',
  'discard',
  'cleanup',
  'qmgr',
  'oqmgr',
  'bounce',
  'defer',
  'trace',
  'postscreen',
  'dnsblog',
  'anvil',
  'tlsproxy',
  'tlsmgr',
  'master',
  'pickup',
  'trivial-rewrite',
  'verify',
  'scache',
  'showq',
  'flush',
  'proxymap',
  'proxywrite',
  'spawn',
  'qmqpd',
  'postfix-script',
  'postqueue',
  'postdrop',
  'postsuper',
  'postmap',
  'postalias',
  'postlog',
  'postmulti',
  'sendmail',
  'postconf',
  'postfix',
  'relay',
  'submission',
]);

export function parsePostfix(ev: MailEvent, msg: string): undefined {
  let rest = msg;
  const colon = msg.indexOf(': ');
  if (colon >= 5 && colon <= 20) {
    const q = msg.slice(0, colon);
    if (QID.test(q)) {
      if (q !== 'NOQUEUE') ev.queue_id = q;
      rest = msg.slice(colon + 2);
    }
  }
  ev.mta = 'postfix';
  switch (rest.charCodeAt(0)) {
    case 116: // t
      if (rest.startsWith('to=')) return delivery(ev, rest);
      if (rest.startsWith('timeout after ')) return afterCommand(ev, rest, 14, 'timeout');
      if (rest.startsWith('too many errors after ')) return afterCommand(ev, rest, 22, 'protocol_error');
      if (rest.startsWith('table ') && rest.endsWith('has changed -- restarting')) return daemon(ev, rest);
      if (rest.startsWith('terminating on signal') || rest.startsWith('the Postfix mail system'))
        return daemon(ev, rest);
      return;
    case 99: // c
      if (rest.startsWith('connect from ')) return connect(ev, rest, 13);
      if (rest.startsWith('client=')) return client(ev, rest);
      if (rest.startsWith('connect to ')) return outbound(ev, rest);
      if (rest.startsWith('cache ')) {
        ev.kind = 'stats';
        ev.text = rest;
        return;
      }
      if (rest.startsWith('conversation with ')) return outbound(ev, rest);
      return;
    case 100: // d
      if (rest.startsWith('disconnect from ')) return disconnect(ev, rest);
      if (rest.startsWith('daemon started')) return daemon(ev, rest);
      if (rest.startsWith('discard: ')) return action(ev, rest, 9, 'discard');
      return;
    case 102: // f
      if (rest.startsWith('from=')) return from(ev, rest);
      if (rest.startsWith('fatal: ')) return problem(ev, rest, 7, 'error');
      if (rest.startsWith('filter: ')) return action(ev, rest, 8, 'filter');
      return;
    case 114: // r
      if (rest.startsWith('reject: ')) return reject(ev, rest, 8, undefined);
      if (rest === 'removed') {
        ev.kind = 'removed';
        return;
      }
      if (rest.startsWith('redirect: ')) return action(ev, rest, 10, 'redirect');
      if (rest.startsWith('reject_warning: ')) return action(ev, rest, 16, 'reject_warning');
      if (rest.startsWith('resent-message-id=')) return messageId(ev, rest, 18);
      if (rest.startsWith('reload ')) return daemon(ev, rest);
      if (rest.startsWith('refreshing the Postfix')) return daemon(ev, rest);
      return;
    case 109: // m
      if (rest.startsWith('message-id=')) return messageId(ev, rest, 11);
      if (rest.startsWith('milter-reject: ')) return reject(ev, rest, 15, 'milter-reject');
      if (rest.startsWith('milter-')) {
        const c = rest.indexOf(': ');
        if (c > 7 && c < 30) return action(ev, rest, c + 2, rest.slice(0, c));
      }
      return;
    case 119: // w
      if (rest.startsWith('warning: ')) return warning(ev, rest);
      if (rest.startsWith('warn: ')) return action(ev, rest, 6, 'warn');
      return;
    case 108: // l
      if (rest.startsWith('lost connection after ')) return afterCommand(ev, rest, 22, 'lost_connection');
      if (rest.startsWith('lost connection with ')) return outbound(ev, rest);
      return;
    case 105: // i
      if (rest.startsWith('info: ')) return action(ev, rest, 6, 'info');
      if (rest.startsWith('improper command pipelining after '))
        return afterCommand(ev, rest, 34, 'protocol_error');
      return;
    case 110: // n
      if (rest.startsWith('non-SMTP command from ')) return nonSmtp(ev, rest, 22);
      return;
    case 117: // u
      if (rest.startsWith('uid=')) return pickup(ev, rest);
      return;
    case 115: // s
      if (rest.startsWith('sender ')) return notification(ev, rest);
      if (rest.startsWith('statistics: ')) return anvil(ev, rest);
      if (rest.startsWith('starting the Postfix') || rest.startsWith('stopping the Postfix'))
        return daemon(ev, rest);
      return;
    case 112: // p
      if (rest.startsWith('postmaster ')) return notification(ev, rest);
      if (rest.startsWith('panic: ')) return problem(ev, rest, 7, 'error');
      if (rest.startsWith('proxy-reject: ')) return reject(ev, rest, 14, 'proxy-reject');
      return;
    case 104: // h
      if (rest.startsWith('hold: ')) return action(ev, rest, 6, 'hold');
      if (rest.startsWith('host ')) return outbound(ev, rest);
      return;
    case 101: // e
      if (rest.startsWith('error: ')) return problem(ev, rest, 7, 'error');
      if (rest.startsWith('enabling PIX')) return outbound(ev, rest);
      return;
    case 97: // a
      if (rest.startsWith('addr ')) return dnsblog(ev, rest);
      return;
    case 67: // C
      if (rest.startsWith('CONNECT from ')) return psConnect(ev, rest);
      if (rest.startsWith('COMMAND PIPELINING ')) return psVerdict(ev, rest, 'protocol_error');
      if (rest.startsWith('COMMAND ')) return psVerdict(ev, rest, 'postscreen');
      if (rest.startsWith('Cannot start TLS')) return outbound(ev, rest);
      return;
    case 68: // D
      if (rest.startsWith('DISCONNECT ')) return psVerdict(ev, rest, 'disconnect');
      if (rest.startsWith('DENYLISTED ')) return psVerdict(ev, rest, 'postscreen');
      if (rest.startsWith('DNSBL rank ')) return psVerdict(ev, rest, 'postscreen');
      return;
    case 80: // P
      if (rest.startsWith('PASS ')) return psVerdict(ev, rest, 'postscreen');
      if (rest.startsWith('PREGREET ')) return psVerdict(ev, rest, 'pregreet');
      return;
    case 72: // H
      if (rest.startsWith('HANGUP ')) return psVerdict(ev, rest, 'postscreen');
      return;
    case 78: // N
      if (rest.startsWith('NON-SMTP COMMAND ')) return psVerdict(ev, rest, 'protocol_error');
      return;
    case 66: // B
      if (rest.startsWith('BARE NEWLINE ')) return psVerdict(ev, rest, 'protocol_error');
      if (rest.startsWith('BLACKLISTED ') || rest.startsWith('BLOCKLISTED '))
        return psVerdict(ev, rest, 'postscreen');
      return;
    case 87: // W
      if (rest.startsWith('WHITELIST')) return psVerdict(ev, rest, 'postscreen');
      return;
    case 65: // A
      if (rest.startsWith('ALLOWLIST')) return psVerdict(ev, rest, 'postscreen');
      if (rest.startsWith('Anonymous TLS connection')) return tls(ev, rest);
      return;
    case 85: // U
    case 84: // T
    case 86: // V
      if (rest.indexOf(' TLS connection ') !== -1) return tls(ev, rest);
      return;
    case 83: // S
      if (rest.startsWith('SSL_accept error from ') || rest.startsWith('SSL_connect error'))
        return tls(ev, rest);
      return;
  }
}

function daemon(ev: MailEvent, rest: string): undefined {
  ev.kind = 'daemon';
  ev.text = rest;
}

function problem(ev: MailEvent, rest: string, skip: number, kind: 'error'): undefined {
  ev.kind = kind;
  ev.text = rest.slice(skip);
}

/** `connect from host[ip]` (`:port` with smtpd_client_port_logging). */
function connect(ev: MailEvent, rest: string, at: number): undefined {
  if (!setNamAddr(ev, rest, at, rest.length)) return;
  ev.kind = 'connect';
}

/** `disconnect from host[ip] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4` */
function disconnect(ev: MailEvent, rest: string): undefined {
  let end = rest.indexOf(' ', 16);
  if (end === -1) end = rest.length;
  if (!setNamAddr(ev, rest, 16, end)) return;
  ev.kind = 'disconnect';
  if (end < rest.length) {
    const counts: Record<string, { ok: number; total: number }> = {};
    let p = end + 1;
    while (p < rest.length) {
      let sp = rest.indexOf(' ', p);
      if (sp === -1) sp = rest.length;
      const eq = rest.indexOf('=', p);
      if (eq > p && eq < sp) {
        const slash = rest.indexOf('/', eq);
        const ok = toInt(rest, eq + 1, slash > eq && slash < sp ? slash : sp);
        const total = slash > eq && slash < sp ? toInt(rest, slash + 1, sp) : ok;
        if (ok !== undefined && total !== undefined) counts[rest.slice(p, eq)] = { ok, total };
      }
      p = sp + 1;
    }
    ev.command_counts = counts;
  }
}

/** `client=host[ip]`, `, sasl_method=PLAIN, sasl_username=u`, `, orig_queue_id=..., orig_client=...` */
function client(ev: MailEvent, rest: string): undefined {
  let end = rest.indexOf(', ', 7);
  if (end === -1) end = rest.length;
  if (!setNamAddr(ev, rest, 7, end)) return;
  ev.kind = 'client';
  while (end < rest.length) {
    const p = end + 2;
    end = rest.indexOf(', ', p);
    if (end === -1) end = rest.length;
    if (rest.startsWith('sasl_username=', p)) ev.sasl_username = rest.slice(p + 14, end);
    else if (rest.startsWith('sasl_method=', p)) ev.sasl_method = rest.slice(p + 12, end);
  }
}

/** `uid=0 from=<root>` (pickup: a locally submitted message). */
function pickup(ev: MailEvent, rest: string): undefined {
  const f = rest.indexOf(' from=');
  if (f === -1) return;
  ev.kind = 'client';
  ev.sender = unbracket(rest.slice(f + 6));
}

function messageId(ev: MailEvent, rest: string, at: number): undefined {
  ev.kind = 'message_id';
  ev.message_id = unbracket(rest.slice(at));
}

/** `lost connection after RCPT from host[ip]`, `timeout after DATA (0 bytes) from ...`, `improper command pipelining after CONNECT from h[ip]: text` */
function afterCommand(
  ev: MailEvent,
  rest: string,
  at: number,
  kind: 'timeout' | 'protocol_error' | 'lost_connection',
): undefined {
  const f = rest.indexOf(' from ', at);
  if (f === -1) return;
  let cmdEnd = rest.indexOf(' ', at);
  if (cmdEnd > f) cmdEnd = f;
  let end = rest.indexOf(': ', f + 6);
  if (end === -1) end = rest.length;
  if (!setNamAddr(ev, rest, f + 6, end)) return;
  ev.kind = kind;
  ev.command = rest.slice(at, cmdEnd);
  if (end < rest.length) ev.text = rest.slice(end + 2);
}

/** `non-SMTP command from host[ip]: GET / HTTP/1.1` */
function nonSmtp(ev: MailEvent, rest: string, at: number): undefined {
  let end = rest.indexOf(': ', at);
  if (end === -1) end = rest.length;
  if (!setNamAddr(ev, rest, at, end)) return;
  ev.kind = 'protocol_error';
  if (end < rest.length) ev.text = rest.slice(end + 2);
}

/** The `; from=<s> to=<r> proto=P helo=<h>` suffix of reject lines (postscreen separates with commas). */
function tailStart(rest: string, from: number): number {
  let i = rest.lastIndexOf('; from=<');
  if (i < from) i = rest.lastIndexOf('; to=<');
  if (i < from) i = rest.lastIndexOf('; proto=');
  if (i < from) i = rest.lastIndexOf('; helo=<');
  return i < from ? -1 : i;
}

function parseTail(ev: MailEvent, s: string, start: number, end: number): undefined {
  let p = start;
  while (p < end) {
    let c = s.charCodeAt(p);
    while (p < end && (c === 32 || c === 44)) c = s.charCodeAt(++p);
    const eq = s.indexOf('=', p);
    if (eq === -1 || eq >= end) return;
    const key = s.slice(p, eq);
    let v: string;
    if (s.charCodeAt(eq + 1) === 60) {
      if (key === 'helo') {
        v = s.charCodeAt(end - 1) === 62 ? s.slice(eq + 2, end - 1) : s.slice(eq + 2, end);
        p = end;
      } else {
        let gt = s.indexOf('>', eq + 2);
        if (gt === -1 || gt >= end) gt = end;
        v = s.slice(eq + 2, gt);
        p = gt + 1;
      }
    } else {
      let sp = s.indexOf(' ', eq + 1);
      if (sp === -1 || sp > end) sp = end;
      let e = sp;
      if (s.charCodeAt(e - 1) === 44) e--;
      v = s.slice(eq + 1, e);
      p = sp;
    }
    if (key === 'from') ev.sender = v;
    else if (key === 'to') ev.recipient = v;
    else if (key === 'proto') ev.proto = v;
    else if (key === 'helo') ev.helo = v;
  }
}

/**
 * smtpd/postscreen `reject: RCPT from host[ip]: 550 5.1.1 <r>: Recipient address rejected: ...; from=<s> to=<r> proto=ESMTP helo=<h>`
 * cleanup `reject: header Subject: x from host[ip]; from=<s> to=<r> proto=ESMTP helo=<h>: 5.7.1 text`
 */
function reject(ev: MailEvent, rest: string, at: number, filterAction: string | undefined): undefined {
  if (rest.startsWith('header ', at) || rest.startsWith('body ', at))
    return contentRule(ev, rest, at, 'reject');
  let f = rest.indexOf(' from ', at);
  let colon: number;
  if (f === -1 || f > rest.indexOf(': ', at)) {
    // `proxy-reject: END-OF-MESSAGE: 554 5.7.0 text; from=<s> ...` names no client
    colon = rest.indexOf(': ', at);
    if (colon === -1) return;
    f = colon;
  } else {
    colon = rest.indexOf(': ', f + 6);
    if (colon === -1) return;
    setNamAddr(ev, rest, f + 6, colon);
  }
  const t = tailStart(rest, colon);
  // smtpd always ends a reject with `; ... proto=...`: without it the line was cut, and a cut reply
  // text would give a wrong reason. postscreen (`[ip]:port`) has no tail on CONNECT rejects.
  if (t === -1 && rest.charCodeAt(f + 6) !== 91) return;
  ev.kind = 'reject';
  ev.command = rest.slice(at, f);
  if (filterAction !== undefined) ev.filter_action = filterAction;
  let text = t === -1 ? rest.slice(colon + 2) : rest.slice(colon + 2, t);
  const used = setReply(ev, text);
  if (used === 0) {
    // cleanup/milter rejects log only the enhanced status code
    const m = /^([245]\.\d{1,3}\.\d{1,3}) /.exec(text);
    if (m) {
      ev.dsn = m[1];
      text = text.slice(m[0].length);
    }
  } else text = text.slice(used + 1);
  ev.text = text;
  if (t !== -1) parseTail(ev, rest, t + 2, rest.length);
  // a milter or proxy filter is a policy decision, unless it refuses a recipient that does not exist
  ev.reason =
    filterAction === undefined
      ? postfixReason(text, ev.reply_code)
      : ev.command === 'RCPT' && isUserUnknownText(text)
        ? 'user_unknown'
        : 'policy';
}

/** Access/header/body actions other than reject: hold, discard, filter, redirect, warn, reject_warning, milter-*. */
function action(ev: MailEvent, rest: string, at: number, name: string): undefined {
  if (rest.startsWith('header ', at) || rest.startsWith('body ', at)) return contentRule(ev, rest, at, name);
  const f = rest.indexOf(' from ', at);
  if (f === -1) return;
  const colon = rest.indexOf(': ', f + 6);
  if (colon === -1) return;
  setNamAddr(ev, rest, f + 6, colon);
  ev.kind = name === 'reject_warning' ? 'warning' : 'filter';
  ev.filter_action = name;
  ev.command = rest.slice(at, f);
  const t = tailStart(rest, colon);
  const text = t === -1 ? rest.slice(colon + 2) : rest.slice(colon + 2, t);
  const used = setReply(ev, text);
  ev.text = used === 0 ? text : text.slice(used + 1);
  if (t !== -1) parseTail(ev, rest, t + 2, rest.length);
}

/** cleanup `header Subject: x from host[ip]; from=<s> to=<r> proto=ESMTP helo=<h>: 5.7.1 text` */
function contentRule(ev: MailEvent, rest: string, at: number, name: string): undefined {
  const t = tailStart(rest, at);
  if (t === -1) return;
  const head = rest.slice(at, t);
  const f = head.lastIndexOf(' from ');
  if (f !== -1) setNamAddr(ev, head, f + 6, head.length);
  let endTail = rest.lastIndexOf('>: ');
  if (endTail < t) endTail = rest.indexOf(': ', t + 2) - 1;
  if (endTail < t) endTail = rest.length - 1;
  parseTail(ev, rest, t + 2, endTail + 1);
  let text = endTail + 3 <= rest.length ? rest.slice(endTail + 3) : '';
  const m = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/.exec(text);
  if (m) {
    ev.dsn = m[1];
    text = text.slice(m[0].length);
  }
  if (text.length > 0) ev.text = text;
  else ev.text = undefined;
  if (name === 'reject' || name === 'milter-reject') {
    ev.kind = 'reject';
    ev.reason = 'policy';
    if (name !== 'reject') ev.filter_action = name;
  } else {
    ev.kind = 'filter';
    ev.filter_action = name === 'warning' ? 'warn' : name;
  }
  // header_checks and body_checks run while the message content (DATA) is received
  ev.command = 'DATA';
}

/** qmgr `from=<s>, size=418, nrcpt=1 (queue active)`, `from=<s>, status=expired, returned to sender` */
function from(ev: MailEvent, rest: string): undefined {
  // qmgr always logs nrcpt= (or status= for expiry): without either the line was cut
  if (rest.indexOf(', nrcpt=') === -1 && rest.indexOf(', status=') === -1) return;
  let p = 5;
  let end: number;
  if (rest.charCodeAt(5) === 60) {
    end = rest.indexOf('>, ', 6);
    if (end === -1) end = rest.endsWith('>') ? rest.length - 1 : -1;
    if (end === -1) return;
    ev.sender = rest.slice(6, end);
    p = end + 3;
  } else {
    end = rest.indexOf(', ', 5);
    if (end === -1) end = rest.length;
    ev.sender = rest.slice(5, end);
    p = end + 2;
  }
  ev.kind = 'queued';
  while (p < rest.length) {
    let e = rest.indexOf(', ', p);
    if (e === -1) e = rest.length;
    if (rest.startsWith('size=', p)) ev.size = leadingInt(rest.slice(p + 5, e));
    else if (rest.startsWith('nrcpt=', p)) ev.nrcpt = leadingInt(rest.slice(p + 6, e));
    else if (rest.startsWith('status=', p)) {
      const st = rest.slice(p + 7, e);
      ev.status = st;
      if (st === 'expired') ev.kind = 'expired';
      if (e < rest.length) ev.text = rest.slice(e + 2);
      return;
    }
    p = e + 2;
  }
}

/** `to=<r>, orig_to=<o>, relay=h[ip]:25, delay=1.2, delays=a/b/c/d, dsn=2.0.0, status=sent (250 ...)` */
function delivery(ev: MailEvent, rest: string): undefined {
  let p = 0;
  let sawStatus = false;
  while (p < rest.length) {
    const eq = rest.indexOf('=', p);
    if (eq === -1) break;
    let e: number;
    let v: string;
    if (rest.charCodeAt(eq + 1) === 60) {
      e = rest.indexOf('>, ', eq + 2);
      if (e === -1) break;
      v = rest.slice(eq + 2, e);
      e += 1;
    } else {
      if (rest.startsWith('status=', p)) {
        const sp = rest.indexOf(' ', eq + 1);
        ev.status = sp === -1 ? rest.slice(eq + 1) : rest.slice(eq + 1, sp);
        if (sp !== -1) {
          let t = rest.slice(sp + 1);
          if (t.charCodeAt(0) === 40 && t.charCodeAt(t.length - 1) === 41) t = t.slice(1, -1);
          ev.text = t;
        }
        sawStatus = true;
        break;
      }
      e = rest.indexOf(', ', eq + 1);
      if (e === -1) e = rest.length;
      v = rest.slice(eq + 1, e);
    }
    switch (rest.slice(p, eq)) {
      case 'to':
        setRecipients(ev, v);
        break;
      case 'orig_to':
        ev.orig_to = v;
        break;
      case 'relay':
        ev.relay = v;
        break;
      case 'delay':
        ev.delay = decimal(v);
        break;
      case 'delays':
        ev.delays = v;
        break;
      case 'dsn':
        ev.dsn = v;
        break;
    }
    p = e + 2;
  }
  // status= is always last: a line without it was cut
  if (!sawStatus || ev.recipient === undefined) return;
  ev.kind = 'delivery';
  const text = ev.text;
  if (text !== undefined) {
    if (setReply(ev, text) === 0) setReplyIn(ev, text);
    if (
      ev.status !== 'sent' &&
      isUserUnknownText(text) &&
      (ev.dsn === undefined || ev.dsn.startsWith('5.1.'))
    )
      ev.reason = 'user_unknown';
  }
}

/** bounce `sender non-delivery notification: NEWQID`, `postmaster delay notification: NEWQID` */
function notification(ev: MailEvent, rest: string): undefined {
  const n = rest.indexOf(' notification: ');
  if (n === -1) return;
  const sp = rest.indexOf(' ');
  ev.kind = 'bounce_notice';
  ev.status = rest.slice(sp + 1, n).replace(' ', '-');
  ev.bounce_queue_id = rest.slice(n + 15);
  ev.text = rest.slice(0, n + 13);
}

/** anvil `statistics: max connection rate 1/60s for (smtp:1.2.3.4) at Nov 27 10:00:00` */
function anvil(ev: MailEvent, rest: string): undefined {
  ev.kind = 'stats';
  const m = /^statistics: (max [a-z ]+?) (\d+)(?:\/\d+s)? (?:for \((.{1,300}?)\) )?at /.exec(rest);
  if (!m) {
    ev.text = rest.slice(12);
    return;
  }
  ev.text = m[1];
  ev.count = +m[2]!;
  // `(service:address)`; the service may hold colons itself (`127.0.0.1:2525:192.0.2.1`)
  const key = m[3];
  if (key !== undefined) {
    for (let i = key.indexOf(':'); i !== -1; i = key.indexOf(':', i + 1)) {
      const ip = normalizeIp(key.slice(i + 1));
      if (ip !== undefined) {
        ev.client_ip = ip;
        break;
      }
    }
  }
}

/** dnsblog `addr 1.2.3.4 listed by domain zen.spamhaus.org as 127.0.0.4` */
function dnsblog(ev: MailEvent, rest: string): undefined {
  const sp = rest.indexOf(' ', 5);
  if (sp === -1 || !rest.startsWith(' listed by domain ', sp)) return;
  const ip = normalizeIp(rest.slice(5, sp));
  if (ip === undefined) return;
  ev.kind = 'dnsbl';
  ev.client_ip = ip;
  ev.text = rest.slice(sp + 1);
}

/** postscreen `CONNECT from [ip]:port to [ip]:port` */
function psConnect(ev: MailEvent, rest: string): undefined {
  let end = rest.indexOf(' to ', 13);
  if (end === -1) end = rest.length;
  if (!setNamAddr(ev, rest, 13, end)) return;
  ev.kind = 'connect';
}

/**
 * postscreen verdicts `WORDS [ip]:port`, `WORDS from [ip]:port after CMD: text`, `PREGREET 11 after 0.08 from [ip]:port: EHLO x\r\n`,
 * `DNSBL rank 3 for [ip]:port`, `HANGUP after 0.3 from [ip]:port in tests after SMTP handshake`.
 */
function psVerdict(ev: MailEvent, rest: string, kind: MailEvent['kind']): undefined {
  const open = rest.indexOf(' [');
  if (open === -1) return;
  let end = rest.indexOf(' ', open + 1);
  if (end === -1) end = rest.length;
  let addrEnd = end;
  if (rest.charCodeAt(addrEnd - 1) === 58) addrEnd--; // `[ip]:port: text`
  if (!setNamAddr(ev, rest, open + 1, addrEnd)) return;
  let words = rest.slice(0, open);
  if (words.endsWith(' from')) words = words.slice(0, -5);
  else if (words.endsWith(' for')) words = words.slice(0, -4);
  const num = /^(PREGREET|DNSBL rank) (\d+)/.exec(words);
  if (num) {
    ev.count = +num[2]!;
    words = num[1] === 'PREGREET' ? 'PREGREET' : 'DNSBL';
  } else {
    const after = words.indexOf(' after ');
    if (after !== -1) words = words.slice(0, after);
  }
  ev.kind = kind;
  if (kind !== 'disconnect') ev.status = words;
  if (end < rest.length) {
    const tail = rest.slice(end + 1);
    if (tail.startsWith('after ')) {
      const c = tail.indexOf(': ');
      ev.command = c === -1 ? tail.slice(6) : tail.slice(6, c);
      if (c !== -1) ev.text = tail.slice(c + 2);
    } else ev.text = tail;
  }
}

/** TLS session lines: `Anonymous TLS connection established from host[ip]: TLSv1.3 with cipher ...`, `SSL_accept error from host[ip]: -1` */
function tls(ev: MailEvent, rest: string): undefined {
  ev.kind = 'tls';
  const f = rest.indexOf(' from ');
  if (f !== -1) {
    let end = rest.indexOf(': ', f + 6);
    if (end === -1) end = rest.length;
    setNamAddr(ev, rest, f + 6, end);
    if (end < rest.length) ev.text = rest.slice(end + 2);
  } else {
    const to = rest.indexOf(' to ');
    if (to !== -1) {
      const c = rest.indexOf(': ', to);
      ev.relay = c === -1 ? rest.slice(to + 4) : rest.slice(to + 4, c);
      if (c !== -1) ev.text = rest.slice(c + 2);
    }
  }
}

/** Delivery agents talking to the next hop: `connect to mx[ip]:25: Connection refused`, `host mx[ip] said: 450 ...` */
function outbound(ev: MailEvent, rest: string): undefined {
  ev.kind = 'warning';
  ev.text = rest;
  const m = /^(?:connect to|host|lost connection with|conversation with) (\S+?\[[^\]]{1,64}\](?::\d+)?)/.exec(
    rest,
  );
  if (m) ev.relay = m[1];
  const said = rest.indexOf(' said: ');
  if (said !== -1) setReply(ev, rest.slice(said + 7));
}

const HOSTNAME_NOT_RESOLVE = /^hostname (\S{1,255}) does not resolve to address (\S{1,64}?)(?::|$)/;
const ADDR_PREFIX =
  /^(\S{1,64}?): (?:hostname (\S{1,255}) verification failed|address not listed for hostname (\S{1,255}))/;
const RATE_EXCEEDED = /^(.{1,60}) limit exceeded: (\d+) from (\S{1,300}) for service/;

function warning(ev: MailEvent, rest: string): undefined {
  const w = rest.slice(9);
  ev.text = w;
  ev.kind = 'warning';
  if (w.startsWith('header ') || w.startsWith('body ')) {
    contentRule(ev, rest, 9, 'warning');
    return;
  }
  if (w.startsWith('non-SMTP command from ')) {
    ev.text = undefined;
    return nonSmtp(ev, w, 22);
  }
  const sasl = w.indexOf(': SASL ');
  if (
    sasl !== -1 &&
    (w.indexOf(' authentication failed', sasl) !== -1 || w.indexOf(' authentication aborted', sasl) !== -1)
  ) {
    setNamAddr(ev, w, 0, sasl);
    ev.kind = 'auth_failure';
    const sp = w.indexOf(' ', sasl + 7);
    if (sp !== -1) ev.sasl_method = w.slice(sasl + 7, sp);
    const u = w.indexOf(', sasl_username=', sasl);
    if (u !== -1) ev.sasl_username = w.slice(u + 16);
    ev.text = u === -1 ? w.slice(sasl + 2) : w.slice(sasl + 2, u);
    return;
  }
  if (w.startsWith('Illegal address syntax from ')) {
    const i = w.indexOf(' in ', 28);
    if (i !== -1) {
      setNamAddr(ev, w, 28, i);
      ev.kind = 'protocol_error';
      const sp = w.indexOf(' ', i + 4);
      if (sp !== -1) ev.command = w.slice(i + 4, sp);
      return;
    }
  }
  let m = HOSTNAME_NOT_RESOLVE.exec(w);
  if (m) {
    ev.client_host = m[1];
    const ip = normalizeIp(m[2]!);
    if (ip !== undefined) ev.client_ip = ip;
    return;
  }
  m = ADDR_PREFIX.exec(w);
  if (m) {
    const ip = normalizeIp(m[1]!);
    if (ip !== undefined) ev.client_ip = ip;
    ev.client_host = m[2] ?? m[3];
    return;
  }
  m = RATE_EXCEEDED.exec(w);
  if (m) {
    ev.kind = 'rate_limited';
    ev.count = +m[2]!;
    setNamAddr(ev, m[3]!, 0, m[3]!.length);
    return;
  }
  // `warning: host[ip]: ...` and `warning: ... from host[ip]...`
  const b = w.indexOf('[');
  if (b !== -1 && b < 256) {
    const close = w.indexOf(']', b);
    if (close !== -1 && close - b < 66) {
      let start = w.lastIndexOf(' ', b) + 1;
      const end =
        w.charCodeAt(close + 1) === 58 && w.charCodeAt(close + 2) !== 32 ? w.indexOf(' ', close) : close + 1;
      if (start < 0) start = 0;
      const sub = w.slice(start, end === -1 ? w.length : end).replace(/:$/, '');
      const probe: MailEvent = { kind: 'warning', raw: '' };
      if (setNamAddr(probe, sub, 0, sub.length) && probe.client_ip !== undefined) {
        ev.client_ip = probe.client_ip;
        if (probe.client_host !== undefined) ev.client_host = probe.client_host;
        if (probe.client_port !== undefined) ev.client_port = probe.client_port;
      }
    }
  }
}
