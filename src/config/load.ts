import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema } from './config.js';

/** A configuration problem a person can fix: the message names the file, the key and the problem. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const ENV_PREFIX = 'MIZUGIWA_';

/**
 * Reads FILE (YAML), applies MIZUGIWA_* environment overrides and validates the result.
 * No file: defaults plus environment. Throws ConfigError with one line per problem.
 */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): Config {
  let doc: unknown = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError(
        code === 'ENOENT'
          ? `config file not found: ${file}`
          : `cannot read config file ${file}: ${code ?? err}`,
      );
    }
    try {
      doc = parseYaml(text) ?? {};
    } catch (err) {
      throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new ConfigError(
        `${file}: the top level must be a mapping of sections (host, bus, clickhouse, ...)`,
      );
    }
  }
  applyEnv(doc as Record<string, unknown>, env);
  return validate(doc, file ?? 'config');
}

export function validate(doc: unknown, where: string): Config {
  const result = configSchema.safeParse(doc, { reportInput: true });
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((i) => `${where}: ${describeIssue(i)}`).join('\n'));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${path ? `${path}.` : ''}${k}: unknown key`).join('; ');
  }
  if (issue.code === 'invalid_type') {
    return `${path}: expected ${issue.expected}, got ${describeValue(issue.input)}`;
  }
  return `${path || '(top level)'}: ${issue.message}`;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string')
    return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * MIZUGIWA_BUS__KIND=kafka sets bus.kind; `__` separates levels, keys keep their own `_`.
 * Values are read as YAML scalars/flows (`19092`, `true`, `[a, b]`), except where the schema
 * wants a string.
 */
export function applyEnv(doc: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split('__');
    const leaf = schemaAt(configSchema, path);
    if (!leaf) throw new ConfigError(`environment ${name}: no configuration key ${path.join('.')}`);
    let parsed: unknown = value;
    if (!acceptsString(leaf)) {
      try {
        parsed = parseYaml(value);
      } catch {
        parsed = value;
      }
    }
    let node = doc;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = parsed;
  }
}

type AnySchema = z.ZodType;

/** Strips default/optional/nullable/prefault wrappers. */
export function unwrap(s: AnySchema): AnySchema {
  let cur = s as { def: { type: string; innerType?: AnySchema } };
  while (
    ['default', 'prefault', 'optional', 'nullable', 'readonly'].includes(cur.def.type) &&
    cur.def.innerType
  ) {
    cur = cur.def.innerType as unknown as typeof cur;
  }
  return cur as unknown as AnySchema;
}

function schemaAt(root: AnySchema, path: string[]): AnySchema | undefined {
  let cur: AnySchema | undefined = root;
  for (const key of path) {
    if (!cur) return undefined;
    const u = unwrap(cur) as unknown as { def: { type: string; shape?: Record<string, AnySchema> } };
    if (u.def.type !== 'object' || !u.def.shape) return undefined;
    cur = u.def.shape[key];
  }
  return cur;
}

function acceptsString(s: AnySchema): boolean {
  const t = (unwrap(s) as unknown as { def: { type: string } }).def.type;
  return t === 'string' || t === 'enum';
}
