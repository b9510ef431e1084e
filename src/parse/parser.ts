// One log line -> one MailEvent. The syslog envelope (RFC 3164, RFC 3339 high precision, RFC 5424)
// or exim's own main log prefix is read first; the program name then picks the MTA parser.
import type { MailEvent } from '../event/mail-event.js';
import { LocalClock, pad2, YearTracker } from './clock.js';
import { parseExim } from './exim.js';
import { POSTFIX_DAEMONS, parsePostfix } from './postfix.js';
import { parseSendmail } from './sendmail.js';

export interface ParseOptions {
  /** Host for lines that carry none (exim's main log); syslog lines keep their own host. */
  host?: string;
  /** Year of the first RFC 3164 (yearless) line of the stream; later lines roll over from it. */
  year?: number;
  /** Clock for year inference when `year` is not given. */
  now?: () => Date;
  /** IANA zone of RFC 3164/exim local times; default: the process time zone. */
  timezone?: string;
}

/** Longest raw line kept, in UTF-16 code units (64 KiB); longer lines become `unknown` with a marker. */
export const RAW_CAP = 65_536;
export const TRUNCATION_MARKER = '…[mizugiwa: line truncated]';

const Mta = { None: 0, Postfix: 1, Sendmail: 2, Exim: 3 } as const;
type Mta = (typeof Mta)[keyof typeof Mta];

const MONTHS: Record<string, number> = {
  Jan: 1,
  Feb: 2,
  Mar: 3,
  Apr: 4,
  May: 5,
  Jun: 6,
  Jul: 7,
  Aug: 8,
  Sep: 9,
  Oct: 10,
  Nov: 11,
  Dec: 12,
};

const R3164 = /(?:<\d{1,3}>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d:\d\d:\d\d)(\.\d{1,9})? /y;
const R3339 = /(?:<\d{1,3}>)?(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d(?:\.\d{1,9})?)(Z|[+-]\d\d:?\d\d)? /y;
const R5424 = /<\d{1,3}>\d{1,2} (\S{1,64}) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) /y;
const REXIM =
  /(\d{4})-(\d\d)-(\d\d) (\d\d)(:\d\d:\d\d)(\.\d{3,6})?(?: ([+-]\d\d)(\d\d))? (?:\[(\d{1,10})(?:\/\d{1,10})?\] )?/y;
