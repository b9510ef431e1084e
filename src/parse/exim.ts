// Exim main log messages (after the timestamp and optional [pid]), also when Exim logs to syslog.
import type { MailEvent } from '../event/mail-event.js';
import { normalizeIp, setReply, toInt, unbracket } from './fields.js';
import { eximReason, isUserUnknownText } from './reason.js';

/** 1TrBfO-0003Wx-Ni (before 4.97) and 1tBiUi-000000005KZ-1Hx7 (4.97+). */
const MSGID = /^[0-9A-Za-z]{6}-(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{11}-[0-9A-Za-z]{4})$/;

const STAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3,6})?(?: [+-]\d{4})? (?:\[(\d{1,10})\] )?/;

export function parseExim(ev: MailEvent, msg: string): undefined {
  ev.mta = 'exim';
  // exim writing to syslog may keep its own timestamp and pid
  const stamp = STAMP.exec(msg);
  if (stamp) {
    if (stamp[1] !== undefined && ev.pid === undefined) ev.pid = +stamp[1];
    msg = msg.slice(stamp[0].length);
  }
  let rest = msg;
  const sp = msg.indexOf(' ');
  if (sp === 16 || sp === 23) {
    const id = msg.slice(0, sp);
    if (MSGID.test(id)) {
      ev.queue_id = id;
      rest = msg.slice(sp + 1);
      const c = rest.charCodeAt(0);
      const c1 = rest.charCodeAt(1);
      if (rest.charCodeAt(2) === 32) {
        if (c === 60 && c1 === 61) return arrival(ev, rest); // <=
        if (c === 61 && c1 === 62) return delivery(ev, rest, 'sent'); // =>
        if (c === 45 && c1 === 62) return delivery(ev, rest, 'sent'); // ->
        if (c === 62 && c1 === 62) return delivery(ev, rest, 'sent'); // >> cutthrough
        if (c === 42 && c1 === 62) return delivery(ev, rest, 'suppressed'); // *>
        if (c === 42 && c1 === 42) return delivery(ev, rest, 'bounced'); // **
        if (c === 61 && c1 === 61) return delivery(ev, rest, 'deferred'); // ==
      }
      if (rest === 'Completed' || rest.startsWith('Completed ')) {
        ev.kind = 'removed';
        return;
      }
      if (rest.startsWith('Message is frozen') || rest.startsWith('Frozen') || rest.startsWith('Unfrozen')) {
        ev.kind = 'warning';
        ev.text = rest;
        return;
      }
    }
  }
  if (rest.startsWith('H=')) return hostPrefixed(ev, rest);
  if (rest.startsWith('SMTP ')) return smtp(ev, rest);
  if (rest.startsWith('no MAIL in SMTP connection from ')) return noMail(ev, rest);
  const auth = rest.indexOf(' authenticator failed for ');
  if (auth !== -1 && auth < 64) return authFailure(ev, rest, auth);
  if (rest.startsWith('Connection from ')) return connectionRefused(ev, rest);
  if (rest.startsWith('TLS error on connection from ')) {
    ev.kind = 'tls';
    const end = hostSpec(ev, rest, 29);
    ev.text = rest.slice(end).replace(/^[ :]+/, '');
    return;
  }
  if (rest.startsWith('rejected EHLO from ') || rest.startsWith('rejected HELO from ')) {
    ev.kind = 'reject';
    ev.command = 'HELO';
    ev.reason = 'helo_rejected';
    const end = hostSpec(ev, rest, 19);
    ev.text = rest.slice(end).replace(/^[ :]+/, '');
    return;
  }
  if (rest.startsWith('no host name found for IP address ')) {
    ev.kind = 'warning';
    const ip = normalizeIp(rest.slice(34));
    if (ip !== undefined) ev.client_ip = ip;
    ev.text = rest;
    return;
  }
  if (
    rest.startsWith('Start queue run') ||
    rest.startsWith('End queue run') ||
    rest.startsWith('exim ') ||
    rest.startsWith('daemon ') ||
    rest.startsWith('pid ')
  ) {
    ev.kind = 'daemon';
    ev.text = rest;
  }
}

