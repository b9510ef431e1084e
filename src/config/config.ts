import { z } from 'zod';
import { coreShape } from './schema.js';

// Component sections register here (one line each).
export const configSchema = z.object({ ...coreShape }).strict();

export type Config = z.infer<typeof configSchema>;
export type BusConfig = Config['bus'];
export type ClickHouseConfig = Config['clickhouse'];
