// Time to mitigate through the whole fleet pipeline, real parts, separate processes:
// swaks (5 unknown recipients in one session from a new source) → real Postfix maillog →
// `mizugiwa ship` → Kafka → `mizugiwa detect` (dha_source, min_unknown 5) → Kafka →
// `mizugiwa respond` → Postfix hash: map. Measured from the end of the attacker's session (its
// last line is in the maillog) to `postmap -q` answering for the source (polled every 5 ms).
// Median and p99 over RUNS sources (hdr-histogram-js).
//
//   npx tsc -p tsconfig.json && node dist/bench/respond/e2e-kafka.js [--runs 20]
// Needs scripts/services.sh up kafka postfix.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { benchArgs } from '../lib/args.js';
import { cleanMap, measureTimeToMitigate, sleep } from '../lib/mitigate.js';

const args = benchArgs('respond-e2e bench', {
  usage: `usage: node dist/bench/respond/e2e-kafka.js [options]   (or: npm run bench -- respond-e2e [options])

Attacker line -> map entry in force through ship, detect and respond over Kafka: median and p99.`,
  options: { runs: { type: 'string', default: '20', help: 'attacker sessions measured' } },
  notes: 'Needs: scripts/services.sh up kafka postfix.',
});
const RUNS = Number(args.runs);
const root = resolve(import.meta.dirname, '..', '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const services = JSON.parse(readFileSync(join(root, 'var', 'services', 'services.json'), 'utf8'));
const pf = services.postfix;
const id = `${process.pid}-${Date.now()}`;
const dir = mkdtempSync(join(root, 'var', 'bench-e2e-'));
const cfgFile = join(dir, 'mizugiwa.yaml');
writeFileSync(
  cfgFile,
  JSON.stringify({
    host: 'mx-bench',
    data_dir: dir,
    log: { level: 'info' },
    bus: {
      kind: 'kafka',
      partitions: 2,
      kafka: { brokers: services.kafka.brokers, client_id: 'mizugiwa-bench' },
      topics: {
        events: `bench.events.${id}`,
        detections: `bench.detections.${id}`,
        decisions: `bench.decisions.${id}`,
        dead_letter: `bench.dlq.${id}`,
      },
    },
    ship: { files: [pf.maillog], start_at: 'end', checkpoint_path: join(dir, 'ckpt.json') },
    detect: {
      group_id: `bench-detect-${id}`,
      internal_topic: `bench.by-domain.${id}`,
      policy: { whitelist: ['127.0.0.1/32'], duration_s: 600 },
      dha_source: { min_unknown: 5 },
    },
    respond: {
      mta: 'postfix',
      map_path: pf.access_map,
      postmap: [pf.postmap],
      state_path: join(dir, 'respond-state.json'),
      safety: { allow_loopback: true },
    },
  }),
);

const children: ChildProcess[] = [];
const ready: Record<string, boolean> = {};
const logs: Record<string, string> = {};
let stopping = false;
function stop() {
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
}
process.on('exit', stop);
for (const name of ['respond', 'detect', 'ship']) {
  const c = spawn(process.execPath, [cli, name, '--config', cfgFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  logs[name] = '';
  c.stderr!.on('data', (b: Buffer) => {
    logs[name] = (logs[name] + b.toString()).slice(-20_000);
    if (/"msg":"(responding|shipping)"/.test(logs[name]!)) ready[name] = true;
  });
  c.on('exit', (code) => {
    if (stopping) return;
    process.stderr.write(`${name} exited (${code}):\n${logs[name]!.slice(-2000)}\n`);
    process.exit(1);
  });
  children.push(c);
}
while (!ready.respond || !ready.ship) await sleep(50);
await sleep(5000); // the detect group joins

const r = await measureTimeToMitigate(pf, {
  runs: RUNS,
  net: 4,
  unknown: 5,
  onTimeout: () => {
    for (const [name, l] of Object.entries(logs)) process.stderr.write(`--- ${name}\n${l.slice(-3000)}\n`);
  },
});
process.stdout.write(
  `ship→Kafka→detect→Kafka→respond→postfix hash: runs ${RUNS}  median ${r.medianMs.toFixed(0)} ms  p99 ${r.p99Ms.toFixed(0)} ms  (min ${r.minMs.toFixed(0)} ms)\n`,
);

stop();
await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('close', r)) : null)));
await cleanMap(pf, dir);
rmSync(dir, { recursive: true, force: true });
