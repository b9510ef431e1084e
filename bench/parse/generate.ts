// A seeded, realistic mixed MTA log for benchmarks and load tests: whole SMTP sessions (connect,
// rejects, accepted mail with its queue lifecycle, disconnect) from a population of clients, some of
// them harvesters and bots; Postfix-heavy (syslog RFC 3164), with Sendmail (RFC 3339 high
// precision) and Exim (its own main log). The same seed gives the same bytes.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export interface GenerateOptions {
  lines: number;
  seed?: number;
  /** Start of the log (UTC); default 2026-11-27T00:00:00Z. */
  start?: Date;
  /** Mean seconds between sessions; default 0.05. */
  interval?: number;
  /** Shares of sessions per MTA; default 0.7 / 0.2 / 0.1. */
  mix?: { postfix: number; sendmail: number; exim: number };
}

/** mulberry32: small, fast, good enough for workload shapes. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const USERS = [
  'alice',
  'bob',
  'carol',
  'dave',
  'erin',
  'frank',
  'grace',
  'heidi',
  'ivan',
  'judy',
  'postmaster',
];
const DOMAINS = ['example.org', 'example.net', 'mail.example.com', 'lists.example.org'];
const REMOTE = ['gmail.example', 'outlook.example', 'yahoo.example', 'web.example', 'isp.example'];
const HELOS = [
  'ylmf-pc',
  'User',
  'localhost',
  'mail.example.net',
  'mx.remote.example',
  '[192.0.2.1]',
  'WIN-3K8',
];
const B32 = 'BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789';

class Gen {
  readonly r: () => number;
  t: number;
  private seq = 0;
  constructor(
    seed: number,
    start: number,
    private readonly interval: number,
  ) {
    this.r = rng(seed);
    this.t = start;
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  tick(max = 0.02): void {
    this.t += this.r() * max * 1000;
  }
  nextSession(): void {
    this.t += -Math.log(1 - this.r()) * this.interval * 1000;
  }
  ip(): string {
    // a few prolific sources and a long tail, some IPv6
    if (this.r() < 0.05) return `2001:db8:${this.int(0xffff).toString(16)}::${this.int(0xffff).toString(16)}`;
    if (this.r() < 0.3) return `203.0.113.${this.int(40)}`;
    return `${this.pick([198, 192, 185, 45, 91, 77])}.${this.int(256)}.${this.int(256)}.${1 + this.int(254)}`;
  }
  pfQid(): string {
    return (0x100000000 + this.seq++ * 7919 + this.int(1 << 20)).toString(16).toUpperCase().slice(-11);
  }
  smQid(): string {
    let s = '5AR';
    for (let i = 0; i < 5; i++) s += B32[this.int(B32.length)];
    return s + String(100000 + this.int(900000));
  }
  exQid(): string {
    let s = '1t';
    for (let i = 0; i < 4; i++) s += B32[this.int(B32.length)];
    return `${s}-000000${String(this.int(99999)).padStart(5, '0')}-${B32[this.int(50)]}${B32[this.int(50)]}${B32[this.int(50)]}${B32[this.int(50)]}`;
  }
  pid(): number {
    return 1000 + this.int(60000);
  }
  /** RFC 3164 time (UTC). */
  bsd(): string {
    const d = new Date(this.t);
    const day = d.getUTCDate();
    return `${MON[d.getUTCMonth()]} ${day < 10 ? ` ${day}` : day} ${d.toISOString().slice(11, 19)}`;
  }
  iso(): string {
    return `${new Date(this.t).toISOString().slice(0, 23)}${String(this.int(1000)).padStart(3, '0')}+00:00`;
  }
  exim(): string {
    return new Date(this.t).toISOString().slice(0, 19).replace('T', ' ');
  }
}

