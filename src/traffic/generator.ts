import type { MailEvent, Mta } from '../event/mail-event.js';
import {
  type LineOptions,
  pfBounceNotice,
  pfClient,
  pfConnect,
  pfDisconnect,
  pfLost,
  pfPregreet,
  pfQueued,
  pfRejectUnknown,
  type Session,
  smFrom,
  smNoMail,
  smRejectUnknown,
} from './lines.js';
import { Rng } from './rng.js';

// The seeded traffic generator: normal mail of a fleet plus attack scenarios, with ground truth
// (which client IP is who). Used by the detector's data-driven tests, by benchmarks and by the
// respond and end-to-end tests. Same spec and seed, same events, byte for byte.

export interface HostSpec {
  name: string;
  mta: Mta;
}

export interface LegitSpec {
  /** Distinct legitimate sending IPs. */
  senders?: number;
  messages_per_hour?: number;
  /** Share of recipients that are typos (unknown users). */
  typo_rate?: number;
  /** Mailing-list servers posting to local subscribers, some of them gone (they bounce). */
  lists?: number;
  list_subscribers?: number;
  list_posts_per_hour?: number;
  list_dead_share?: number;
  /** Share of inbound messages that are DSNs (null sender) — the normal bounce baseline. */
  dsn_share?: number;
  /** Share of messages for which we generate a bounce notice. */
  bounce_share?: number;
}

export type AttackSpec =
  | {
      kind: 'dha_single';
      actor: string;
      ip: string;
      start_s: number;
      unknown: number;
      per_session?: number;
      interval_s?: number;
      domain?: string;
    }
  | {
      kind: 'dha_distributed';
      actor: string;
      bots: number;
      start_s: number;
      duration_s: number;
      domain: string;
      unknown_min?: number;
      unknown_max?: number;
      /** First octets of the bots' addresses are drawn from these (default: 45, 77, 91, 185, 193). */
      first_octets?: number[];
    }
  | {
      kind: 'dha_prefix';
      actor: string;
      /** e.g. 203.0.113 — addresses .1 .. .N of this /24 */
      net24: string;
      sources: number;
      unknown_each: number;
      start_s: number;
      duration_s: number;
      domain?: string;
    }
  | {
      kind: 'bounce_storm';
      actor: string;
      start_s: number;
      duration_s: number;
      sources: number;
      per_minute: number;
      /** Share of the DSNs addressed to forged, nonexistent local users (rejected 5.1.1). */
      unknown_share?: number;
    }
  | {
      kind: 'big_sender';
      actor: string;
      ip: string;
      messages_per_hour: number;
      unknown_rate: number;
      start_s?: number;
      duration_s?: number;
    }
  | {
      kind: 'bot_flow';
      actor: string;
      ip: string;
      start_s: number;
      duration_s: number;
      sessions: number;
      pregreet_share?: number;
    };

export interface TrafficSpec {
  seed: number;
  /** ISO start time. */
  start: string;
  duration_s: number;
  hosts?: HostSpec[];
  local_domains?: string[];
  users_per_domain?: number;
  legit?: LegitSpec;
  attacks?: AttackSpec[];
  /** Render raw log lines (default false: raw is ''). */
  render?: boolean;
}

export type Role = 'legit' | 'list' | 'dsn_source' | 'big_sender' | 'attacker';

export interface Truth {
  role: Role;
  /** The attack's actor name, or `legit`. */
  actor: string;
  /** The attack kind for attackers. */
  attack?: AttackSpec['kind'];
}

export interface Traffic {
  /** Time-ordered events; ids `HOST:gen:N`. */
  events: MailEvent[];
  /** Client IP → who it is. */
  truth: Map<string, Truth>;
  /** Named instants (ms): `<actor>.start`, `<actor>.end`. */
  marks: Record<string, number>;
  startMs: number;
  endMs: number;
}

interface Timed {
  ms: number;
  seq: number;
  ev: MailEvent;
}

const DEFAULT_HOSTS: HostSpec[] = [
  { name: 'mx1', mta: 'postfix' },
  { name: 'mx2', mta: 'postfix' },
  { name: 'mx3', mta: 'sendmail' },
];

class Builder {
  readonly out: Timed[] = [];
  private seq = 0;
  private qid = 0x10000;
  readonly o: LineOptions;

  constructor(render: boolean) {
    this.o = { render };
  }

  push(ev: MailEvent, ms: number): void {
    this.out.push({ ms, seq: this.seq++, ev });
  }

