// Time to mitigate at the responder: from "decision handed to the Responder" (apply()) to the
// entry being in force in the real MTA's map, over RUNS decisions each for a new source:
//   apply     apply() resolved: the agent wrote, built, verified and renamed the map
//   query     postmap -q / makemap -u (Sendmail) first shows the entry (polled every 2 ms)
//   smtp      a swaks session from the source that started after `query` got 450 4.7.1 (its end)
// Postfix hash: with the default coalescing window (50 ms) and with none; Sendmail hash: default.
// Median and p99 by hdr-histogram-js. Beside it, the naive way (append a line, postmap in place).
//
//   npx tsc -p tsconfig.json && node dist/bench/respond/time-to-mitigate.js [--runs 20] [--only postfix|sendmail]
// MTAs: var/services/services.json (scripts/services.sh up postfix sendmail).
import { execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Responder } from '../../src/respond/agent.js';
import { respondSchema } from '../../src/respond/config.js';
import { benchArgs } from '../lib/args.js';

const args = benchArgs('respond bench', {
  usage: `usage: node dist/bench/respond/time-to-mitigate.js [options]   (or: npm run bench -- respond [options])

Decision -> access map entry in force on the real Postfix and Sendmail (hash maps): median and p99.`,
  options: {
    runs: { type: 'string', default: '20', help: 'decisions measured per MTA' },
    only: { type: 'string', help: 'one MTA: postfix or sendmail (default both)' },
  },
  notes: 'Needs: scripts/services.sh up postfix sendmail.',
});
const RUNS = Number(args.runs);
const root = resolve(import.meta.dirname, '..', '..', '..');
const services = JSON.parse(readFileSync(join(root, 'var', 'services', 'services.json'), 'utf8'));

function run(argv: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((done) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 30_000 }, (err, stdout) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}

function decision(target: string, i: number) {
  const now = Date.now();
  return {
    id: `bench-${target}-${now}`,
    target,
    action: 'tempfail',
    reply: `450 4.7.1 Too many unknown recipients; try later (bench ${i})`,
    detector: 'bench',
    reason: 'time to mitigate',
    confidence: 1,
    evidence: { counts: {}, window_s: 0, sample_event_ids: [] },
    created_at: new Date(now).toISOString(),
    expires_at: new Date(now + 120_000).toISOString(),
    state: 'active',
  };
}

interface Setup {
  name: string;
  respond: Record<string, unknown>;
  smtp: string;
  present: (target: string) => Promise<boolean>;
}

const setups: Setup[] = [];
if (args.only !== 'sendmail') {
  const pf = services.postfix;
  const present = async (t: string) => (await run([pf.postmap, '-q', t, `hash:${pf.access_map}`])).code === 0;
  for (const coalesce of [50, 0]) {
    setups.push({
      name: `postfix hash:, coalesce_ms ${coalesce}`,
      respond: { mta: 'postfix', map_path: pf.access_map, postmap: [pf.postmap], coalesce_ms: coalesce },
      smtp: pf.smtp,
      present,
    });
  }
}
if (args.only !== 'postfix') {
  const sm = services.sendmail;
  setups.push({
    name: 'sendmail hash (access db), coalesce_ms 50',
    respond: { mta: 'sendmail', map_path: sm.access_map, makemap: [sm.makemap], coalesce_ms: 50 },
    smtp: sm.smtp,
    present: async (t) =>
      (await run([sm.makemap, '-u', 'hash', sm.access_map])).stdout.includes(`connect:${t}\t`),
  });
}

function swaks(server: string, from: string): Promise<string> {
  const a = [
    '--server',
    server,
    '--local-interface',
    from,
    '--from',
    'b@client.test',
    '--to',
    'postmaster@example.test',
  ];
  return new Promise((done) => {
    execFile('swaks', [...a, '--quit-after', 'RCPT', '--helo', 'client.test'], (_e, out) => {
      const err = out.split('\n').find((l) => l.startsWith('<**'));
      done(err ? err.replace(/^<\*\*\s+/, '') : 'no error reply');
    });
  });
}

const hist = () =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
const ms = (h: hdr.Histogram, p: number) => (h.getValueAtPercentile(p) / 1000).toFixed(1);

// Side by side: what a hand-written script does (append the line to the table, `postmap` it in
// place), without temp files, checks, fsync or renames, on a scratch table of the same size.
async function naiveBaseline(): Promise<string> {
  const pf = services.postfix;
  const dir = mkdtempSync(join(root, 'var', 'bench-respond-naive-'));
  const table = join(dir, 'access');
  writeFileSync(table, readFileSync(pf.access_map));
  await run([pf.postmap, `hash:${table}`]);
  const h = hist();
  for (let i = 1; i <= RUNS; i++) {
    const target = `127.2.1.${i}`;
    const t0 = performance.now();
    appendFileSync(table, `${target}  450 4.7.1 Too many unknown recipients; try later\n`);
    await run([pf.postmap, `hash:${table}`]);
    while ((await run([pf.postmap, '-q', target, `hash:${table}`])).code !== 0)
      await new Promise((w) => setTimeout(w, 2));
    h.recordValue(Math.round((performance.now() - t0) * 1000));
  }
  rmSync(dir, { recursive: true, force: true });
  return `${'naive script: append + postmap in place'.padEnd(44)} runs ${RUNS}  query median ${ms(h, 50)} ms p99 ${ms(h, 99)} ms\n`;
}

for (const s of setups) {
  const dir = mkdtempSync(join(root, 'var', 'bench-respond-'));
  const config = respondSchema.parse({
    ...s.respond,
    state_path: join(dir, 'state.json'),
    safety: { allow_loopback: true },
  });
  const r = new Responder({ config, dataDir: dir, log: pino({ level: 'silent' }), registry: new Registry() });
  await r.start();
  const h = { apply: hist(), query: hist(), smtp: hist() };
  for (let i = 1; i <= RUNS; i++) {
    const target = `127.2.0.${i}`;
    const t0 = performance.now();
    const res = await r.apply(decision(target, i));
    const tApply = performance.now();
    if (!res.in_force) throw new Error(`${s.name}: ${target} not in force: ${JSON.stringify(res)}`);
    while (!(await s.present(target))) await new Promise((w) => setTimeout(w, 2));
    const tQuery = performance.now();
    const reply = await swaks(s.smtp, target);
    const tSmtp = performance.now();
    if (!reply.startsWith('450 4.7.1')) throw new Error(`${s.name}: ${target} answered ${reply}`);
    h.apply.recordValue(Math.round((tApply - t0) * 1000));
    h.query.recordValue(Math.round((tQuery - t0) * 1000));
    h.smtp.recordValue(Math.round((tSmtp - t0) * 1000));
    await new Promise((w) => setTimeout(w, 100)); // decisions apart, not one batch
  }
  for (let i = 1; i <= RUNS; i++) void r.lift(`127.2.0.${i}`);
  await r.flush();
  await r.stop();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(
    `${s.name.padEnd(44)} runs ${RUNS}  ` +
      `apply median ${ms(h.apply, 50)} ms p99 ${ms(h.apply, 99)} ms | ` +
      `query median ${ms(h.query, 50)} ms p99 ${ms(h.query, 99)} ms | ` +
      `smtp 450 median ${ms(h.smtp, 50)} ms p99 ${ms(h.smtp, 99)} ms\n`,
  );
}
if (args.only !== 'sendmail') process.stdout.write(await naiveBaseline());
