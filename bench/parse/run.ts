// bench/parse: lines/s and peak memory of the parser on a seeded mixed 1M-line log, side by side
// with fail2ban-regex and its postfix filter over the same lines.
//   npm run build && node dist/bench/parse/run.js [--lines 1000000] [--seed 1] [--runs 5] [--fail2ban-lines 200000]
// Prints a markdown table. Single-threaded on both sides (node's parse loop; fail2ban-regex's Python).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LineParser } from '../../src/parse/parser.js';
import { generateFile } from './generate.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const { values } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    runs: { type: 'string', default: '5' },
    'fail2ban-lines': { type: 'string', default: '200000' },
    'fail2ban-filter': { type: 'string', default: '/etc/fail2ban/filter.d/postfix.conf' },
  },
});
const lines = Number(values.lines);
const seed = Number(values.seed);
const runs = Number(values.runs);
const f2bLines = Math.min(Number(values['fail2ban-lines']), lines);

const dir = join(root, 'var', 'bench', 'parse');
mkdirSync(dir, { recursive: true });
const file = join(dir, `mixed-${lines}-seed${seed}.log`);
if (!existsSync(file)) {
  process.stderr.write(`generating ${file}\n`);
  await generateFile(file, { lines, seed });
}
const text = readFileSync(file, 'utf8');
const all = text.split('\n');
if (all.at(-1) === '') all.pop();
const bytes = statSync(file).size;

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
};

// 1. in-process: parse() only, and parse() + JSON.stringify (what `mizugiwa parse` and the shipper do)
function inProcess(serialize: boolean): { rate: number; unknown: number } {
  const rates: number[] = [];
  let unknown = 0;
  for (let r = 0; r < runs; r++) {
    const p = new LineParser({ year: 2026, timezone: 'UTC', host: 'mx-exim' });
    let u = 0;
    let chars = 0;
    const t0 = process.hrtime.bigint();
    for (const line of all) {
      const ev = p.parse(line);
      if (ev.kind === 'unknown') u++;
      if (serialize) chars += JSON.stringify(ev).length;
    }
    const ns = Number(process.hrtime.bigint() - t0);
    if (serialize && chars === 0) throw new Error('no output');
    rates.push(all.length / (ns / 1e9));
    unknown = u;
  }
  return { rate: median(rates), unknown };
}
const warm = new LineParser({ year: 2026, timezone: 'UTC' });
for (let i = 0; i < Math.min(all.length, 50_000); i++) warm.parse(all[i]!);
const parseOnly = inProcess(false);
const parseJson = inProcess(true);

// 2. whole process: `mizugiwa parse FILE > /dev/null` under /usr/bin/time -v (wall clock, peak RSS)
interface Timed {
  wall: number;
  rssKiB: number;
  stdout: string;
}
function timed(cmd: string, args: string[], toNull: boolean): Timed {
  const res = spawnSync('/usr/bin/time', ['-v', cmd, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', toNull ? 'ignore' : 'pipe', 'pipe'],
  });
  if (res.status !== 0) throw new Error(`${cmd} failed (${res.status}): ${res.stderr.slice(-2000)}`);
  const wallM = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(res.stderr);
  const rssM = /Maximum resident set size \(kbytes\): (\d+)/.exec(res.stderr);
  if (!wallM || !rssM) throw new Error(`cannot read /usr/bin/time output: ${res.stderr.slice(-500)}`);
  const wall = +(wallM[1] ?? 0) * 3600 + +wallM[2]! * 60 + +wallM[3]!;
  return { wall, rssKiB: +rssM[1]!, stdout: res.stdout ?? '' };
}
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const cliRuns: Timed[] = [];
for (let r = 0; r < Math.min(runs, 3); r++)
  cliRuns.push(timed(process.execPath, [cli, 'parse', '--year', '2026', '--timezone', 'UTC', file], true));
