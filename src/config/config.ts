import { z } from 'zod';
import { apiSchema } from '../api/config.js';
import { detectSchema } from '../detect/config.js';
import { respondSchema } from '../respond/config.js';
import { runSchema } from '../run/config.js';
import { shipSchema } from '../ship/config.js';
import { storeSchema } from '../store/config.js';
import { coreShape } from './schema.js';

// Component sections register here (one line each).
export const configSchema = z
  .object({
    ...coreShape,
    ship: shipSchema.prefault({}),
    store: storeSchema.prefault({}),
    respond: respondSchema.prefault({}),
    detect: detectSchema.prefault({}),
    api: apiSchema.prefault({}),
    run: runSchema.prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type BusConfig = Config['bus'];
export type ClickHouseConfig = Config['clickhouse'];
