// `mizugiwa parse FILE` without the rest of the CLI: the parse component's own cost (reader, parser,
// JSON, buffered stdout), for bench/parse/run.ts. Usage: node dist/bench/parse/parse-file.js FILE
import { parseStreams } from '../../src/parse/command.js';

const file = process.argv[2];
if (!file) throw new Error('usage: parse-file.js FILE');
await parseStreams([file], process.stdout, {
  year: 2026,
  timezone: 'UTC',
});
