import type { DetectConfig } from '../config.js';
import type { Emitter } from '../emit.js';
import { droppedTotal, untrackedTotal } from '../metrics.js';
import type { Signal } from '../signal.js';
import { CounterTable, fnv1a, sketchCount } from '../window/counter-table.js';

const C_UNK = 0;
/** unknown rejects from addresses that had no accepted message in the window */
const C_CLEAN = 1;
const A_SRC_CUR = 0;
const A_SRC_PREV = 1;
const A_SRC_EPOCH = 2;
const BUCKETS = 12;

/**
 * dha_source at prefix level (/24, /64): a harvest spread over neighbouring addresses, each below
 * the per-IP threshold. Stage 2, keyed by prefix; fed the unknown-recipient signals of stage 1.
 */
export class DhaPrefix {
  readonly table: CounterTable;
  private readonly bucketMs: number;
  private readonly samples = new Map<string, string[]>();
  private lastSweep = 0;

  constructor(
    private readonly cfg: DetectConfig['dha_prefix'],
    private readonly emitter: Emitter,
    maxKeys: number,
  ) {
    this.bucketMs = Math.ceil((cfg.window_s * 1000) / BUCKETS);
    this.table = new CounterTable({
      counters: 2,
      buckets: BUCKETS,
      bucketMs: this.bucketMs,
      aux: 3,
      maxKeys,
    });
  }

  onSignal(s: Signal, prefix: string): void {
    if (!this.cfg.enabled || s.ip === undefined) return;
    const t = this.table;
    const bucket = Math.floor(s.ms / this.bucketMs);
    const slot = t.slot(prefix, bucket);
    if (slot < 0) {
      untrackedTotal.inc({ table: 'prefix' });
      return;
    }
    if (!t.advance(slot, bucket)) {
      droppedTotal.inc({ stage: 'prefix' });
      return;
    }
    t.add(slot, C_UNK, bucket);
    if ((s.acc ?? 0) === 0) t.add(slot, C_CLEAN, bucket);
    // Distinct sources: a linear-counting sketch over two half windows.
    const half = Math.floor(bucket / (BUCKETS / 2));
    if (t.getAux(slot, A_SRC_EPOCH) !== half) {
      t.setAux(slot, A_SRC_PREV, half === t.getAux(slot, A_SRC_EPOCH) + 1 ? t.getAux(slot, A_SRC_CUR) : 0);
      t.setAux(slot, A_SRC_CUR, 0);
      t.setAux(slot, A_SRC_EPOCH, half);
    }
    t.setAux(slot, A_SRC_CUR, t.getAux(slot, A_SRC_CUR) | (1 << (fnv1a(s.ip) & 31)));
    if (s.id !== undefined) {
      const ids = this.samples.get(prefix) ?? [];
      if (ids.length === 0) this.samples.set(prefix, ids);
      if (ids.length >= 5) ids.shift();
      ids.push(s.id);
    }

    const unk = t.sum(slot, C_UNK);
    if (unk < this.cfg.min_unknown) return;
    const clean = t.sum(slot, C_CLEAN);
    const sources = sketchCount(t.getAux(slot, A_SRC_CUR) | t.getAux(slot, A_SRC_PREV));
    if (sources < this.cfg.min_sources || clean / unk < this.cfg.min_clean_share) return;
    this.emitter.fire({
      detector: 'dha_prefix',
      subject: prefix,
      subjectKind: 'prefix',
      target: prefix,
      reply: this.cfg.reply,
      reason: `${unk} unknown recipients from ~${sources} addresses of ${prefix} within ${this.cfg.window_s} s`,
      confidence: this.cfg.confidence,
      evidence: {
        counts: { user_unknown: unk, from_sources_without_mail: clean, sources },
        window_s: this.cfg.window_s,
        threshold: {
          min_unknown: this.cfg.min_unknown,
          min_sources: this.cfg.min_sources,
          min_clean_share: this.cfg.min_clean_share,
        },
        sample_event_ids: [...(this.samples.get(prefix) ?? [])],
      },
      atMs: s.ms,
      windowMs: this.cfg.window_s * 1000,
    });
  }

  sweep(watermarkMs: number): void {
    const b = Math.floor(watermarkMs / this.bucketMs);
    if (b <= this.lastSweep) return;
    this.lastSweep = b;
    this.table.sweep(b - BUCKETS, (key) => this.samples.delete(key));
  }
}