/**
 * A host spec at s[p]: `name (helo) [ip]:port`, `(helo) [ip]:port`, `[ip]:port`, `name [ip]`.
 * Sets client_host/helo/client_ip/client_port; returns the index after it.
 */
function hostSpec(ev: MailEvent, s: string, p: number): number {
  if (s.startsWith('H=', p)) p += 2;
  const c = s.charCodeAt(p);
  if (c !== 40 && c !== 91) {
    let e = p;
    while (e < s.length) {
      const ch = s.charCodeAt(e);
      if (ch === 32 || ch === 58 || ch === 91) break;
      e++;
    }
    if (e > p) ev.client_host = s.slice(p, e);
    p = e;
    if (s.charCodeAt(p) === 32 && (s.charCodeAt(p + 1) === 40 || s.charCodeAt(p + 1) === 91)) p++;
  }
  if (s.charCodeAt(p) === 40) {
    const close = s.indexOf(') [', p);
    const close2 = close === -1 ? s.indexOf(')', p) : close;
    if (close2 === -1) return p;
    ev.helo = s.slice(p + 1, close2);
    p = close2 + 1;
    if (s.charCodeAt(p) === 32 && s.charCodeAt(p + 1) === 91) p++;
  }
  if (s.charCodeAt(p) === 91) {
    const close = s.indexOf(']', p);
    if (close === -1 || close - p > 70) return p;
    const ip = normalizeIp(s.slice(p + 1, close));
    if (ip !== undefined) ev.client_ip = ip;
    p = close + 1;
    if (s.charCodeAt(p) === 58) {
      let e = p + 1;
      while (e < s.length && s.charCodeAt(e) >= 48 && s.charCodeAt(e) <= 57) e++;
      if (e > p + 1) {
        const port = toInt(s, p + 1, e);
        if (port !== undefined) ev.client_port = port;
        p = e;
      }
    }
  }
  return p;
}

/** Scan `K=value` fields from p; quoted values may hold spaces. Returns the index where fields stop. */
function fields(s: string, p: number, fn: (key: string, vStart: number, vEnd: number) => void): number {
  while (p < s.length) {
    while (s.charCodeAt(p) === 32) p++;
    let k = p;
    while (k < s.length && k - p < 8) {
      const ch = s.charCodeAt(k);
      if (!((ch >= 65 && ch <= 90) || (ch >= 97 && ch <= 122) || (ch >= 48 && ch <= 57))) break;
      k++;
    }
    if (k === p || s.charCodeAt(k) !== 61) return p;
    const key = s.slice(p, k);
    let vs = k + 1;
    let ve: number;
    if (s.charCodeAt(vs) === 34) {
      ve = vs + 1;
      while (ve < s.length && s.charCodeAt(ve) !== 34) ve += s.charCodeAt(ve) === 92 ? 2 : 1;
      vs++;
      fn(key, vs, Math.min(ve, s.length));
      p = ve + 1;
      continue;
    }
    if (key === 'H' || key === 'I') {
      const probe: MailEvent = { kind: 'unknown', raw: '' };
      ve = hostSpec(probe, s, vs);
      fn(key, vs, ve);
      p = ve;
      continue;
    }
    ve = s.indexOf(' ', vs);
    if (ve === -1) ve = s.length;
    if (s.charCodeAt(ve - 1) === 58) {
      // `T=transport: text` ends the fields
      fn(key, vs, ve - 1);
      return ve - 1;
    }
    fn(key, vs, ve);
    p = ve;
  }
  return p;
}

