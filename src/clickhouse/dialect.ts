import type { ClickHouse } from './client.js';

/**
 * Which SQL a ClickHouse speaks. `current` is what mizugiwa targets (the embedded chdb engine,
 * any ClickHouse from 23 on (insert deduplication tokens need 22.2): IPv6, LowCardinality, CODEC, TTL, query parameters, skip indexes,
 * materialized views). `legacy` is an old server (Debian's 18.16) where only the store's
 * network path is supported: version-neutral tables from schemas/clickhouse/legacy/, no
 * rollups, no named queries.
 */
export type DialectName = 'current' | 'legacy';

export interface Dialect {
  name: DialectName;
  /** The server's version string, e.g. `26.7.2.1`. */
  version: string;
}

/** First major version treated as `current`. */
export const CURRENT_MIN_MAJOR = 23;

export function dialectOf(version: string): Dialect {
  const major = Number.parseInt(version.split('.')[0] ?? '', 10);
  return { name: Number.isFinite(major) && major >= CURRENT_MIN_MAJOR ? 'current' : 'legacy', version };
}

/** Asks the server (or the embedded engine) for its version. */
export async function detectDialect(ch: ClickHouse): Promise<Dialect> {
  const rs = await ch.client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
  const rows = await rs.json<{ v: string }>();
  return dialectOf(rows[0]?.v ?? '0');
}
