import { z } from 'zod';

// `mizugiwa run`: which of the optional parts the single host runs beside ship + detect + respond.
export const runSchema = z
  .object({
    store: z
      .boolean()
      .default(true)
      .describe(
        'store events, detections and decisions in ClickHouse (embedded chdb by default); a small host can switch it off',
      ),
    api: z
      .boolean()
      .default(false)
      .describe('serve the HTTP api (api.listen) from the same process; needs store'),
    respond: z
      .boolean()
      .default(true)
      .describe('maintain the local access map (respond section); off: detect and store only'),
  })
  .strict();

export type RunConfig = z.infer<typeof runSchema>;
