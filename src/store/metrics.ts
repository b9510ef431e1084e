import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../metrics/registry.js';

// Store metrics, one set per process (StoreWriter instances share them; the table label tells them apart).

export const rowsInserted = new Counter({
  name: 'mizugiwa_store_rows_inserted_total',
  help: 'rows ClickHouse acknowledged, by table',
  labelNames: ['table'] as const,
  registers: [registry],
});

export const batchesInserted = new Counter({
  name: 'mizugiwa_store_batches_total',
  help: 'insert statements ClickHouse acknowledged, by table',
  labelNames: ['table'] as const,
  registers: [registry],
});

export const insertSeconds = new Histogram({
  name: 'mizugiwa_store_insert_seconds',
  help: 'time from sending an insert to its acknowledgement, by table',
  labelNames: ['table'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const insertRetries = new Counter({
  name: 'mizugiwa_store_retries_total',
  help: 'inserts retried after ClickHouse failed or was unreachable, by table',
  labelNames: ['table'] as const,
  registers: [registry],
});

export const deadLetters = new Counter({
  name: 'mizugiwa_store_dead_letters_total',
  help: 'records written to dead_letters instead of their table, by source and why (decode, record, refused)',
  labelNames: ['source', 'why'] as const,
  registers: [registry],
});

export const bufferedRows = new Gauge({
  name: 'mizugiwa_store_buffered_rows',
  help: 'rows waiting for or in an insert, by table',
  labelNames: ['table'] as const,
  registers: [registry],
});

export const lagSeconds = new Gauge({
  name: 'mizugiwa_store_lag_seconds',
  help: 'age (bus timestamp to now) of the newest record stored, by topic',
  labelNames: ['topic'] as const,
  registers: [registry],
});

export const backpressureWaits = new Counter({
  name: 'mizugiwa_store_backpressure_waits_total',
  help: 'writes that waited because max_buffered_rows were buffered or in flight',
  registers: [registry],
});