/** `<= sender H=host (helo) [ip]:port P=esmtp S=1234 id=msgid T="subject" from <sender> for r1 r2` */
function arrival(ev: MailEvent, rest: string): undefined {
  let e = rest.indexOf(' ', 3);
  if (e === -1) e = rest.length;
  const sender = rest.slice(3, e);
  ev.sender = sender === '<>' ? '' : unbracket(sender);
  ev.kind = 'queued';
  let parent: string | undefined;
  let p = fields(rest, e, (k, vs, ve) => {
    switch (k) {
      case 'H':
        hostSpec(ev, rest, vs);
        break;
      case 'P':
        ev.proto = rest.slice(vs, ve);
        break;
      case 'S':
        ev.size = toInt(rest, vs, ve);
        break;
      case 'id':
        ev.message_id = unbracket(rest.slice(vs, ve));
        break;
      case 'A': {
        const v = rest.slice(vs, ve);
        const c = v.indexOf(':');
        ev.sasl_method = c === -1 ? v : v.slice(0, c);
        if (c !== -1) ev.sasl_username = v.slice(c + 1);
        break;
      }
      case 'R':
        parent = rest.slice(vs, ve);
        break;
    }
  });
  while (p < rest.length) {
    if (rest.startsWith('from <', p)) {
      const gt = rest.indexOf('>', p + 6);
      if (gt === -1) break;
      p = gt + 2;
    } else if (rest.startsWith('for ', p)) {
      const list = rest
        .slice(p + 4)
        .split(' ')
        .filter((x) => x.length > 0);
      if (list.length > 0) ev.recipient = list[0];
      if (list.length > 1) ev.recipients = list;
      break;
    } else break;
  }
  // a notification exim generated itself (`<= <> R=parent U=Debian-exim P=local`)
  if (parent !== undefined && sender === '<>') {
    ev.kind = 'bounce_notice';
    ev.bounce_queue_id = ev.queue_id;
    ev.queue_id = parent;
  }
}

