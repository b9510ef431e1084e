// bench/parse: lines/s and peak memory of the parser on a seeded mixed 1M-line log, side by side
// with fail2ban-regex and its postfix filter over the same lines.
//   npm run build && node dist/bench/parse/run.js [--lines 1000000] [--seed 1] [--runs 5] [--fail2ban-lines 200000]
// Prints a markdown table. Both sides are single-threaded (node's parse loop, fail2ban-regex's Python).
// Throughput is given per wall-clock second and per CPU second (user + system): on a shared machine
// the CPU figure is the one that does not depend on what else runs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineParser } from '../../src/parse/parser.js';
import { benchArgs } from '../lib/args.js';
import { generateFile } from './generate.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const values = benchArgs('parse bench', {
  usage: `usage: node dist/bench/parse/run.js [options]   (or: npm run bench -- parse [options])

Parser lines/s (per wall and per CPU second) and peak memory on a seeded mixed log, beside
fail2ban-regex with its postfix filter over the same lines.`,
  options: {
    lines: { type: 'string', default: '1000000', help: 'lines of the generated log' },
    seed: { type: 'string', default: '1', help: 'seed of the generator' },
    runs: { type: 'string', default: '5', help: 'runs, the median is reported' },
    'fail2ban-lines': {
      type: 'string',
      default: '200000',
      help: 'lines of the log given to fail2ban-regex (its first)',
    },
    'fail2ban-filter': {
      type: 'string',
      default: '/etc/fail2ban/filter.d/postfix.conf',
      help: 'the fail2ban filter',
    },
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
const all = readFileSync(file, 'utf8').split('\n');
if (all.at(-1) === '') all.pop();
const bytes = statSync(file).size;
const load0 = loadavg()[0]!;

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

interface Measure {
  /** wall-clock seconds */
  wall: number;
  /** user + system CPU seconds */
  cpu: number;
  /** peak resident set size, KiB (whole processes only) */
  rssKiB?: number;
  stdout?: string;
}

// 1. in-process: parse() only, and parse() + JSON.stringify (what `mizugiwa parse` and the shipper do)
function inProcess(serialize: boolean): { m: Measure; unknown: number } {
  const ms: Measure[] = [];
  let unknown = 0;
  for (let r = 0; r < runs; r++) {
    const p = new LineParser({ year: 2026, timezone: 'UTC', host: 'mx-exim' });
    let u = 0;
    let chars = 0;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (const line of all) {
      const ev = p.parse(line);
      if (ev.kind === 'unknown') u++;
      if (serialize) chars += JSON.stringify(ev).length;
    }
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    if (serialize && chars === 0) throw new Error('no output');
    ms.push({ wall, cpu: (c.user + c.system) / 1e6 });
    unknown = u;
  }
  return { m: { wall: median(ms.map((x) => x.wall)), cpu: median(ms.map((x) => x.cpu)) }, unknown };
}
const warm = new LineParser({ year: 2026, timezone: 'UTC' });
for (let i = 0; i < Math.min(all.length, 50_000); i++) warm.parse(all[i]!);
const parseOnly = inProcess(false);
const parseJson = inProcess(true);

// 2. whole processes under /usr/bin/time -v
function timed(cmd: string, args: string[], keepStdout = false): Measure {
  const res = spawnSync('/usr/bin/time', ['-v', cmd, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', keepStdout ? 'pipe' : 'ignore', 'pipe'],
  });
  if (res.status !== 0) throw new Error(`${cmd} failed (${res.status}): ${res.stderr.slice(-2000)}`);
  const num = (re: RegExp) => {
    const m = re.exec(res.stderr);
    if (!m) throw new Error(`cannot read /usr/bin/time output (${re}): ${res.stderr.slice(-500)}`);
    return m;
  };
  const w = num(/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/);
  return {
    wall: +(w[1] ?? 0) * 3600 + +w[2]! * 60 + +w[3]!,
    cpu: +num(/User time \(seconds\): ([\d.]+)/)[1]! + +num(/System time \(seconds\): ([\d.]+)/)[1]!,
    rssKiB: +num(/Maximum resident set size \(kbytes\): (\d+)/)[1]!,
    stdout: res.stdout ?? '',
  };
}
function repeat(n: number, f: () => Measure): Measure {
  const ms = Array.from({ length: n }, f);
  return {
    wall: median(ms.map((m) => m.wall)),
    cpu: median(ms.map((m) => m.cpu)),
    rssKiB: Math.max(...ms.map((m) => m.rssKiB ?? 0)),
  };
}
const node = process.execPath;
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const alone = join(root, 'dist', 'bench', 'parse', 'parse-file.js');
const wholeRuns = Math.min(runs, 3);
const cliFull = repeat(wholeRuns, () =>
  timed(node, [cli, 'parse', '--year', '2026', '--timezone', 'UTC', file]),
);
const aloneFull = repeat(wholeRuns, () => timed(node, [alone, file]));
const startup = repeat(wholeRuns, () => timed(node, [cli, '--version']));

// 3. fail2ban-regex with its postfix filter over the first f2bLines lines of the same log
const head = join(dir, `mixed-${f2bLines}-seed${seed}.head.log`);
if (!existsSync(head)) writeFileSync(head, `${all.slice(0, f2bLines).join('\n')}\n`);
const f2b = timed('/usr/bin/fail2ban-regex', [head, values['fail2ban-filter']!], true);
const processed = /\[processed in ([\d.]+) sec\]/.exec(f2b.stdout!);
const f2bMatched = /Lines: \d+ lines, \d+ ignored, (\d+) matched/.exec(f2b.stdout!);
const f2bStartup = timed('/usr/bin/fail2ban-regex', ['--version']);
const aloneHead = timed(node, [alone, head]);

const f2bCpuRate = f2bLines / f2b.cpu;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (m: Measure) => (m.rssKiB === undefined ? '—' : (m.rssKiB / 1024).toFixed(0));
const row = (what: string, n: number, m: Measure, ratio = true) =>
  `| ${what} | ${fmt(n)} | ${fmt(n / m.wall)} | ${fmt(n / m.cpu)} | ${mib(m)} | ${ratio ? `${(n / m.cpu / f2bCpuRate).toFixed(1)}×` : '—'} |`;

const out = [
  `Input: ${file} (${fmt(all.length)} lines, ${(bytes / 2 ** 20).toFixed(0)} MiB, seed ${seed}; ${fmt(parseOnly.unknown)} unknown); HEAD = its first ${fmt(f2bLines)} lines.`,
  `Node ${process.version}, ${cpus().length} CPUs, load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}; in-process: median of ${runs} runs; whole processes: median of ${wholeRuns} (fail2ban: 1).`,
  `fail2ban-regex matched ${f2bMatched ? fmt(+f2bMatched[1]!) : '?'} of ${fmt(f2bLines)} lines${processed ? `, reported "processed in ${processed[1]} sec"` : ''}.`,
  '',
  '| what | lines | lines/s (wall) | lines/s (CPU) | peak RSS (MiB) | vs fail2ban (CPU) |',
  '|---|---:|---:|---:|---:|---:|',
  row('`LineParser.parse()` in-process', all.length, parseOnly.m),
  row('`parse()` + `JSON.stringify` in-process', all.length, parseJson.m),
  row('parse component alone: `node dist/bench/parse/parse-file.js FILE`', all.length, aloneFull),
  row('`mizugiwa parse FILE > /dev/null`', all.length, cliFull),
  `| \`mizugiwa --version\` (CLI start-up, included above) | — | ${startup.wall.toFixed(2)} s | ${startup.cpu.toFixed(2)} CPU-s | ${mib(startup)} | — |`,
  row('parse component alone on HEAD', f2bLines, aloneHead),
  row('`fail2ban-regex HEAD postfix.conf`', f2bLines, f2b),
  `| \`fail2ban-regex --version\` (start-up, included above) | — | ${f2bStartup.wall.toFixed(2)} s | ${f2bStartup.cpu.toFixed(2)} CPU-s | ${mib(f2bStartup)} | — |`,
  '',
];
process.stdout.write(out.join('\n'));
