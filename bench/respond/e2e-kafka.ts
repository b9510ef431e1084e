// Time to mitigate through the whole fleet pipeline, real parts, separate processes:
// swaks (5 unknown recipients in one session from a new source) → real Postfix maillog →
// `mizugiwa ship` → Kafka → `mizugiwa detect` (dha_source, min_unknown 5) → Kafka →
// `mizugiwa respond` → Postfix hash: map. Measured from the end of the attacker's session (its
// last line is in the maillog) to `postmap -q` answering for the source (polled every 5 ms).
// Median and p99 over RUNS sources (hdr-histogram-js).
//
//   npx tsc -p tsconfig.json && node dist/bench/respond/e2e-kafka.js [--runs 20]
// Needs scripts/services.sh up kafka postfix.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Responder } from '../../src/respond/agent.js';
import { respondSchema } from '../../src/respond/config.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '20' } } });
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

function run(argv: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((done) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 30_000 }, (err, stdout) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

const h = hdr.build({
  lowestDiscernibleValue: 1,
  highestTrackableValue: 600_000_000,
  numberOfSignificantValueDigits: 3,
});
for (let k = 1; k <= RUNS; k++) {
  const src = `127.4.${k}.1`; // one source per /24: no dha_prefix decision for the neighbours
  const rcpts = Array.from({ length: 5 }, (_, i) => `nosuch${k}x${i}@example.test`).join(',');
  await run([
    'swaks',
    '--server',
    pf.smtp,
    '--local-interface',
    src,
    '--from',
    'h@client.test',
    '--to',
    rcpts,
    '--quit-after',
    'RCPT',
  ]);
  const t0 = performance.now();
  for (;;) {
    if ((await run([pf.postmap, '-q', src, `hash:${pf.access_map}`])).code === 0) break;
    if (performance.now() - t0 > 60_000) {
      for (const [name, l] of Object.entries(logs)) process.stderr.write(`--- ${name}\n${l.slice(-3000)}\n`);
      throw new Error(`${src}: no entry within 60 s`);
    }
    await sleep(5);
  }
  h.recordValue(Math.round((performance.now() - t0) * 1000));
  await sleep(200);
}
const ms = (p: number) => (h.getValueAtPercentile(p) / 1000).toFixed(0);
process.stdout.write(
  `ship→Kafka→detect→Kafka→respond→postfix hash: runs ${RUNS}  median ${ms(50)} ms  p99 ${ms(99)} ms  (min ${(h.minNonZeroValue / 1000).toFixed(0)} ms)\n`,
);

stop();
await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('close', r)) : null)));
// Leave the shared test map without the bench's entries.
const clean = new Responder({
  config: respondSchema.parse({
    mta: 'postfix',
    map_path: pf.access_map,
    postmap: [pf.postmap],
    state_path: join(dir, 'clean.json'),
  }),
  dataDir: dir,
  log: pino({ level: 'silent' }),
  registry: new Registry(),
});
await clean.start();
await clean.stop();
rmSync(dir, { recursive: true, force: true });
