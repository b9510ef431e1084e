import { Counter, Gauge } from 'prom-client';
import { registry } from '../metrics/registry.js';

// mizugiwa_detect_*: what the detector counted, decided and refused.

export const eventsTotal = new Counter({
  name: 'mizugiwa_detect_events_total',
  help: 'events (stage 1) and signals (stage 2) taken in',
  labelNames: ['stage'] as const,
  registers: [registry],
});

export const lateTotal = new Counter({
  name: 'mizugiwa_detect_late_events_total',
  help: 'events behind the watermark (newest event time minus allowed lateness); still counted where a window holds them',
  labelNames: ['stage'] as const,
  registers: [registry],
});

export const droppedTotal = new Counter({
  name: 'mizugiwa_detect_dropped_events_total',
  help: 'events older than any window of their key still holds, dropped',
  labelNames: ['stage'] as const,
  registers: [registry],
});

export const untrackedTotal = new Counter({
  name: 'mizugiwa_detect_untracked_total',
  help: 'events of a new key not tracked because the table was full (window.max_sources)',
  labelNames: ['table'] as const,
  registers: [registry],
});

export const invalidTotal = new Counter({
  name: 'mizugiwa_detect_invalid_messages_total',
  help: 'messages that were not valid MailEvents or signals, sent to the dead-letter topic',
  labelNames: ['fault'] as const,
  registers: [registry],
});

export const detectionsTotal = new Counter({
  name: 'mizugiwa_detect_detections_total',
  help: 'detections emitted',
  labelNames: ['detector'] as const,
  registers: [registry],
});

export const decisionsTotal = new Counter({
  name: 'mizugiwa_detect_decisions_total',
  help: 'decisions emitted (new or extended)',
  labelNames: ['detector', 'kind'] as const,
  registers: [registry],
});

export const refusedTotal = new Counter({
  name: 'mizugiwa_detect_decisions_refused_total',
  help: 'detections that did not become a decision: whitelisted, dry_run, cap_active, cap_rate',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const capReachedTotal = new Counter({
  name: 'mizugiwa_detect_cap_reached_total',
  help: 'decisions withheld by a safety valve (cap: active or rate)',
  labelNames: ['cap'] as const,
  registers: [registry],
});

export const activeDecisions = new Gauge({
  name: 'mizugiwa_detect_active_decisions',
  help: 'decisions active in this process (own and read back from the decisions topic)',
  registers: [registry],
});

export const stateKeys = new Gauge({
  name: 'mizugiwa_detect_state_keys',
  help: 'keys held in detector state',
  labelNames: ['table'] as const,
  registers: [registry],
});

export const lagSeconds = new Gauge({
  name: 'mizugiwa_detect_lag_seconds',
  help: 'wall clock minus the newest event time processed (service only)',
  registers: [registry],
});