/** `=> r <orig> R=router T=transport H=mx [ip] C="250 OK"`, `** r R=..: text`, `== r R=.. defer (-44): text` */
function delivery(ev: MailEvent, rest: string, status: string): undefined {
  ev.kind = 'delivery';
  ev.status = status;
  let p = 3;
  let e = p;
  while (e < rest.length) {
    const ch = rest.charCodeAt(e);
    if (ch === 32) break;
    if (ch === 58 && rest.charCodeAt(e + 1) === 32 && e > p) break;
    e++;
  }
  const rcpt = rest.slice(p, e);
  ev.recipient = unbracket(rcpt);
  p = e;
  // `(parent)` and `<original>` after the address
  for (let i = 0; i < 2; i++) {
    if (rest.charCodeAt(p) !== 32) break;
    const c = rest.charCodeAt(p + 1);
    if (c === 40) {
      const close = rest.indexOf(') ', p);
      if (close === -1) break;
      p = close + 1;
    } else if (c === 60) {
      const gt = rest.indexOf('>', p);
      if (gt === -1) break;
      ev.orig_to = rest.slice(p + 2, gt);
      p = gt + 1;
    } else break;
  }
  let confirmation: string | undefined;
  p = fields(rest, p, (k, vs, ve) => {
    if (k === 'H') ev.relay = rest.slice(vs, ve);
    else if (k === 'C') confirmation = rest.slice(vs, ve).replace(/\\"/g, '"');
    else if (k === 'T' && ev.relay === undefined) ev.relay = rest.slice(vs, ve);
    else if (k === 'DT') {
      const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(rest.slice(vs, ve));
      if (m) ev.delay = (+(m[1] ?? 0) * 60 + +(m[2] ?? 0)) * 60 + +(m[3] ?? 0);
    }
  });
  let text = confirmation;
  if (p < rest.length) {
    let t = rest.slice(p).replace(/^[ :]+/, '');
    const d = /^(?:routing )?defer \(-?\d{1,6}\)(?::? )/.exec(t);
    if (d) {
      t = t.slice(d[0].length);
      if (t.startsWith('H=')) {
        // `defer (-44) H=mx [ip]: text`
        const q = fields(t, 0, (k, vs, ve) => {
          if (k === 'H') ev.relay = t.slice(vs, ve);
        });
        t = t.slice(q).replace(/^[ :]+/, '');
      }
    }
    if (t.length > 0) text = t;
  }
  if (text !== undefined) {
    ev.text = text;
    const m = /(?:^|: )([245]\d\d)(?:[ -]([245]\.\d{1,3}\.\d{1,3}))?(?= |$)/.exec(text);
    if (m) {
      ev.reply_code = +m[1]!;
      if (m[2] !== undefined) ev.dsn = m[2];
    }
    if (
      status === 'bounced' &&
      isUserUnknownText(text) &&
      (ev.dsn === undefined || ev.dsn.startsWith('5.1.'))
    )
      ev.reason = 'user_unknown';
  }
}

const REJECT =
  /^(temporarily )?rejected (RCPT|MAIL|EHLO or HELO|VRFY|EXPN|connection|after DATA|DATA|after [A-Z-]{3,20})/;

/** `H=(helo) [ip]:port F=<s> rejected RCPT <r>: Unrouteable address` and other `H=` lines. */
function hostPrefixed(ev: MailEvent, rest: string): undefined {
  let p = hostSpec(ev, rest, 0);
  let sender: string | undefined;
  p = fields(rest, p, (k, vs, ve) => {
    if (k === 'F') sender = unbracket(rest.slice(vs, ve));
    else if (k === 'A') {
      const v = rest.slice(vs, ve);
      const c = v.indexOf(':');
      ev.sasl_method = c === -1 ? v : v.slice(0, c);
      if (c !== -1) ev.sasl_username = v.slice(c + 1);
    }
  });
  if (sender !== undefined) ev.sender = sender;
  while (rest.charCodeAt(p) === 32) p++;
  const tail = rest.slice(p);
  const m = REJECT.exec(tail);
  if (m) {
    const temporary = m[1] !== undefined;
    let what = m[2]!;
    let after = m[0].length;
    if (what === 'EHLO or HELO') what = 'HELO';
    else if (what === 'connection') what = 'CONNECT';
    else if (what.startsWith('after ')) what = what.slice(6) === 'DATA' ? 'DATA' : what.slice(6);
    if (what === 'RCPT' || what === 'MAIL' || what === 'VRFY' || what === 'EXPN' || what === 'HELO') {
      const c = tail.indexOf(': ', after);
      const addr = (c === -1 ? tail.slice(after) : tail.slice(after, c)).trim();
      if (what === 'RCPT' || what === 'VRFY' || what === 'EXPN') ev.recipient = unbracket(addr);
      else if (what === 'MAIL') ev.sender = unbracket(addr);
      else ev.helo = addr;
      after = c === -1 ? tail.length : c;
    }
    ev.kind = 'reject';
    ev.command = what;
    const text = tail.slice(after).replace(/^[ :]+/, '');
    ev.text = text;
    const r = /^([245]\d\d)(?:[ -]([245]\.\d{1,3}\.\d{1,3}))?(?= |$)/.exec(text);
    if (r) {
      ev.reply_code = +r[1]!;
      if (r[2] !== undefined) ev.dsn = r[2];
    }
    ev.reason = eximReason(what === 'VRFY' || what === 'EXPN' ? 'RCPT' : what, text, temporary);
    return;
  }
  if (
    tail.startsWith('Warning: ') ||
    tail.startsWith('sender verify ') ||
    tail.startsWith('recipient verify ')
  ) {
    ev.kind = 'warning';
    ev.text = tail;
    return;
  }
  if (tail.length === 0) return;
  ev.kind = 'warning';
  ev.text = tail;
}

/** `SMTP connection from ...`, `SMTP command timeout on connection from ...`, `SMTP protocol synchronization error ...` */
function smtp(ev: MailEvent, rest: string): undefined {
  if (rest.startsWith('SMTP connection from ')) {
    const end = hostSpec(ev, rest, 21);
    let t = rest.slice(end).trimStart();
    if (t.startsWith('I=[')) {
      const sp = t.indexOf(' ');
      // keep `I=...` only when nothing follows it
      if (sp !== -1 && !t.startsWith('(', sp + 1)) t = t.slice(sp + 1);
    }
    ev.text = t;
    if (t.startsWith('(TCP/IP connection count') || t.startsWith('I=') || t.length === 0) {
      ev.kind = 'connect';
      if (t.startsWith('I=')) {
        const c = t.indexOf(' (');
        ev.text = c === -1 ? t : t.slice(c + 1);
      }
      if (ev.text === '') ev.text = undefined;
    } else if (t.startsWith('closed by QUIT') || t.startsWith('closed by DROP')) ev.kind = 'disconnect';
    else if (t.startsWith('lost') || t.indexOf(' lost') !== -1 || t.startsWith('closed'))
      ev.kind = 'lost_connection';
    else if (t.startsWith('(')) ev.kind = 'connect';
    else ev.kind = 'warning';
    const d = / D=(?:(\d+)m)?(\d+)s/.exec(t);
    if (d) ev.delay = +(d[1] ?? 0) * 60 + +d[2]!;
    return;
  }
  const on = rest.indexOf(' on connection from ');
  const onTls = on === -1 ? rest.indexOf(' on TLS connection from ') : -1;
  if (rest.startsWith('SMTP command timeout') || rest.startsWith('SMTP data timeout')) {
    ev.kind = 'timeout';
    if (on !== -1) hostSpec(ev, rest, on + 20);
    else if (onTls !== -1) hostSpec(ev, rest, onTls + 24);
    if (rest.startsWith('SMTP data timeout')) ev.command = 'DATA';
    const f = / F=<([^>]{0,1024})>/.exec(rest);
    if (f) ev.sender = f[1];
    return;
  }
  if (rest.startsWith('SMTP protocol synchronization error')) {
    const h = rest.indexOf(' H=');
    if (h !== -1) hostSpec(ev, rest, h + 3);
    ev.kind = rest.indexOf('without waiting for greeting') !== -1 ? 'pregreet' : 'protocol_error';
    const close = rest.indexOf('): ');
    ev.text = close === -1 ? rest : rest.slice(37, close);
    const q = /rejected "([A-Za-z]{3,10})/.exec(rest);
    if (q) ev.command = q[1]!.toUpperCase();
    return;
  }
  if (rest.startsWith('SMTP protocol error in ') || rest.startsWith('SMTP syntax error in ')) {
    const h = rest.indexOf(' H=');
    const q = /^SMTP (?:protocol|syntax) error in "([A-Za-z]{1,10})/.exec(rest);
    if (q) ev.command = q[1]!.toUpperCase();
    ev.kind = 'protocol_error';
    if (h !== -1) {
      const end = hostSpec(ev, rest, h + 3);
      ev.text = rest.slice(end).trim();
    } else ev.text = rest;
    return;
  }
  if (rest.startsWith('SMTP call from ')) {
    const end = hostSpec(ev, rest, 15);
    const t = rest.slice(end).trim();
    ev.text = t;
    ev.kind = t.startsWith('dropped') ? 'protocol_error' : 'warning';
    if (/too many connections|rate/.test(t)) ev.kind = 'rate_limited';
    return;
  }
  ev.kind = 'warning';
  ev.text = rest;
}

/** `no MAIL in SMTP connection from host (helo) [ip]:port I=[ip]:25 D=10s C=EHLO,QUIT` */
function noMail(ev: MailEvent, rest: string): undefined {
  const end = hostSpec(ev, rest, 32);
  ev.kind = 'no_mail';
  const t = rest.slice(end).trim();
  if (t.length > 0) ev.text = t;
  const d = / ?D=(?:(\d+)m)?(\d+)s/.exec(t);
  if (d) ev.delay = +(d[1] ?? 0) * 60 + +d[2]!;
}

/** `login authenticator failed for (helo) [ip]:port: 535 Incorrect authentication data (set_id=user)` */
function authFailure(ev: MailEvent, rest: string, at: number): undefined {
  ev.kind = 'auth_failure';
  ev.sasl_method = rest.slice(0, at);
  const end = hostSpec(ev, rest, at + 26);
  let t = rest.slice(end).replace(/^[ :]+/, '');
  const i = t.indexOf(' I=');
  if (t.startsWith('I=')) t = t.slice(t.indexOf(' ') + 1).replace(/^[ :]+/, '');
  else if (i !== -1 && i < 4) t = t.slice(i);
  setReply(ev, t);
  const s = /\(set_id=(.{0,256})\)$/.exec(t);
  if (s) ev.sasl_username = s[1];
  ev.text = t;
}

/** `Connection from [ip]:port refused: too many connections from that IP address` */
function connectionRefused(ev: MailEvent, rest: string): undefined {
  const end = hostSpec(ev, rest, 16);
  const t = rest.slice(end).replace(/^[ :]+/, '');
  if (!t.startsWith('refused')) return;
  ev.kind = 'reject';
  ev.command = 'CONNECT';
  ev.text = t;
  ev.reason = /too many|rate/.test(t) ? 'rate_limited' : 'client_rejected';
}