const RHOSTTAG = /(\S{1,255}) ([^\s[:]{1,128})(?:\[(\d{1,10})\])?: ?/y;
const RTAG = /([^\s[:]{1,128})(?:\[(\d{1,10})\])?: ?/y;

const REPLACEMENT = '\uFFFD';

function blank(raw: string): MailEvent {
  return {
    ts: undefined,
    host: undefined,
    program: undefined,
    pid: undefined,
    mta: undefined,
    kind: 'unknown',
    reason: undefined,
    command: undefined,
    client_ip: undefined,
    client_host: undefined,
    client_port: undefined,
    queue_id: undefined,
    sender: undefined,
    recipient: undefined,
    recipients: undefined,
    orig_to: undefined,
    dsn: undefined,
    reply_code: undefined,
    status: undefined,
    relay: undefined,
    message_id: undefined,
    helo: undefined,
    size: undefined,
    nrcpt: undefined,
    delay: undefined,
    delays: undefined,
    text: undefined,
    sasl_username: undefined,
    sasl_method: undefined,
    proto: undefined,
    bounce_queue_id: undefined,
    command_counts: undefined,
    filter_action: undefined,
    count: undefined,
    raw,
    truncated: undefined,
  };
}

export class LineParser {
  private readonly host: string | undefined;
  private readonly clock: LocalClock;
  private readonly years: YearTracker;
  private readonly mtaOf = new Map<string, Mta>();

  /** Throws RangeError on an unknown time zone name; parse() itself never throws. */
  constructor(opts: ParseOptions = {}) {
    this.host = opts.host;
    this.clock = new LocalClock(opts.timezone);
    this.years = new YearTracker(opts.year, opts.now ?? (() => new Date()));
  }

  /** Never throws. One MailEvent per line (the line without its trailing newline; Buffer → decoded with invalid UTF-8 replaced). */
  parse(line: string | Buffer): MailEvent {
    let s: string;
    try {
      // decode no more of a huge Buffer than the raw cap can use (4 bytes always make >= 1 UTF-16 unit)
      s = sanitize(
        typeof line === 'string'
          ? line
          : (line.length > 4 * RAW_CAP ? line.subarray(0, 4 * RAW_CAP) : line).toString('utf8'),
      );
    } catch {
      return { kind: 'unknown', raw: '' };
    }
    let truncated = false;
    if (s.length > RAW_CAP) {
      s = s.slice(0, RAW_CAP) + TRUNCATION_MARKER;
      truncated = true;
    }
    const ev = blank(s);
    try {
      const at = this.envelope(ev, s);
      if (truncated) ev.truncated = true;
      else if (at >= 0) this.message(ev, s.slice(at));
    } catch {
      const fallback = blank(s);
      if (truncated) fallback.truncated = true;
      return fallback;
    }
    if (ev.kind === 'unknown') {
      // an unrecognized line keeps its envelope but no half-extracted fields
      const u = blank(s);
      u.ts = ev.ts;
      u.host = ev.host;
      u.program = ev.program;
      u.pid = ev.pid;
      u.mta = ev.mta;
      u.queue_id = ev.queue_id;
      u.truncated = ev.truncated;
      return u;
    }
    return ev;
  }

  /** Reads the envelope into ev; returns where the message starts, or -1 when there is none. */
  private envelope(ev: MailEvent, s: string): number {
    const c0 = s.charCodeAt(0);
    if (c0 === 60 /* < */) {
      R5424.lastIndex = 0;
      const m = R5424.exec(s);
      if (m) return this.rfc5424(ev, s, m);
    }
    if ((c0 >= 48 && c0 <= 57) || c0 === 60) {
      R3339.lastIndex = 0;
      let m = R3339.exec(s);
      if (m && validIsoDate(m[1]!) && validTime(m[2]!) && validOffset(m[3])) {
        const off = m[3];
        ev.ts = `${m[1]}T${m[2]}${off === undefined ? this.localOffset(m[1]!, m[2]!) : normOffset(off)}`;
        return this.hostTag(ev, s, R3339.lastIndex);
      }
      if (c0 !== 60) {
        REXIM.lastIndex = 0;
        m = REXIM.exec(s);
        if (m && validDate(+m[1]!, +m[2]!, +m[3]!) && validTime(m[4]! + m[5]!) && validOffset(m[7])) {
          const y = +m[1]!;
          const mo = +m[2]!;
          const d = +m[3]!;
          const h = +m[4]!;
          const off = m[7] !== undefined ? `${m[7]}:${m[8]}` : this.clock.offset(y, mo, d, h);
          ev.ts = `${m[1]}-${m[2]}-${m[3]}T${m[4]}${m[5]}${m[6] ?? ''}${off}`;
          ev.host = this.host;
          ev.mta = 'exim';
          if (m[9] !== undefined) ev.pid = +m[9];
          return REXIM.lastIndex;
        }
      }
    }
    R3164.lastIndex = 0;
    const m = R3164.exec(s);
    if (!m) return -1;
    const mo = MONTHS[m[1]!];
    const d = +m[2]!;
    if (mo === undefined || d < 1 || d > 31) return -1;
    const time = m[3]!;
    if (!validTime(time)) return -1;
    const y = this.years.yearOf(mo);
    if (!validDate(y, mo, d)) return -1;
    const h = (time.charCodeAt(0) - 48) * 10 + time.charCodeAt(1) - 48;
    ev.ts = `${y}-${pad2(mo)}-${pad2(d)}T${time}${m[4] ?? ''}${this.clock.offset(y, mo, d, h)}`;
    return this.hostTag(ev, s, R3164.lastIndex);
  }

  private localOffset(date: string, time: string): string {
    return this.clock.offset(+date.slice(0, 4), +date.slice(5, 7), +date.slice(8, 10), +time.slice(0, 2));
  }

  private hostTag(ev: MailEvent, s: string, at: number): number {
    RHOSTTAG.lastIndex = at;
    const m = RHOSTTAG.exec(s);
    if (!m) return -1;
    ev.host = m[1];
    ev.program = m[2];
    if (m[3] !== undefined) ev.pid = +m[3];
    return RHOSTTAG.lastIndex;
  }

  private rfc5424(ev: MailEvent, s: string, m: RegExpExecArray): number {
    const ts = m[1]!;
    if (ts !== '-') {
      const t = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,9})?(Z|[+-]\d\d:?\d\d)$/.exec(ts);
      if (t && validIsoDate(t[1]!) && validTime(t[2]!) && validOffset(t[4]))
        ev.ts = `${t[1]}T${t[2]}${t[3] ?? ''}${normOffset(t[4]!)}`;
    }
    if (m[2] !== '-') ev.host = m[2];
    if (m[3] !== '-') ev.program = m[3];
    if (m[4] !== '-' && /^\d{1,10}$/.test(m[4]!)) ev.pid = +m[4]!;
    let p = R5424.lastIndex;
    // structured data: `-` or one or more [id k="v" ...] elements (`\]` and `\"` escaped in values)
    if (s.charCodeAt(p) === 45) p++;
    else {
      while (s.charCodeAt(p) === 91) {
        let inQuote = false;
        p++;
        while (p < s.length) {
          const c = s.charCodeAt(p);
          if (c === 92) p += 2;
          else {
            if (c === 34) inQuote = !inQuote;
            else if (c === 93 && !inQuote) break;
            p++;
          }
        }
        p++;
      }
    }
    if (s.charCodeAt(p) === 32) p++;
    if (s.charCodeAt(p) === 0xfeff) p++;
    if (ev.program === undefined) {
      RTAG.lastIndex = p;
      const t = RTAG.exec(s);
      if (t) {
        ev.program = t[1];
        if (t[2] !== undefined) ev.pid = +t[2];
        return RTAG.lastIndex;
      }
    }
    return p;
  }

  private message(ev: MailEvent, msg: string): void {
    if (ev.mta === 'exim') {
      parseExim(ev, msg);
      return;
    }
    const program = ev.program;
    if (program === undefined) return;
    let mta = this.mtaOf.get(program);
    if (mta === undefined) {
      mta = mtaOfProgram(program);
      if (this.mtaOf.size > 1024) this.mtaOf.clear();
      this.mtaOf.set(program, mta);
    }
    switch (mta) {
      case Mta.Postfix:
        parsePostfix(ev, msg);
        return;
      case Mta.Sendmail:
        parseSendmail(ev, msg);
        return;
      case Mta.Exim:
        parseExim(ev, msg);
        return;
    }
  }
}

