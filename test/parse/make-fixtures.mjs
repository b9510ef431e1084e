// Turns log files into fixture cases ({line, expect} per line, NDJSON) with the built parser, for
// review: `npm run build && node test/parse/make-fixtures.mjs IN.log OUT.ndjson`. Every expectation
// it writes must be read and corrected by hand before it is committed; the fixture test then holds
// the parser to it. Options match test/parse/fixtures.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { LineParser } from '../../dist/src/parse/parser.js';

export const FIXTURE_OPTIONS = { year: 2026, timezone: 'UTC', host: 'mx-exim' };

const [input, output] = process.argv.slice(2);
const lines = readFileSync(input, 'utf8').split('\n');
if (lines.at(-1) === '') lines.pop();
const out = [];
for (const line of lines) {
  const ev = new LineParser(FIXTURE_OPTIONS).parse(line);
  const expect = {};
  for (const [k, v] of Object.entries(ev)) if (v !== undefined && k !== 'raw') expect[k] = v;
  out.push(JSON.stringify({ line, expect }));
}
writeFileSync(output, `${out.join('\n')}\n`);