  pfQid(): string {
    return `4${(this.qid++).toString(16).toUpperCase().padStart(9, '0')}`;
  }

  smQid(pid: number): string {
    return `5R${(this.qid++).toString(36).padStart(6, '0')}${String(pid % 1000000).padStart(6, '0')}`;
  }
}

/** One SMTP session: RCPTs (some unknown), DATA if any was accepted. */
function session(
  b: Builder,
  s: Session,
  t0: number,
  sender: string,
  rcpts: { addr: string; known: boolean }[],
  opts: { data?: boolean; size?: number } = {},
): void {
  const o = b.o;
  let t = t0;
  const known = rcpts.filter((r) => r.known).length;
  const data = (opts.data ?? true) && known > 0;
  if (s.mta === 'postfix') {
    b.push(pfConnect(o, s, t), t);
    for (const r of rcpts) {
      t += 40;
      if (!r.known) b.push(pfRejectUnknown(o, s, t, sender, r.addr), t);
    }
    if (data) {
      const qid = b.pfQid();
      t += 60;
      b.push(pfClient(o, s, t, qid), t);
      t += 150;
      b.push(pfQueued(o, s, t, qid, sender, opts.size ?? 4000, known), t);
    }
    t += 80;
    b.push(pfDisconnect(o, s, t, known, rcpts.length, data), t);
  } else {
    const qid = b.smQid(s.pid);
    for (const r of rcpts) {
      t += 40;
      if (!r.known) b.push(smRejectUnknown(o, s, t, qid, r.addr), t);
    }
    t += 100;
    if (data) b.push(smFrom(o, s, t, qid, sender, opts.size ?? 4000, known, `${qid}@${s.clientHost}`), t);
    else if (rcpts.length === 0) b.push(smNoMail(o, s, t, qid), t);
  }
}

