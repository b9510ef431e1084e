import type { DetectConfig } from '../config.js';
import type { Emitter } from '../emit.js';
import { C_ACC, C_UNK } from '../source-counters.js';
import type { CounterTable } from '../window/counter-table.js';

/**
 * dha_source, per client IP: unknown-recipient rejects and their share of all recipients,
 * sustained over the window. Called after an unknown-recipient reject was counted for `slot`.
 */
export class DhaSource {
  private readonly n: number;

  constructor(
    private readonly cfg: DetectConfig['dha_source'],
    private readonly table: CounterTable,
    private readonly emitter: Emitter,
    bucketS: number,
  ) {
    this.n = Math.ceil(cfg.window_s / bucketS);
  }

  check(slot: number, ip: string, atMs: number, samples: () => string[], hosts: () => string[]): void {
    if (!this.cfg.enabled) return;
    const unk = this.table.sum(slot, C_UNK, this.n);
    if (unk < this.cfg.min_unknown) return;
    const acc = this.table.sum(slot, C_ACC, this.n);
    const ratio = unk / (unk + acc);
    if (ratio < this.cfg.min_ratio) return;
    if (this.emitter.quiet('dha_source', ip, atMs)) return;
    this.emitter.fire({
      detector: 'dha_source',
      subject: ip,
      subjectKind: 'ip',
      target: ip,
      reply: this.cfg.reply,
      reason: `${unk} unknown recipients (${Math.round(ratio * 100)}% of ${unk + acc}) from ${ip} within ${this.cfg.window_s} s`,
      confidence: this.cfg.confidence,
      evidence: {
        counts: { user_unknown: unk, accepted_rcpt: acc },
        window_s: this.cfg.window_s,
        threshold: { min_unknown: this.cfg.min_unknown, min_ratio: this.cfg.min_ratio },
        sample_event_ids: samples(),
        hosts: hosts(),
      },
      atMs,
      windowMs: this.cfg.window_s * 1000,
    });
  }
}
