import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import type { MailEvent } from '../event/mail-event.js';
import { BotFlow } from './bot-flow/bot-flow.js';
import type { DetectConfig } from './config.js';
import { DhaSource } from './dha-source/dha-source.js';
import type { Emitter } from './emit.js';
import { droppedTotal, untrackedTotal } from './metrics.js';
import type { Signal } from './signal.js';
import {
  A_HELO_CUR,
  A_HELO_EPOCH,
  A_HELO_PREV,
  A_HOSTS,
  AUX,
  C_ACC,
  C_CONN,
  C_LOST,
  C_MSG,
  C_NODATA,
  C_PREG,
  C_PROTO,
  C_UNK,
  COUNTERS,
} from './source-counters.js';
import { CounterTable, fnv1a } from './window/counter-table.js';

const SAMPLES = 5;

/**
 * Stage 1: everything that needs all events of one source (client IP) in one place — what the
 * `mail.events` partitioning (keyed by client IP) guarantees. Runs dha_source and bot_flow and
 * hands stage 2 the few events fleet-wide detectors need, as signals.
 *
 * Per event: no allocation unless the event is an unknown-recipient reject, a bounce, or the
 * source's first event.
 */
export class SourceStage {
  readonly table: CounterTable;
  private readonly dha: DhaSource;
  private readonly bot: BotFlow;
  private readonly samples = new LRUCache<string, string[]>({ max: 50_000 });
  /**
   * Domains a source sent unknown recipients to, and when it last told stage 2 it also sends real
   * mail there: an accepted message after probes clears it of a harvest (a mailing list's first
   * post: its dead subscribers are refused before the message is accepted).
   */
  private readonly probed = new LRUCache<string, { domains: string[]; toldMs: number }>({ max: 100_000 });
  private readonly hostIndex = new Map<string, number>();
  private readonly hostNames: string[] = [];
  private readonly accBuckets: number;
  private readonly heloHalfBuckets: number;
  private readonly bucketMs: number;
  private lastSweepBucket = 0;
  late = 0;
  untracked = 0;
  private untrackedLogged = false;

  constructor(
    private readonly cfg: DetectConfig,
    private readonly emitter: Emitter,
    private readonly emitSignal: (s: Signal) => void,
  ) {
    const w = cfg.window;
    this.bucketMs = w.bucket_s * 1000;
    // Only the dha_source counters need the long window; the flow counters keep bot_flow's.
    const flow = Math.ceil(cfg.bot_flow.window_s / w.bucket_s);
    const dha = Math.ceil(cfg.dha_source.window_s / w.bucket_s);
    const rings = Array.from({ length: COUNTERS }, () => flow);
    rings[C_UNK] = dha;
    rings[C_ACC] = dha;
    this.table = new CounterTable({
      counters: COUNTERS,
      buckets: w.buckets,
      rings,
      bucketMs: this.bucketMs,
      aux: AUX,
      maxKeys: w.max_sources,
    });
    this.dha = new DhaSource(cfg.dha_source, this.table, emitter, w.bucket_s);
    this.bot = new BotFlow(cfg.bot_flow, this.table, emitter, w.bucket_s);
    this.accBuckets = Math.ceil(cfg.dha_source.window_s / w.bucket_s);
    this.heloHalfBuckets = Math.max(1, Math.ceil(cfg.bot_flow.window_s / w.bucket_s / 2));
  }

