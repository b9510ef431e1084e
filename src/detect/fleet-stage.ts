import { BounceStorm } from './bounce-storm/bounce-storm.js';
import type { DetectConfig } from './config.js';
import { DhaDistributed } from './dha-distributed/dha-distributed.js';
import { DhaPrefix } from './dha-source/dha-prefix.js';
import type { Emitter } from './emit.js';
import type { Signal } from './signal.js';

/**
 * Stage 2: detectors that need every event of a recipient domain, a prefix or the whole fleet in
 * one place. In the service it consumes the internal topic keyed by `Signal.k`, so each domain,
 * prefix and the fleet bounce counters live in exactly one detector instance.
 */
export class FleetStage {
  readonly prefix: DhaPrefix;
  readonly distributed: DhaDistributed;
  readonly bounce: BounceStorm;
  private lastSweep = 0;

  constructor(cfg: DetectConfig, emitter: Emitter) {
    this.prefix = new DhaPrefix(
      cfg.dha_prefix,
      emitter,
      Math.max(1000, Math.floor(cfg.window.max_sources / 4)),
    );
    this.distributed = new DhaDistributed(cfg.dha_distributed, emitter, cfg.window.allowed_lateness_s);
    this.bounce = new BounceStorm(cfg.bounce_storm, emitter, cfg.window.allowed_lateness_s);
  }

  onSignal(s: Signal, watermarkMs: number): void {
    const key = s.k;
    const rest = key.slice(2);
    switch (key.charCodeAt(0)) {
      case 100: // d:
        this.distributed.onSignal(s, rest);
        break;
      case 112: // p:
        this.prefix.onSignal(s, rest);
        break;
      case 102: // f:
        this.bounce.onSignal(s);
        break;
    }
    if (watermarkMs - this.lastSweep >= 60_000) {
      this.lastSweep = watermarkMs;
      this.prefix.sweep(watermarkMs);
      this.distributed.sweep(watermarkMs);
    }
  }
}
