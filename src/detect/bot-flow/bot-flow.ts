import type { DetectConfig } from '../config.js';
import type { Emitter } from '../emit.js';
import {
  A_HELO_CUR,
  A_HELO_PREV,
  C_CONN,
  C_LOST,
  C_MSG,
  C_NODATA,
  C_PREG,
  C_PROTO,
} from '../source-counters.js';
import { type CounterTable, sketchCount } from '../window/counter-table.js';

/**
 * bot_flow, per source across all servers (one IP touching several MXs is one source, counted
 * once): connection rate, sessions without DATA, lost connections, pregreet, protocol errors and
 * many distinct HELO names. Called after a session-level event was counted for `slot`.
 */
export class BotFlow {
  private readonly n: number;

  constructor(
    private readonly cfg: DetectConfig['bot_flow'],
    private readonly table: CounterTable,
    private readonly emitter: Emitter,
    bucketS: number,
  ) {
    this.n = Math.ceil(cfg.window_s / bucketS);
  }

  check(slot: number, ip: string, atMs: number, samples: () => string[], hosts: () => string[]): void {
    if (!this.cfg.enabled) return;
    const t = this.table;
    const conn = t.sum(slot, C_CONN, this.n);
    const noData = t.sum(slot, C_NODATA, this.n);
    const msg = t.sum(slot, C_MSG, this.n);
    const preg = t.sum(slot, C_PREG, this.n);
    const proto = t.sum(slot, C_PROTO, this.n);
    // Sendmail and exim log no connect line: their sessions are known from how they ended.
    const sessions = Math.max(conn, noData + msg + preg);
    const bad = noData + preg + proto;
    const helos = sketchCount(t.getAux(slot, A_HELO_CUR) | t.getAux(slot, A_HELO_PREV));
    let why: string | undefined;
    if (preg >= this.cfg.min_pregreet) why = `${preg} pregreets`;
    else if (sessions >= this.cfg.max_sessions) why = `${sessions} sessions (flood)`;
    else if (sessions >= this.cfg.min_sessions && bad / sessions >= this.cfg.min_bad_ratio)
      why = `${bad} of ${sessions} sessions bad (no DATA, pregreet, protocol errors)`;
    else if (sessions >= this.cfg.min_sessions && helos >= this.cfg.min_helos)
      why = `~${helos} distinct HELO names`;
    if (why === undefined) return;
    if (this.emitter.quiet('bot_flow', ip, atMs)) return;
    this.emitter.fire({
      detector: 'bot_flow',
      subject: ip,
      subjectKind: 'ip',
      target: ip,
      reply: this.cfg.reply,
      reason: `${why} from ${ip} within ${this.cfg.window_s} s`,
      confidence: this.cfg.confidence,
      evidence: {
        counts: {
          sessions,
          connections: conn,
          messages: msg,
          no_data: noData,
          lost: t.sum(slot, C_LOST, this.n),
          pregreet: preg,
          protocol_errors: proto,
          helos,
        },
        window_s: this.cfg.window_s,
        threshold: {
          min_sessions: this.cfg.min_sessions,
          min_bad_ratio: this.cfg.min_bad_ratio,
          max_sessions: this.cfg.max_sessions,
          min_pregreet: this.cfg.min_pregreet,
          min_helos: this.cfg.min_helos,
        },
        sample_event_ids: samples(),
        hosts: hosts(),
      },
      atMs,
      windowMs: this.cfg.window_s * 1000,
    });
  }
}