  /** ms: skew-corrected event time; watermarkMs: the clock's watermark after this event. */
  onEvent(ev: MailEvent, ms: number, watermarkMs: number): void {
    const kind = ev.kind;
    const sender = ev.sender;
    const host = ev.host ?? '';

    // Fleet-wide bounce signals first: many carry no client IP (qmgr, bounce daemon).
    if (sender === '') {
      if (kind === 'queued' || kind === 'reject') {
        this.emitSignal({ k: 'f:bounce', t: 'n', ms, h: host, ip: ev.client_ip, id: ev.id });
      } else if (kind === 'delivery' && isDoubleBounceRcpt(ev.recipient)) {
        this.emitSignal({ k: 'f:bounce', t: 'x', ms, h: host, id: ev.id });
      }
    }
    if (kind === 'bounce_notice') {
      const dbl = ev.text?.includes('postmaster') === true;
      this.emitSignal({ k: 'f:bounce', t: dbl ? 'x' : 'b', ms, h: host, id: ev.id });
    }

    const ip = ev.client_ip;
    if (ip === undefined) return;
    let counter: number;
    let isMsg = false;
    let accExtra = 0;
    switch (kind) {
      case 'connect':
        counter = C_CONN;
        break;
      case 'reject':
        counter = ev.reason === 'user_unknown' ? C_UNK : C_PROTO;
        break;
      case 'client':
        counter = C_MSG;
        isMsg = true;
        break;
      case 'queued':
        // Postfix' qmgr line has no client; sendmail's from= and exim's <= lines do.
        if (ev.mta === 'postfix') return;
        // Sendmail logs from= with nrcpts=0 for an envelope that got no recipient (a harvest's
        // RCPTs all refused, a session that quit after MAIL): not a message.
        if (ev.nrcpt === 0) {
          counter = C_NODATA;
          break;
        }
        counter = C_MSG;
        isMsg = true;
        break;
      case 'disconnect': {
        const cc = ev.command_counts;
        if (cc === undefined) return;
        const data = cc.data?.ok ?? 0;
        if (data > 0) {
          // Each accepted message counted one recipient at its `client=` line; add the rest.
          const extra = (cc.rcpt?.ok ?? 0) - data;
          if (extra <= 0) return;
          counter = C_ACC;
          accExtra = extra;
          break;
        }
        // Only sessions that never tried a transaction: one whose RCPTs were all refused is the
        // reject detectors' business (a real MTA delivering to a gone user looks like that).
        if ((cc.rcpt?.total ?? 0) > 0) return;
        counter = C_NODATA;
        break;
      }
      case 'no_mail':
        counter = C_NODATA;
        break;
      case 'lost_connection':
        counter = C_LOST;
        break;
      case 'pregreet':
        counter = C_PREG;
        break;
      case 'protocol_error':
        counter = C_PROTO;
        break;
      default:
        return;
    }

    const t = this.table;
    const bucket = Math.floor(ms / this.bucketMs);
    const slot = t.slot(ip, bucket);
    if (slot < 0) {
      this.untracked++;
      untrackedTotal.inc({ table: 'source' });
      if (!this.untrackedLogged) {
        this.untrackedLogged = true;
        this.emitter.log.error(
          { max_sources: this.cfg.window.max_sources },
          'source table full: new sources are not tracked until idle ones expire; raise detect.window.max_sources',
        );
      }
      return;
    }
    if (!t.advance(slot, bucket)) {
      this.late++;
      droppedTotal.inc({ stage: 'source' });
      return;
    }
    t.setAux(slot, A_HOSTS, t.getAux(slot, A_HOSTS) | (1 << (this.hostIdx(host) & 31)));
    if (ev.helo !== undefined) this.helo(slot, bucket, ev.helo);

    if (isMsg) {
      t.add(slot, C_MSG, bucket);
      t.add(slot, C_ACC, bucket, ev.nrcpt !== undefined && ev.nrcpt > 0 ? ev.nrcpt : 1);
      this.acceptedAfterProbes(ip, ms, host, slot);
      this.bot.check(
        slot,
        ip,
        ms,
        () => this.sampleIds(ip),
        () => this.hostsOf(slot),
      );
    } else if (counter === C_UNK) {
      if (sender === '' && !this.cfg.dha_source.count_null_sender) return;
      t.add(slot, C_UNK, bucket);
      this.remember(ip, ev.id);
      this.dha.check(
        slot,
        ip,
        ms,
        () => this.sampleIds(ip),
        () => this.hostsOf(slot),
      );
      this.unknownSignals(ev, ip, ms, host, slot);
    } else if (counter === C_ACC) {
      t.add(slot, C_ACC, bucket, accExtra);
      this.acceptedAfterProbes(ip, ms, host, slot);
    } else {
      t.add(slot, counter, bucket);
      if (counter !== C_CONN) this.remember(ip, ev.id);
      this.bot.check(
        slot,
        ip,
        ms,
        () => this.sampleIds(ip),
        () => this.hostsOf(slot),
      );
    }

    if (bucket > this.lastSweepBucket && watermarkMs > Number.NEGATIVE_INFINITY) this.sweep(watermarkMs);
  }

  /** Frees sources idle for longer than the ring holds. */
  sweep(watermarkMs: number): void {
    const wmBucket = Math.floor(watermarkMs / this.bucketMs);
    if (wmBucket <= this.lastSweepBucket) return;
    this.lastSweepBucket = wmBucket;
    this.table.sweep(wmBucket - this.table.buckets, (key) => {
      this.samples.delete(key);
      this.probed.delete(key);
    });
  }

