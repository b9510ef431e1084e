import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import type { ClickHouseConfig } from '../config/config.js';

export type { ClickHouseClient };

export interface ClickHouse {
  client: ClickHouseClient;
  backend: 'embedded' | 'server';
  /** Qualify every table with it: chdb has no per-client default database. */
  database: string;
  close(): Promise<void>;
}

/**
 * Opens ClickHouse through @clickhouse/client: the embedded engine (chdb, a data directory,
 * one process at a time) or a server by URL. The same SQL and client code serve both. The
 * database is created if missing. chdb ignores the client's `database` option and `USE`, so
 * every statement names its tables in full: `${ch.database}.mail_events`.
 */
export async function openClickHouse(cfg: ClickHouseConfig): Promise<ClickHouse> {
  let client: ClickHouseClient;
  if (cfg.backend === 'embedded') {
    const path = resolve(cfg.path);
    mkdirSync(path, { recursive: true });
    // chdb's typings name @clickhouse/client's own Connection type from a duplicate copy of
    // client-common; the object is the same shape.
    const connection = createChdbConnection({ path }) as unknown as NonNullable<
      Parameters<typeof createClient>[0]
    >['connection'];
    client = createClient({ connection });
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${cfg.database}` });
  } else {
    const common = {
      url: cfg.url,
      username: cfg.username,
      password: cfg.password,
      request_timeout: cfg.request_timeout_ms,
      // Failures reach the caller as exceptions and are logged there with context (the store
      // logs a retried insert once, not every attempt); the client's own error log would repeat
      // each one on stderr.
      log: { level: ClickHouseLogLevel.OFF },
    };
    client = createClient(common);
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${cfg.database}` });
  }
  return {
    client,
    backend: cfg.backend,
    database: cfg.database,
    async close() {
      await client.close();
    },
  };
}
