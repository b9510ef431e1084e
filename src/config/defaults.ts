import { Document, isMap, type YAMLMap } from 'yaml';
import type { z } from 'zod';
import { configSchema } from './config.js';
import { unwrap } from './load.js';

/** The documented defaults as YAML, each key preceded by its description. */
export function defaultsYaml(): string {
  const values = configSchema.parse({});
  const doc = new Document(values);
  annotate(doc.contents as YAMLMap, configSchema);
  return doc.toString({ lineWidth: 0 });
}

function annotate(map: YAMLMap, schema: z.ZodType): void {
  const shape = (unwrap(schema) as unknown as { def: { shape?: Record<string, z.ZodType> } }).def.shape;
  if (!shape) return;
  for (const pair of map.items) {
    const key = String((pair.key as { value: unknown }).value ?? pair.key);
    const field = shape[key];
    if (!field) continue;
    const description = field.description ?? (unwrap(field) as z.ZodType).description;
    if (description) (pair.key as { commentBefore?: string }).commentBefore = ` ${description}`;
    if (isMap(pair.value)) annotate(pair.value, field);
  }
}