function postfixSession(g: Gen, out: string[]): void {
  const host = g.pick(['mx1', 'mx2', 'mx3']);
  const smtpd = g.pid();
  const ip = g.ip();
  const name = g.r() < 0.6 ? 'unknown' : `host-${ip.replace(/[.:]/g, '-')}.${g.pick(REMOTE)}`;
  const client = `${name}[${ip}]`;
  const pre = () => `${g.bsd()} ${host} postfix/smtpd[${smtpd}]: `;
  const helo = g.pick(HELOS);
  const from =
    g.r() < 0.1 ? '' : `${g.pick(['news', 'info', 'noreply', 'x', 'm'])}${g.int(999)}@${g.pick(REMOTE)}`;
  const roll = g.r();
  if (roll < 0.08) {
    out.push(
      `${g.bsd()} ${host} postfix/postscreen[${g.pid()}]: CONNECT from [${ip}]:${1024 + g.int(60000)} to [192.0.2.1]:25`,
    );
    g.tick();
    const v = g.r();
    if (v < 0.3)
      out.push(
        `${g.bsd()} ${host} postfix/postscreen[${g.pid()}]: PREGREET 11 after 0.${g.int(99)} from [${ip}]:${1024 + g.int(60000)}: EHLO ${helo}\\r\\n`,
      );
    else if (v < 0.6)
      out.push(
        `${g.bsd()} ${host} postfix/postscreen[${g.pid()}]: DNSBL rank ${1 + g.int(5)} for [${ip}]:${1024 + g.int(60000)}`,
      );
    else
      out.push(`${g.bsd()} ${host} postfix/postscreen[${g.pid()}]: PASS NEW [${ip}]:${1024 + g.int(60000)}`);
    return;
  }
  out.push(`${pre()}connect from ${client}`);
  g.tick();
  if (roll < 0.4) {
    // a harvester: several unknown users, then gone
    const n = 1 + g.int(5);
    for (let i = 0; i < n; i++) {
      const rcpt = `${g.pick(['admin', 'info', 'sales', 'test', 'webmaster', 'j.smith', 'office'])}${g.int(100)}@${g.pick(DOMAINS)}`;
      out.push(
        `${pre()}NOQUEUE: reject: RCPT from ${client}: 550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in virtual mailbox table; from=<${from}> to=<${rcpt}> proto=ESMTP helo=<${helo}>`,
      );
      g.tick();
    }
    out.push(`${pre()}disconnect from ${client} ehlo=1 mail=1 rcpt=0/${n} quit=1 commands=3/${n + 3}`);
    return;
  }
  if (roll < 0.47) {
    const rcpt = `${g.pick(USERS)}@${g.pick(REMOTE)}`;
    out.push(
      `${pre()}NOQUEUE: reject: RCPT from ${client}: 554 5.7.1 <${rcpt}>: Relay access denied; from=<${from}> to=<${rcpt}> proto=ESMTP helo=<${helo}>`,
    );
    out.push(`${pre()}disconnect from ${client} ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4`);
    return;
  }
  if (roll < 0.52) {
    out.push(
      `${pre()}NOQUEUE: reject: RCPT from ${client}: 554 5.7.1 Service unavailable; Client host [${ip}] blocked using zen.spamhaus.org; from=<${from}> to=<${g.pick(USERS)}@${g.pick(DOMAINS)}> proto=ESMTP helo=<${helo}>`,
    );
    out.push(`${pre()}disconnect from ${client} ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4`);
    return;
  }
  if (roll < 0.57) {
    out.push(
      `${pre()}lost connection after ${g.pick(['CONNECT', 'EHLO', 'AUTH', 'RCPT', 'DATA (0 bytes)'])} from ${client}`,
    );
    out.push(`${pre()}disconnect from ${client} ehlo=1 auth=0/1 commands=1/2`);
    return;
  }
  if (roll < 0.6) {
    out.push(`${pre()}warning: ${client}: SASL LOGIN authentication failed: UGFzc3dvcmQ6`);
    out.push(`${pre()}disconnect from ${client} ehlo=1 auth=0/1 quit=1 commands=2/3`);
    return;
  }
  // accepted mail and its queue lifecycle
  const qid = g.pfQid();
  const rcpt = `${g.pick(USERS)}@${g.pick(DOMAINS)}`;
  out.push(`${pre()}${qid}: client=${client}`);
  g.tick();
  out.push(
    `${g.bsd()} ${host} postfix/cleanup[${g.pid()}]: ${qid}: message-id=<${g.int(1e9)}.${g.int(1e6)}@${g.pick(REMOTE)}>`,
  );
  out.push(
    `${g.bsd()} ${host} postfix/qmgr[${g.pid()}]: ${qid}: from=<${from}>, size=${500 + g.int(200000)}, nrcpt=1 (queue active)`,
  );
  out.push(`${pre()}disconnect from ${client} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5`);
  g.tick(0.5);
  const d = g.r();
  if (d < 0.85)
    out.push(
      `${g.bsd()} ${host} postfix/lmtp[${g.pid()}]: ${qid}: to=<${rcpt}>, relay=store.example.org[private/dovecot-lmtp], delay=0.${g.int(99)}, delays=0.1/0/0/0.${g.int(9)}, dsn=2.0.0, status=sent (250 2.0.0 <${rcpt}> ${g.int(1e9)} Saved)`,
    );
  else if (d < 0.95)
    out.push(
      `${g.bsd()} ${host} postfix/smtp[${g.pid()}]: ${qid}: to=<${rcpt}>, relay=mx.${g.pick(REMOTE)}[${g.ip()}]:25, delay=${g.int(30)}, delays=0.1/0/1/0.5, dsn=4.7.1, status=deferred (host mx.${g.pick(REMOTE)}[${g.ip()}] said: 450 4.7.1 Greylisted (in reply to RCPT TO command))`,
    );
  else {
    const bq = g.pfQid();
    out.push(
      `${g.bsd()} ${host} postfix/smtp[${g.pid()}]: ${qid}: to=<${rcpt}>, relay=mx.${g.pick(REMOTE)}[${g.ip()}]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host mx.${g.pick(REMOTE)}[${g.ip()}] said: 550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown (in reply to RCPT TO command))`,
    );
    out.push(
      `${g.bsd()} ${host} postfix/bounce[${g.pid()}]: ${qid}: sender non-delivery notification: ${bq}`,
    );
  }
  out.push(`${g.bsd()} ${host} postfix/qmgr[${g.pid()}]: ${qid}: removed`);
}

