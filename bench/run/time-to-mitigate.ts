// The single-host mode, measured as an administrator runs it: `mizugiwa run` (one process,
// in-process bus) following the real Postfix maillog, with the store on (embedded chdb) and off.
//  - time to mitigate: from the end of an attacker's session (5 unknown recipients) to its entry
//    being in the map Postfix reads; median and p99 over --runs sources;
//  - peak memory (VmHWM of the process) while doing it.
//
//   npm run build && npm run bench -- run [--runs 20]      (needs scripts/services.sh up postfix)
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { benchArgs } from '../lib/args.js';
import { cleanMap, measureTimeToMitigate, sleep } from '../lib/mitigate.js';

const args = benchArgs('run bench', {
  usage: `usage: node dist/bench/run/time-to-mitigate.js [options]   (or: npm run bench -- run [options])

Single-host \`mizugiwa run\` on the real Postfix maillog, store on and off: time from an attacker's
session to its map entry (median, p99) and the process's peak memory.`,
  options: { runs: { type: 'string', default: '20', help: 'attacker sessions measured' } },
  notes: 'Needs: scripts/services.sh up postfix.',
});
const RUNS = Number(args.runs);
const root = resolve(import.meta.dirname, '..', '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const pf = JSON.parse(readFileSync(join(root, 'var', 'services', 'services.json'), 'utf8')).postfix;
if (!pf) throw new Error('postfix is not up: scripts/services.sh up postfix');

function vmHwmMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function once(store: boolean, net: number) {
  const dir = mkdtempSync(join(root, 'var', 'bench-run-'));
  const cfgFile = join(dir, 'run.yaml');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      host: 'mx-bench',
      data_dir: dir,
      bus: { kind: 'memory' },
      clickhouse: { backend: 'embedded', path: join(dir, 'chdb') },
      ship: { files: [pf.maillog], start_at: 'end' },
      detect: { policy: { whitelist: ['127.0.0.1/32'], duration_s: 600 }, dha_source: { min_unknown: 5 } },
      respond: {
        mta: 'postfix',
        map_path: pf.access_map,
        postmap: [pf.postmap],
        safety: { allow_loopback: true },
      },
      run: { store },
    }),
  );
  let log = '';
  const child: ChildProcess = spawn(process.execPath, [cli, 'run', '--config', cfgFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (b: Buffer) => {
    log = (log + b.toString()).slice(-20_000);
  });
  while (!log.includes('"msg":"mizugiwa running"')) {
    if (child.exitCode !== null) throw new Error(`mizugiwa run exited (${child.exitCode}):\n${log}`);
    await sleep(50);
  }
  const r = await measureTimeToMitigate(pf, {
    runs: RUNS,
    net,
    unknown: 5,
    onTimeout: () => process.stderr.write(log.slice(-3000)),
  });
  const peak = vmHwmMb(child.pid!);
  child.kill('SIGTERM');
  await new Promise((res) => child.once('close', res));
  await cleanMap(pf, dir);
  rmSync(dir, { recursive: true, force: true });
  return { ...r, peakMb: peak };
}

const rows = [];
for (const [store, net] of [
  [true, 5],
  [false, 6],
] as const) {
  const r = await once(store, net);
  rows.push(
    `| mizugiwa run, store ${store ? 'on (embedded chdb)' : 'off'} | ${r.runs} | ${r.medianMs.toFixed(0)} | ${r.p99Ms.toFixed(0)} | ${r.minMs.toFixed(0)} | ${r.peakMb.toFixed(0)} |`,
  );
}
process.stdout.write(
  [
    '| single host | runs | median ms | p99 ms | min ms | peak RSS MB |',
    '|---|--:|--:|--:|--:|--:|',
    ...rows,
    '',
  ].join('\n'),
);