  private unknownSignals(ev: MailEvent, ip: string, ms: number, host: string, slot: number): void {
    const rcpt = ev.recipient;
    const acc = this.table.sum(slot, C_ACC, this.accBuckets);
    if (rcpt !== undefined) {
      const at = rcpt.lastIndexOf('@');
      if (at >= 0 && at < rcpt.length - 1) {
        const domain = rcpt.slice(at + 1).toLowerCase();
        const p = this.probed.get(ip);
        if (p === undefined) this.probed.set(ip, { domains: [domain], toldMs: Number.NEGATIVE_INFINITY });
        else if (!p.domains.includes(domain)) {
          if (p.domains.length >= 4) p.domains.shift();
          p.domains.push(domain);
          p.toldMs = Number.NEGATIVE_INFINITY;
        }
        this.emitSignal({
          k: `d:${domain}`,
          t: 'u',
          ms,
          h: host,
          ip,
          id: ev.id,
          acc,
        });
      }
    }
    const prefix = prefixOf(ip, this.cfg.dha_prefix.v4_len, this.cfg.dha_prefix.v6_len);
    if (prefix !== undefined) this.emitSignal({ k: `p:${prefix}`, t: 'u', ms, h: host, ip, id: ev.id, acc });
  }

  /** Tells the domains a source probed that it sends real mail too (at most every 5 min of log time). */
  private acceptedAfterProbes(ip: string, ms: number, host: string, slot: number): void {
    const p = this.probed.get(ip);
    if (p === undefined || ms - p.toldMs < 300_000) return;
    p.toldMs = ms;
    const acc = this.table.sum(slot, C_ACC, this.accBuckets);
    for (const domain of p.domains) this.emitSignal({ k: `d:${domain}`, t: 'a', ms, h: host, ip, acc });
  }

  private helo(slot: number, bucket: number, helo: string): void {
    const t = this.table;
    const half = Math.floor(bucket / this.heloHalfBuckets);
    const cur = t.getAux(slot, A_HELO_EPOCH);
    if (half !== cur) {
      t.setAux(slot, A_HELO_PREV, half === cur + 1 ? t.getAux(slot, A_HELO_CUR) : 0);
      t.setAux(slot, A_HELO_CUR, 0);
      t.setAux(slot, A_HELO_EPOCH, half);
    }
    t.setAux(slot, A_HELO_CUR, t.getAux(slot, A_HELO_CUR) | (1 << (fnv1a(helo.toLowerCase()) & 31)));
  }

  private remember(ip: string, id: string | undefined): void {
    if (id === undefined) return;
    const ids = this.samples.get(ip);
    if (ids === undefined) this.samples.set(ip, [id]);
    else if (ids.length < SAMPLES) ids.push(id);
    else {
      ids.shift();
      ids.push(id);
    }
  }

  private sampleIds(ip: string): string[] {
    return [...(this.samples.get(ip) ?? [])];
  }

  private hostIdx(host: string): number {
    let i = this.hostIndex.get(host);
    if (i === undefined) {
      i = this.hostNames.length;
      this.hostIndex.set(host, i);
      this.hostNames.push(host);
    }
    return i;
  }

  private hostsOf(slot: number): string[] {
    const mask = this.table.getAux(slot, A_HOSTS);
    const out: string[] = [];
    for (let i = 0; i < this.hostNames.length; i++) {
      if (mask & (1 << (i & 31))) out.push(this.hostNames[i]!);
    }
    return out;
  }
}

const doubleBounce = /^(postmaster|double-bounce|mailer-daemon)@/i;

function isDoubleBounceRcpt(rcpt: string | undefined): boolean {
  return rcpt !== undefined && doubleBounce.test(rcpt);
}

/** The /v4Len or /v6Len network of ip, e.g. 203.0.113.0/24; undefined when ip is not an address. */
export function prefixOf(ip: string, v4Len: number, v6Len: number): string | undefined {
  if (v4Len === 24 && !ip.includes(':')) {
    const dot = ip.lastIndexOf('.');
    if (dot > 0) return `${ip.slice(0, dot)}.0/24`;
  }
  try {
    const addr = ipaddr.process(ip);
    if (addr.kind() === 'ipv4') return `${ipaddr.IPv4.networkAddressFromCIDR(`${addr}/${v4Len}`)}/${v4Len}`;
    return `${ipaddr.IPv6.networkAddressFromCIDR(`${addr}/${v6Len}`).toString()}/${v6Len}`;
  } catch {
    return undefined;
  }
}