function sendmailSession(g: Gen, out: string[]): void {
  const host = g.pick(['mx4', 'mx5']);
  const pid = g.pid();
  const ip = g.ip();
  const relay = g.r() < 0.5 ? `[${ip}]` : `host.${g.pick(REMOTE)} [${ip}]`;
  const pre = () => `${g.iso()} ${host} sm-mta[${pid}]: `;
  const qid = g.smQid();
  const from = `${g.pick(['news', 'x', 'info'])}${g.int(999)}@${g.pick(REMOTE)}`;
  const roll = g.r();
  if (roll < 0.35) {
    const n = 1 + g.int(4);
    for (let i = 0; i < n; i++)
      out.push(
        `${pre()}${qid}: <${g.pick(['admin', 'test', 'sales'])}${g.int(100)}@${g.pick(DOMAINS)}>... User unknown`,
      );
    out.push(
      `${pre()}${qid}: from=<${from}>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=${relay}`,
    );
    return;
  }
  if (roll < 0.45) {
    out.push(
      `${pre()}${qid}: ruleset=check_rcpt, arg1=<${g.pick(USERS)}@${g.pick(REMOTE)}>, relay=${relay}, reject=550 5.7.1 <x@${g.pick(REMOTE)}>... Relaying denied`,
    );
    return;
  }
  if (roll < 0.55) {
    out.push(`${pre()}${qid}: ${relay} did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA`);
    return;
  }
  const rcpt = `${g.pick(USERS)}@${g.pick(DOMAINS)}`;
  out.push(
    `${pre()}${qid}: from=<${from}>, size=${500 + g.int(100000)}, class=0, nrcpts=1, msgid=<${g.int(1e9)}@${g.pick(REMOTE)}>, bodytype=8BITMIME, proto=ESMTPS, daemon=MTA, tls_verify=NONE, auth=NONE, relay=${relay}`,
  );
  g.tick(0.3);
  out.push(
    `${g.iso()} ${host} sm-mta[${pid + 1}]: ${qid}: to=<${rcpt}>, delay=00:00:0${g.int(9)}, xdelay=00:00:00, mailer=local, pri=${30000 + g.int(100000)}, dsn=2.0.0, stat=Sent`,
  );
}

function eximSession(g: Gen, out: string[]): void {
  const ip = g.ip();
  const helo = g.pick(HELOS);
  const port = 1024 + g.int(60000);
  const roll = g.r();
  if (roll < 0.4) {
    out.push(
      `${g.exim()} H=(${helo}) [${ip}]:${port} F=<x${g.int(999)}@${g.pick(REMOTE)}> rejected RCPT <${g.pick(['admin', 'info', 'test'])}${g.int(100)}@${g.pick(DOMAINS)}>: Unrouteable address`,
    );
    return;
  }
  if (roll < 0.5) {
    out.push(
      `${g.exim()} no MAIL in SMTP connection from (${helo}) [${ip}]:${port} I=[192.0.2.1]:25 D=${g.int(30)}s C=EHLO,QUIT`,
    );
    return;
  }
  const id = g.exQid();
  const rcpt = `${g.pick(USERS)}@${g.pick(DOMAINS)}`;
  out.push(
    `${g.exim()} ${id} <= x${g.int(999)}@${g.pick(REMOTE)} H=mail.${g.pick(REMOTE)} (${helo}) [${ip}]:${port} I=[192.0.2.1]:25 P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no S=${500 + g.int(100000)} id=${g.int(1e9)}@${g.pick(REMOTE)}`,
  );
  g.tick(0.3);
  out.push(`${g.exim()} ${id} => ${rcpt.split('@')[0]} <${rcpt}> R=local_user T=mail_spool`);
  out.push(`${g.exim()} ${id} Completed`);
}

/** Generates about `lines` lines (whole sessions; the last one may stop the count short of the end). */
export function* generateLines(opts: GenerateOptions): Generator<string> {
  const mix = opts.mix ?? { postfix: 0.7, sendmail: 0.2, exim: 0.1 };
  const g = new Gen(
    opts.seed ?? 1,
    (opts.start ?? new Date('2026-11-27T00:00:00Z')).getTime(),
    opts.interval ?? 0.05,
  );
  let n = 0;
  const buf: string[] = [];
  while (n < opts.lines) {
    g.nextSession();
    const r = g.r();
    buf.length = 0;
    if (r < mix.postfix) postfixSession(g, buf);
    else if (r < mix.postfix + mix.sendmail) sendmailSession(g, buf);
    else eximSession(g, buf);
    for (const l of buf) {
      if (n++ >= opts.lines) return;
      yield l;
    }
  }
}

/** Writes the generated log to a file (one line per LF). */
export async function generateFile(path: string, opts: GenerateOptions): Promise<number> {
  const out = createWriteStream(path);
  let n = 0;
  let chunk = '';
  for (const line of generateLines(opts)) {
    chunk += `${line}\n`;
    n++;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  return n;
}
