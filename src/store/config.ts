import { z } from 'zod';

// The `store` section: how events, detections and decisions are batched into ClickHouse, how
// long they are kept, and whether the schema is generated for a cluster.

export const storeClusterSchema = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'generate cluster DDL: Replicated* engines on *_local tables, Distributed tables under the ' +
          'plain names, every statement ON CLUSTER (see src/store/README.md)',
      ),
    name: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/)
      .default('default')
      .describe('cluster name as defined in the servers’ remote_servers'),
  })
  .strict();

export const storeSchema = z
  .object({
    group_id: z.string().min(1).default('mizugiwa-store').describe('bus consumer group of `mizugiwa store`'),
    batch_rows: z
      .number()
      .int()
      .min(1)
      .default(50_000)
      .describe('flush a table’s buffer once it holds this many rows'),
    flush_interval_ms: z
      .number()
      .int()
      .min(10)
      .default(1000)
      .describe('flush a table’s buffer at the latest this long after its first row arrived'),
    idle_flush_ms: z
      .number()
      .int()
      .min(0)
      .default(50)
      .describe('flush early when no row arrived for this long (a quiet stream is not held back)'),
    max_buffered_rows: z
      .number()
      .int()
      .min(1)
      .default(200_000)
      .describe('backpressure: writers wait while this many rows are buffered or in flight'),
    fetch_max_bytes_per_partition: z
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024)
      .describe(
        'most bytes one Kafka fetch of the store brings per partition (overrides the bus setting for the ' +
          'store): a smaller fetch is decoded while the previous one is inserted',
      ),
    inserts_in_flight: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(2)
      .describe(
        'inserts per table sent before the previous ones are acknowledged: while one part is written, ' +
          'the next batch is already on its way (each insert has its own deduplication token)',
      ),
    concurrency: z
      .number()
      .int()
      .min(1)
      .default(8)
      .describe('bus partitions handled at the same time; their records share inserts'),
    retry_initial_ms: z
      .number()
      .int()
      .min(1)
      .default(200)
      .describe('first retry delay after a failed insert'),
    retry_max_ms: z
      .number()
      .int()
      .min(1)
      .default(30_000)
      .describe('longest retry delay; inserts are retried until they succeed (nothing is dropped)'),
    retention_days: z
      .number()
      .int()
      .min(1)
      .default(90)
      .describe('days mail_events (and dead letters) are kept (TTL; changed on start-up when it differs)'),
    audit_retention_days: z
      .number()
      .int()
      .min(1)
      .default(730)
      .describe('days detections and the decision audit trail are kept'),
    rollup_retention_days: z
      .number()
      .int()
      .min(1)
      .default(400)
      .describe('days the per-minute rollups are kept'),
    migrate_on_start: z
      .boolean()
      .default(true)
      .describe('apply pending schema migrations when `mizugiwa store` starts'),
    cluster: storeClusterSchema.prefault({}),
  })
  .strict();

export type StoreConfig = z.infer<typeof storeSchema>;