const cliWall = median(cliRuns.map((t) => t.wall));
const cliRss = Math.max(...cliRuns.map((t) => t.rssKiB));
// the parse component alone (same code path, without loading the CLI's other components)
const alone = join(root, 'dist', 'bench', 'parse', 'parse-file.js');
const aloneRuns: Timed[] = [];
for (let r = 0; r < Math.min(runs, 3); r++) aloneRuns.push(timed(process.execPath, [alone, file], true));
const aloneWall = median(aloneRuns.map((t) => t.wall));
const aloneRss = Math.max(...aloneRuns.map((t) => t.rssKiB));
// what every mizugiwa command pays before its first line: loading the CLI and all components
const startup = timed(process.execPath, [cli, '--version'], true);

// 3. fail2ban-regex with its postfix filter over the first f2bLines lines of the same log
const f2bFile = join(dir, `mixed-${f2bLines}-seed${seed}.head.log`);
if (!existsSync(f2bFile)) writeFileSync(f2bFile, `${all.slice(0, f2bLines).join('\n')}\n`);
const f2b = timed('/usr/bin/fail2ban-regex', [f2bFile, values['fail2ban-filter']!], false);
const processed = /\[processed in ([\d.]+) sec\]/.exec(f2b.stdout);
const f2bMatched = /Lines: \d+ lines, \d+ ignored, (\d+) matched/.exec(f2b.stdout);
const f2bProc = processed ? +processed[1]! : f2b.wall;
const cliSmall = timed(
  process.execPath,
  [cli, 'parse', '--year', '2026', '--timezone', 'UTC', f2bFile],
  true,
);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (k: number) => (k / 1024).toFixed(0);
const rows: string[][] = [
  [
    'mizugiwa LineParser.parse() in-process',
    fmt(all.length),
    fmt(parseOnly.rate),
    '—',
    `${(parseOnly.rate / (f2bLines / f2bProc)).toFixed(0)}×`,
  ],
  [
    'mizugiwa parse() + JSON.stringify in-process',
    fmt(all.length),
    fmt(parseJson.rate),
    '—',
    `${(parseJson.rate / (f2bLines / f2bProc)).toFixed(0)}×`,
  ],
  [
    '`mizugiwa parse FILE > /dev/null` (whole process)',
    fmt(all.length),
    fmt(all.length / cliWall),
    mib(cliRss),
    `${(all.length / cliWall / (f2bLines / f2bProc)).toFixed(0)}×`,
  ],
  [
    '`node dist/bench/parse/parse-file.js FILE > /dev/null` (parse component alone)',
    fmt(all.length),
    fmt(all.length / aloneWall),
    mib(aloneRss),
    `${(all.length / aloneWall / (f2bLines / f2bProc)).toFixed(0)}×`,
  ],
  [
    '`mizugiwa --version` (startup only, included above)',
    '0',
    `${startup.wall.toFixed(2)} s`,
    mib(startup.rssKiB),
    '—',
  ],
  [
    '`mizugiwa parse HEAD > /dev/null` (whole process)',
    fmt(f2bLines),
    fmt(f2bLines / cliSmall.wall),
    mib(cliSmall.rssKiB),
    `${(f2bLines / cliSmall.wall / (f2bLines / f2bProc)).toFixed(0)}×`,
  ],
  [
    '`fail2ban-regex HEAD postfix.conf` (its own "processed in")',
    fmt(f2bLines),
    fmt(f2bLines / f2bProc),
    mib(f2b.rssKiB),
    '1×',
  ],
  [
    '`fail2ban-regex HEAD postfix.conf` (whole process)',
    fmt(f2bLines),
    fmt(f2bLines / f2b.wall),
    mib(f2b.rssKiB),
    '—',
  ],
];

const out = [
  `Input: ${file} (${fmt(all.length)} lines, ${(bytes / 2 ** 20).toFixed(0)} MiB, seed ${seed}); HEAD = its first ${fmt(f2bLines)} lines.`,
  `Node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(1)} at the end; median of ${runs} in-process runs and ${cliRuns.length} whole-process runs; unknown lines: ${fmt(parseOnly.unknown)}; fail2ban matched ${f2bMatched ? fmt(+f2bMatched[1]!) : '?'} of ${fmt(f2bLines)}.`,
  '',
  '| what | lines | lines/s | peak RSS (MiB) | vs fail2ban |',
  '|---|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
];
process.stdout.write(out.join('\n'));