export function generate(spec: TrafficSpec): Traffic {
  const rng = new Rng(spec.seed);
  const hosts = spec.hosts ?? DEFAULT_HOSTS;
  const domains = spec.local_domains ?? ['example.net', 'example.org', 'example.com'];
  const usersPerDomain = spec.users_per_domain ?? 20000;
  const startMs = Date.parse(spec.start);
  if (!Number.isFinite(startMs))
    throw new Error(`traffic spec: start ${JSON.stringify(spec.start)} is not a time`);
  const durMs = spec.duration_s * 1000;
  const endMs = startMs + durMs;
  const b = new Builder(spec.render ?? false);
  const truth = new Map<string, Truth>();
  const marks: Record<string, number> = {};

  const user = (r: Rng, d = r.pick(domains)) => `user${r.int(usersPerDomain)}@${d}`;
  const ghost = (r: Rng, d = r.pick(domains)) => `${r.pick(PROBES)}${r.int(100000)}@${d}`;
  const sess = (r: Rng, ip: string, clientHost: string, helo: string, host = r.pick(hosts)): Session => ({
    host: host.name,
    mta: host.mta,
    pid: r.range(1000, 99999),
    ip,
    clientHost,
    port: r.range(1024, 65535),
    helo,
  });

  // ---- normal traffic ----
  const legit = spec.legit;
  if (legit !== undefined) {
    const r = rng.fork(1);
    const nSenders = legit.senders ?? 5000;
    const perHour = legit.messages_per_hour ?? 50000;
    const typo = legit.typo_rate ?? 0.005;
    const dsnShare = legit.dsn_share ?? 0.01;
    const bounceShare = legit.bounce_share ?? 0.005;
    const senderIp = (i: number) => intToIp(0xc6120000 + i * 23 + 1); // 198.18.0.0/15, spread over /24s
    for (let i = 0; i < nSenders; i++) truth.set(senderIp(i), { role: 'legit', actor: 'legit' });
    const total = Math.round((perHour * durMs) / 3_600_000);
    for (let m = 0; m < total; m++) {
      const t = startMs + r.int(durMs);
      // Skewed volumes: a few senders send much, most send little.
      const i = Math.floor(nSenders * r.next() ** 2);
      const ip = senderIp(i);
      const s = sess(r, ip, `mail${i}.sender${i % 997}.example`, `mail${i}.sender${i % 997}.example`);
      const isDsn = r.chance(dsnShare);
      const sender = isDsn ? '' : `u${r.int(500)}@sender${i % 997}.example`;
      const n = isDsn ? 1 : r.chance(0.8) ? 1 : r.range(2, 3);
      const rcpts = [];
      for (let k = 0; k < n; k++) {
        const known = !r.chance(typo);
        rcpts.push({ addr: known ? user(r) : `${user(r).replace('@', 'x@')}`, known });
      }
      session(b, s, t, sender, rcpts, { size: r.range(1500, 60000) });
      if (r.chance(bounceShare)) {
        const h = r.pick(hosts);
        if (h.mta === 'postfix')
          b.push(
            pfBounceNotice(b.o, { host: h.name, mta: h.mta }, t + 2000, b.pfQid(), b.pfQid(), 'sender'),
            t + 2000,
          );
      }
    }
    const lists = legit.lists ?? 20;
    const subs = legit.list_subscribers ?? 200;
    const posts = legit.list_posts_per_hour ?? 6;
    const dead = legit.list_dead_share ?? 0.01;
    for (let l = 0; l < lists; l++) {
      const ip = intToIp(0xc0000200 + l + 1); // 192.0.2.0/24
      truth.set(ip, { role: 'list', actor: `list${l}` });
      const lr = r.fork(100 + l);
      const members = Array.from({ length: subs }, () => ({ addr: user(lr), known: !lr.chance(dead) }));
      const nPosts = Math.round((posts * durMs) / 3_600_000);
      for (let p = 0; p < nPosts; p++) {
        const t = startMs + lr.int(durMs);
        const s = sess(lr, ip, `lists${l}.example`, `lists${l}.example`);
        for (let c = 0; c < members.length; c += 50) {
          session(b, s, t + c * 100, `list${l}-bounces@lists${l}.example`, members.slice(c, c + 50));
        }
      }
    }
  }

  // ---- attacks ----
  let salt = 1000;
  for (const a of spec.attacks ?? []) {
    const r = rng.fork(salt++);
    switch (a.kind) {
      case 'dha_single': {
        truth.set(a.ip, { role: 'attacker', actor: a.actor, attack: a.kind });
        const per = a.per_session ?? 5;
        const gap = (a.interval_s ?? 10) * 1000;
        let t = startMs + a.start_s * 1000;
        marks[`${a.actor}.start`] = t;
        for (let left = a.unknown; left > 0; left -= per) {
          const s = sess(r, a.ip, 'unknown', `${r.pick(HELOS)}`);
          const rcpts = Array.from({ length: Math.min(per, left) }, () => ({
            addr: ghost(r, a.domain),
            known: false,
          }));
          session(b, s, t, `${r.pick(PROBES)}@${r.pick(FORGED)}`, rcpts);
          t += gap;
        }
        marks[`${a.actor}.end`] = t;
        break;
      }
      case 'dha_distributed': {
        const t0 = startMs + a.start_s * 1000;
        const span = a.duration_s * 1000;
        marks[`${a.actor}.start`] = t0;
        marks[`${a.actor}.end`] = t0 + span;
        const octets = a.first_octets ?? [45, 77, 91, 185, 193];
        for (let i = 0; i < a.bots; i++) {
          let ip: string;
          do ip = `${r.pick(octets)}.${r.int(256)}.${r.int(256)}.${r.range(1, 254)}`;
          while (truth.has(ip));
          truth.set(ip, { role: 'attacker', actor: a.actor, attack: a.kind });
          const k = r.range(a.unknown_min ?? 2, a.unknown_max ?? 4);
          const sessions = k >= 3 && r.chance(0.5) ? 2 : 1;
          let left = k;
          for (let si = 0; si < sessions; si++) {
            const n = si === sessions - 1 ? left : r.range(1, left - 1);
            left -= n;
            const rcpts = Array.from({ length: n }, () => ({ addr: ghost(r, a.domain), known: false }));
            const s = sess(r, ip, 'unknown', r.pick(HELOS));
            session(b, s, t0 + r.int(span), `${r.pick(PROBES)}@${r.pick(FORGED)}`, rcpts);
          }
        }
        break;
      }
      case 'dha_prefix': {
        const t0 = startMs + a.start_s * 1000;
        const span = a.duration_s * 1000;
        marks[`${a.actor}.start`] = t0;
        for (let i = 1; i <= a.sources; i++) {
          const ip = `${a.net24}.${i}`;
          truth.set(ip, { role: 'attacker', actor: a.actor, attack: a.kind });
          for (let k = 0; k < a.unknown_each; k++) {
            const s = sess(r, ip, 'unknown', r.pick(HELOS));
            session(b, s, t0 + r.int(span), `${r.pick(PROBES)}@${r.pick(FORGED)}`, [
              { addr: ghost(r, a.domain), known: false },
            ]);
          }
        }
        break;
      }
      case 'bounce_storm': {
        const t0 = startMs + a.start_s * 1000;
        const span = a.duration_s * 1000;
        marks[`${a.actor}.start`] = t0;
        marks[`${a.actor}.end`] = t0 + span;
        const srcs = Array.from({ length: a.sources }, (_, i) => intToIp(0x64400000 + i * 97 + 1)); // 100.64.0.0/10
        for (const ip of srcs) truth.set(ip, { role: 'dsn_source', actor: a.actor, attack: a.kind });
        const n = Math.round((a.per_minute * span) / 60_000);
        const unk = a.unknown_share ?? 0.6;
        for (let i = 0; i < n; i++) {
          const ip = srcs[Math.floor(srcs.length * r.next() ** 1.5)]!;
          const s = sess(
            r,
            ip,
            `mx.remote${srcs.indexOf(ip)}.example`,
            `mx.remote${srcs.indexOf(ip)}.example`,
          );
          const known = !r.chance(unk);
          session(b, s, t0 + r.int(span), '', [{ addr: known ? user(r) : ghost(r), known }]);
        }
        break;
      }
      case 'big_sender': {
        truth.set(a.ip, { role: 'big_sender', actor: a.actor });
        const t0 = startMs + (a.start_s ?? 0) * 1000;
        const span = (a.duration_s ?? (endMs - t0) / 1000) * 1000;
        const n = Math.round((a.messages_per_hour * span) / 3_600_000);
        for (let i = 0; i < n; i++) {
          const s = sess(r, a.ip, 'out.bulk.example', 'out.bulk.example');
          const known = !r.chance(a.unknown_rate);
          session(b, s, t0 + r.int(span), `news@bulk.example`, [{ addr: known ? user(r) : ghost(r), known }]);
        }
        break;
      }
      case 'bot_flow': {
        truth.set(a.ip, { role: 'attacker', actor: a.actor, attack: a.kind });
        const t0 = startMs + a.start_s * 1000;
        const span = a.duration_s * 1000;
        marks[`${a.actor}.start`] = t0;
        for (let i = 0; i < a.sessions; i++) {
          const t = t0 + Math.floor((i * span) / a.sessions);
          const s = sess(r, a.ip, 'unknown', r.pick(HELOS));
          if (s.mta !== 'postfix') {
            b.push(smNoMail(b.o, s, t, b.smQid(s.pid)), t);
            continue;
          }
          if (r.chance(a.pregreet_share ?? 0)) b.push(pfPregreet(b.o, s, t - 5), t - 5);
          b.push(pfConnect(b.o, s, t), t);
          if (r.chance(0.5)) b.push(pfLost(b.o, s, t + 300, 'EHLO'), t + 300);
          b.push(pfDisconnect(b.o, s, t + 310, 0, 0, false), t + 310);
        }
        break;
      }
    }
  }

  const inRange = b.out.filter((x) => x.ms >= startMs && x.ms < endMs + 60_000);
  inRange.sort((x, y) => x.ms - y.ms || x.seq - y.seq);
  const perHost = new Map<string, number>();
  const events = inRange.map((x) => {
    const h = x.ev.host ?? '';
    const n = (perHost.get(h) ?? 0) + 1;
    perHost.set(h, n);
    x.ev.id = `${h}:gen:${n}`;
    return x.ev;
  });
  return { events, truth, marks, startMs, endMs };
}

/** The traffic as log files: one text per host, lines in time order (spec.render must be true). */
export function toLogFiles(t: Traffic): Map<string, string> {
  const files = new Map<string, string[]>();
  for (const e of t.events) {
    if (e.raw === '') throw new Error('toLogFiles: generate with render: true');
    const h = e.host ?? '';
    let lines = files.get(h);
    if (lines === undefined) {
      lines = [];
      files.set(h, lines);
    }
    lines.push(e.raw);
  }
  return new Map([...files].map(([h, l]) => [h, `${l.join('\n')}\n`]));
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const PROBES = [
  'admin',
  'info',
  'sales',
  'john',
  'mary',
  'support',
  'office',
  'test',
  'webmaster',
  'contact',
];
const FORGED = ['mail.ru', 'example.cn', 'random.biz', 'spam.example'];
const HELOS = ['localhost', 'user-pc', 'WIN-1234', 'mail', 'ylmf-pc', 'desktop', 'host', 'smtp'];
