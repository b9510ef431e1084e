import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClickHouse, openClickHouse } from '../../src/clickhouse/client.js';
import { migrate } from '../../src/clickhouse/migrate.js';
import { clickhouseSchema } from '../../src/config/schema.js';
import type { StoreConfig } from '../../src/store/config.js';

/**
 * The embedded engine in a scratch directory (`prefix` names it), with `database` migrated for
 * `cfg`; its close() also removes the directory.
 */
export async function scratchEngine(prefix: string, database: string, cfg: StoreConfig): Promise<ClickHouse> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const ch = await openClickHouse(clickhouseSchema.parse({ backend: 'embedded', path: dir, database }));
  await migrate(ch, { database, ...cfg });
  return {
    ...ch,
    async close() {
      await ch.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