function mtaOfProgram(program: string): Mta {
  const slash = program.lastIndexOf('/');
  if (slash !== -1) {
    if (POSTFIX_DAEMONS.has(program.slice(slash + 1))) return Mta.Postfix;
    return program.startsWith('postfix') ? Mta.Postfix : Mta.None;
  }
  if (program === 'postfix' || program === 'postfix-script') return Mta.Postfix;
  if (program === 'sendmail' || program.startsWith('sm-')) return Mta.Sendmail;
  if (program === 'exim' || program === 'exim4' || program.startsWith('exim')) return Mta.Exim;
  return Mta.None;
}

const DAYS = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** A real calendar day (no 30 February): an impossible ts would fail whole batches downstream. */
function validDate(y: number, mo: number, d: number): boolean {
  if (mo < 1 || mo > 12 || d < 1 || d > DAYS[mo]!) return false;
  return mo !== 2 || d < 29 || (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0));
}

function validIsoDate(date: string): boolean {
  return validDate(+date.slice(0, 4), +date.slice(5, 7), +date.slice(8, 10));
}

/** `hh:mm:ss`; a leap second (`:60`) is refused too: Date.parse and ClickHouse reject it. */
function validTime(t: string): boolean {
  return +t.slice(0, 2) <= 23 && +t.slice(3, 5) <= 59 && +t.slice(6, 8) <= 59;
}

function validOffset(off: string | undefined): boolean {
  if (off === undefined || off === 'Z') return true;
  const mm = off.length === 6 ? off.slice(4) : off.slice(3);
  return +off.slice(1, 3) <= 14 && +mm <= 59;
}

function normOffset(off: string): string {
  if (off === 'Z' || off.length === 6) return off;
  return `${off.slice(0, 3)}:${off.slice(3)}`;
}

/** ES2024 string methods (Node 20 has them; the project's lib setting is ES2023). */
interface WellFormed {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/** Trailing CR/LF off, NUL and lone surrogates to U+FFFD: raw stays valid UTF-8 in any JSON or SQL sink. */
function sanitize(s: string): string {
  let end = s.length;
  while (end > 0) {
    const c = s.charCodeAt(end - 1);
    if (c !== 10 && c !== 13) break;
    end--;
  }
  if (end !== s.length) s = s.slice(0, end);
  if (s.indexOf('\0') !== -1) s = s.replaceAll('\0', REPLACEMENT);
  const w = s as unknown as WellFormed;
  if (!w.isWellFormed()) s = w.toWellFormed();
  return s;
}
