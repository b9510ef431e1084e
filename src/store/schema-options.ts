import type { SchemaOptions } from '../clickhouse/migrate.js';
import type { Config } from '../config/config.js';

/** The schema settings (database, retention, cluster switch) of a configuration. */
export function schemaOptions(cfg: Config): SchemaOptions {
  return {
    database: cfg.clickhouse.database,
    retention_days: cfg.store.retention_days,
    audit_retention_days: cfg.store.audit_retention_days,
    rollup_retention_days: cfg.store.rollup_retention_days,
    cluster: cfg.store.cluster,
  };
}
