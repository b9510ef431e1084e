// schemas/mail-event.schema.json and the parser agree: every field the parser can set is in the
// schema with the right type, every kind and reason is documented there, and fixture events validate.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MailEvent } from '../../src/event/mail-event.js';
import { LineParser } from '../../src/parse/parser.js';

interface Prop {
  type?: string;
  enum?: string[];
  $ref?: string;
  const?: unknown;
  pattern?: string;
}
interface Schema {
  required: string[];
  properties: Record<string, Prop>;
  $defs: { kind: { oneOf: Array<{ const: string }> }; reason: { oneOf: Array<{ const: string }> } };
}

const schema = JSON.parse(
  readFileSync(join(import.meta.dirname, '../../schemas/mail-event.schema.json'), 'utf8'),
) as Schema;
const kinds = new Set(schema.$defs.kind.oneOf.map((o) => o.const));
const reasons = new Set(schema.$defs.reason.oneOf.map((o) => o.const));

function validate(ev: MailEvent): string[] {
  const errors: string[] = [];
  const json = JSON.parse(JSON.stringify(ev)) as Record<string, unknown>;
  for (const r of schema.required) if (!(r in json)) errors.push(`missing ${r}`);
  for (const [k, v] of Object.entries(json)) {
    const p = schema.properties[k];
    if (!p) {
      errors.push(`field ${k} not in schema`);
      continue;
    }
    if (p.$ref === '#/$defs/kind' && !kinds.has(v as string)) errors.push(`kind ${String(v)}`);
    if (p.$ref === '#/$defs/reason' && !reasons.has(v as string)) errors.push(`reason ${String(v)}`);
    if (p.enum && !p.enum.includes(v as string)) errors.push(`${k}=${String(v)}`);
    if (p.pattern && !new RegExp(p.pattern).test(v as string))
      errors.push(`${k}=${String(v)} !~ ${p.pattern}`);
    const t = p.type;
    if (t === 'string' && typeof v !== 'string') errors.push(`${k} not a string`);
    if (t === 'integer' && !Number.isInteger(v)) errors.push(`${k} not an integer`);
    if (t === 'number' && typeof v !== 'number') errors.push(`${k} not a number`);
    if (t === 'boolean' && typeof v !== 'boolean') errors.push(`${k} not a boolean`);
    if (t === 'array' && !Array.isArray(v)) errors.push(`${k} not an array`);
    if (t === 'object' && (typeof v !== 'object' || v === null || Array.isArray(v)))
      errors.push(`${k} not an object`);
  }
  return errors;
}

describe('mail-event.schema.json', () => {
  it('lists exactly the fields the parser produces (plus id, which the shipper sets)', () => {
    const fields = Object.keys(new LineParser().parse('x'));
    expect(new Set([...fields, 'id'])).toEqual(new Set(Object.keys(schema.properties)));
  });

  it('documents every kind and reason of the TypeScript type', () => {
    const src = readFileSync(join(import.meta.dirname, '../../src/event/mail-event.ts'), 'utf8');
    const block = (name: string) =>
      src.slice(src.indexOf(`export type ${name} =`), src.indexOf(';', src.indexOf(`export type ${name} =`)));
    const consts = (s: string) => new Set([...s.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]));
    expect(consts(block('EventKind'))).toEqual(kinds);
    expect(consts(block('RejectReason'))).toEqual(reasons);
  });

  it('validates every fixture event', () => {
    const dir = join(import.meta.dirname, 'testdata');
    let n = 0;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.ndjson'))) {
      for (const l of readFileSync(join(dir, f), 'utf8').split('\n')) {
        if (!l) continue;
        const { line } = JSON.parse(l) as { line: string };
        const ev = new LineParser({ year: 2026, timezone: 'UTC', host: 'mx-exim' }).parse(line);
        expect(validate(ev), line).toEqual([]);
        n++;
      }
    }
    expect(n).toBeGreaterThan(300);
  });
});
