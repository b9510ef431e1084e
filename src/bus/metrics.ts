import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../metrics/registry.js';

// Labels: `bus` is memory or kafka, so one dashboard serves both modes.

/** Gauges the memory bus computes at scrape time (it knows every position; Kafka sets them per batch). */
export const scrapeHooks = { lag: new Set<() => void>(), retained: new Set<() => void>() };

export const producedRecords = new Counter({
  name: 'mizugiwa_bus_records_produced_total',
  help: 'records acknowledged by the bus, per topic',
  labelNames: ['bus', 'topic'] as const,
  registers: [registry],
});

export const produceErrors = new Counter({
  name: 'mizugiwa_bus_produce_errors_total',
  help: 'records whose send failed (the caller got the error), per topic',
  labelNames: ['bus', 'topic'] as const,
  registers: [registry],
});

export const sendWaitSeconds = new Counter({
  name: 'mizugiwa_bus_send_wait_seconds_total',
  help: 'time producers spent waiting for room (backpressure), per topic',
  labelNames: ['bus', 'topic'] as const,
  registers: [registry],
});

export const consumedRecords = new Counter({
  name: 'mizugiwa_bus_records_consumed_total',
  help: 'records handled and committed, per topic and consumer group',
  labelNames: ['bus', 'topic', 'group'] as const,
  registers: [registry],
});

export const handlerErrors = new Counter({
  name: 'mizugiwa_bus_handler_errors_total',
  help: 'batches whose handler threw and that will be delivered again, per topic and group',
  labelNames: ['bus', 'topic', 'group'] as const,
  registers: [registry],
});

export const consumerLag = new Gauge({
  name: 'mizugiwa_bus_consumer_lag',
  help: 'records behind the end of the partition after the last committed batch',
  labelNames: ['bus', 'topic', 'partition', 'group'] as const,
  registers: [registry],
  collect() {
    for (const hook of scrapeHooks.lag) hook();
  },
});

export const retainedRecords = new Gauge({
  name: 'mizugiwa_bus_memory_retained_records',
  help: 'memory bus: records held per topic (not yet committed by every group, or newest per key if compacted)',
  labelNames: ['topic'] as const,
  registers: [registry],
  collect() {
    for (const hook of scrapeHooks.retained) hook();
  },
});

export const producerBatchRecords = new Histogram({
  name: 'mizugiwa_bus_producer_batch_records',
  help: 'kafka: records per produce request (how well linger fills batches)',
  buckets: [1, 10, 100, 500, 1000, 2500, 5000, 10000],
  registers: [registry],
});
