import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { registry as processRegistry } from '../metrics/registry.js';

export interface RespondMetrics {
  entries: Gauge<'mta'>;
  rebuilds: Counter<'mta' | 'result'>;
  rebuildSeconds: Histogram<'mta'>;
  lastSuccess: Gauge<'mta'>;
  stale: Gauge<'mta'>;
  expiries: Counter<'mta'>;
  refusals: Counter<'mta' | 'rule'>;
  decisions: Counter<'mta' | 'outcome'>;
  clamped: Counter<'mta'>;
}

const byRegistry = new WeakMap<Registry, RespondMetrics>();

/** The agent's metrics, registered once per registry (several agents in one process share them). */
export function respondMetrics(registry: Registry = processRegistry): RespondMetrics {
  const have = byRegistry.get(registry);
  if (have) return have;
  const registers = [registry];
  const m: RespondMetrics = {
    entries: new Gauge({
      name: 'mizugiwa_respond_entries',
      help: 'tempfail entries in force in the access map (after the last successful rebuild)',
      labelNames: ['mta'],
      registers,
    }),
    rebuilds: new Counter({
      name: 'mizugiwa_respond_map_rebuilds_total',
      help: 'access map rebuilds by result (ok, failed: the old map stayed in force)',
      labelNames: ['mta', 'result'],
      registers,
    }),
    rebuildSeconds: new Histogram({
      name: 'mizugiwa_respond_map_rebuild_seconds',
      help: 'duration of a map rebuild: write, postmap/makemap, verify, rename (and reload for cidr)',
      labelNames: ['mta'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'mizugiwa_respond_map_last_success_timestamp_seconds',
      help: 'when the access map was last rebuilt successfully (unix time)',
      labelNames: ['mta'],
      registers,
    }),
    stale: new Gauge({
      name: 'mizugiwa_respond_map_stale',
      help: '1 while the map lags the agent state because rebuilds fail (the agent keeps retrying)',
      labelNames: ['mta'],
      registers,
    }),
    expiries: new Counter({
      name: 'mizugiwa_respond_expiries_total',
      help: "entries removed on the agent's own clock when their decision expired",
      labelNames: ['mta'],
      registers,
    }),
    refusals: new Counter({
      name: 'mizugiwa_respond_refusals_total',
      help: 'decisions refused by a safety rule (see the log for the decision and the reason)',
      labelNames: ['mta', 'rule'],
      registers,
    }),
    decisions: new Counter({
      name: 'mizugiwa_respond_decisions_total',
      help: 'decisions handled, by outcome: added, updated, unchanged, removed, absent (removal of nothing), refused',
      labelNames: ['mta', 'outcome'],
      registers,
    }),
    clamped: new Counter({
      name: 'mizugiwa_respond_ttl_clamped_total',
      help: 'decisions whose expires_at was beyond respond.safety.max_ttl_s and was shortened to it',
      labelNames: ['mta'],
      registers,
    }),
  };
  byRegistry.set(registry, m);
  return m;
}
