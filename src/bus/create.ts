import type { BusConfig } from '../config/config.js';
import type { Bus } from './bus.js';
import type { KafkaBusOptions } from './kafka.js';
import { MemoryBus, type MemoryBusOptions } from './memory.js';

export interface CreateBusOptions {
  memory?: MemoryBusOptions;
  kafka?: KafkaBusOptions;
}

/** The bus the config names: `memory` (one process) or `kafka` (brokers in bus.kafka). */
export async function createBus(cfg: BusConfig, opts: CreateBusOptions = {}): Promise<Bus> {
  switch (cfg.kind) {
    case 'memory':
      return new MemoryBus({
        partitions: cfg.partitions,
        maxRetainedRecords: cfg.memory.max_retained_records,
        maxBatchRecords: cfg.memory.max_batch_records,
        ...opts.memory,
      });
    case 'kafka': {
      // Loaded on use: a single host on the in-process bus never needs kafkajs.
      const { openKafkaBus } = await import('./kafka.js');
      return openKafkaBus(cfg, {
        producerClient: cfg.kafka.producer_client,
        lingerMs: cfg.kafka.linger_ms,
        sessionTimeoutMs: cfg.kafka.session_timeout_ms,
        heartbeatIntervalMs: cfg.kafka.heartbeat_interval_ms,
        fetchMaxBytesPerPartition: cfg.kafka.fetch_max_bytes_per_partition,
        fetchMaxBytes: cfg.kafka.fetch_max_bytes,
        ...opts.kafka,
      });
    }
  }
}
