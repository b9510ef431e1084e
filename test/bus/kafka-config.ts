import type { BusConfig } from '../../src/config/config.js';
import { configSchema } from '../../src/config/config.js';
import { loadServices } from '../services/services.js';

/** The `bus` config section for the test broker of scripts/services.sh. */
export function kafkaBusConfig(): BusConfig {
  const { kafka } = loadServices('kafka');
  return configSchema.parse({
    bus: { kind: 'kafka', partitions: 4, kafka: { brokers: kafka.brokers, client_id: 'mizugiwa-bus-test' } },
  }).bus;
}
