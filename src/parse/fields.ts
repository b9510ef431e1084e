// Small field extractors shared by the MTA parsers. All of them are total: bad input gives
// undefined, never an exception.
import ipaddr from 'ipaddr.js';
import type { MailEvent } from '../event/mail-event.js';

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** An IP address as text: IPv4 as is, IPv6 in RFC 5952 form without an `IPv6:` prefix; undefined if not an address. */
export function normalizeIp(s: string): string | undefined {
  if (s.indexOf(':') === -1) {
    const m = V4.exec(s);
    if (!m) return undefined;
    if (+m[1]! > 255 || +m[2]! > 255 || +m[3]! > 255 || +m[4]! > 255) return undefined;
    return s;
  }
  // no cache keyed by s: s is sliced from the line and would keep it alive
  return normalizeV6(s) ?? undefined;
}

function normalizeV6(s: string): string | null {
  const t =
    s.length > 5 && (s.charCodeAt(0) | 32) === 105 && s.slice(0, 5).toLowerCase() === 'ipv6:'
      ? s.slice(5)
      : s;
  if (t.length > 64) return null;
  try {
    const a = ipaddr.IPv6.parse(t);
    // RFC 5952 section 5: an IPv4-mapped address keeps its dotted quad.
    if (a.isIPv4MappedAddress()) return `::ffff:${a.toIPv4Address().toString()}`;
    return a.toString();
  } catch {
    return null;
  }
}

/**
 * `host[ip]` or `host[ip]:port` (postfix), `[ip]:port` (postscreen), starting at `start` and ending
 * at `end` (exclusive). Sets client_host/client_ip/client_port. Returns false when malformed.
 */
export function setNamAddr(ev: MailEvent, s: string, start: number, end: number): boolean {
  const close = s.lastIndexOf(']', end - 1);
  if (close < start) return false;
  const open = s.lastIndexOf('[', close);
  if (open < start) return false;
  // `unknown` is how postfix and sendmail say the client has no (verified) name: leave it absent
  if (open > start && !(open - start === 7 && s.startsWith('unknown', start)))
    ev.client_host = s.slice(start, open);
  const ip = normalizeIp(s.slice(open + 1, close));
  if (ip !== undefined) ev.client_ip = ip;
  if (close + 1 < end && s.charCodeAt(close + 1) === 58) {
    const port = toInt(s, close + 2, end);
    if (port !== undefined) ev.client_port = port;
  }
  return true;
}

/** sendmail `host [ip]`, `[ip]`, `host [IPv6:...] (may be forged)`. */
export function setSendmailRelay(ev: MailEvent, v: string): void {
  const open = v.indexOf('[');
  if (open === -1) {
    // `user@localhost` is a local submission (sm-msp-queue), not a client host
    if (v.length > 0 && v !== 'unknown' && v.indexOf('@') === -1) ev.client_host = v;
    return;
  }
  const close = v.indexOf(']', open);
  if (close === -1) return;
  if (open > 1 && !v.startsWith('unknown ')) ev.client_host = v.slice(0, open - 1);
  const ip = normalizeIp(v.slice(open + 1, close));
  if (ip !== undefined) ev.client_ip = ip;
}

/** Decimal integer in s[start, end); undefined unless it is all digits (at most 15). */
export function toInt(s: string, start: number, end: number): number | undefined {
  if (end <= start || end - start > 15) return undefined;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
  }
  return n;
}

/** Leading integer of v (`418`, `1 (queue active)`), undefined when v does not start with a digit. */
export function leadingInt(v: string): number | undefined {
  let i = 0;
  while (i < v.length && i < 15) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  return i === 0 ? undefined : toInt(v, 0, i);
}

/** An address as logged, without one pair of angle brackets: `<>` is "". */
export function unbracket(v: string): string {
  if (v.length >= 2 && v.charCodeAt(0) === 60 && v.charCodeAt(v.length - 1) === 62) return v.slice(1, -1);
  return v;
}

const REPLY = /^([245]\d\d)(?:[ -]([245]\.\d{1,3}\.\d{1,3}))?(?= |$)/;
const DSN = /(?:^|[ (#])([245]\.\d{1,3}\.\d{1,3})(?=[ )]|$)/;

/** SMTP reply code (and enhanced status) at the start of t. Returns the length consumed, 0 if none. */
export function setReply(ev: MailEvent, t: string): number {
  const m = REPLY.exec(t);
  if (!m) return 0;
  ev.reply_code = +m[1]!;
  if (m[2] !== undefined) ev.dsn = m[2];
  return m[0].length;
}

/** The first `NNN` SMTP reply after `said: ` or the start of a status text, and an enhanced status code in it. */
export function setReplyIn(ev: MailEvent, t: string): void {
  const said = t.indexOf('said: ');
  if (said !== -1) setReply(ev, t.slice(said + 6));
  if (ev.dsn === undefined) {
    const m = DSN.exec(t);
    if (m) ev.dsn = m[1];
  }
}

/** sendmail delay `00:00:01` or `1+02:03:04` in seconds. */
export function sendmailDelay(v: string): number | undefined {
  const m = /^(?:(\d{1,5})\+)?(\d{1,3}):(\d\d):(\d\d)$/.exec(v);
  if (!m) return undefined;
  return (m[1] ? +m[1] * 86400 : 0) + +m[2]! * 3600 + +m[3]! * 60 + +m[4]!;
}

/** Postfix `delay=0.01`. */
export function decimal(v: string): number | undefined {
  if (v.length === 0 || v.length > 20) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** `<a@x>,<b@y>` or `a@x,b@y` as a list without brackets. */
export function addressList(v: string): string[] {
  if (v.indexOf(',') === -1) return [unbracket(v)];
  const out: string[] = [];
  for (const p of v.split(',')) if (p.length > 0) out.push(unbracket(p.trim()));
  return out;
}

export function setRecipients(ev: MailEvent, v: string): void {
  const list = addressList(v);
  if (list.length === 0) return;
  ev.recipient = list[0];
  if (list.length > 1) ev.recipients = list;
}
