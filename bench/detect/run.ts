// bench/detect: events/s per core in-process, memory per 1,000,000 tracked sources, and events/s end
// to end through Kafka (one detect member, a pre-filled backlog).
//   npm run build && node --expose-gc dist/bench/detect/run.js [--events 1000000] [--runs 5] [--sources 1000000] [--kafka-events 200000] [--no-kafka]
// Prints a markdown table. Single-threaded: one engine on one core. Side by side: a straightforward
// per-IP implementation (a Map of objects holding timestamp arrays — what a first version, or a
// fail2ban-style "findtime" counter, does) over the same pre-built events.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createBus } from '../../src/bus/create.js';
import { configSchema } from '../../src/config/config.js';
import { defaultDetectConfig } from '../../src/detect/config.js';
import { DetectEngine } from '../../src/detect/engine.js';
import { DetectService } from '../../src/detect/service.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import { generate, intToIp } from '../../src/traffic/generator.js';
import { benchArgs } from '../lib/args.js';

const values = benchArgs('detect bench', {
  usage: `usage: node --expose-gc dist/bench/detect/run.js [options]   (or: npm run bench -- detect [options])

Detector events/s per core in-process (beside a straightforward per-IP implementation), memory per
tracked source, and events/s end to end through Kafka (one detect member, a pre-filled backlog).`,
  options: {
    events: { type: 'string', default: '1000000', help: 'events for the in-process runs' },
    runs: { type: 'string', default: '5', help: 'runs per scenario, the median is reported' },
    sources: { type: 'string', default: '1000000', help: 'distinct sources for the memory figure' },
    'kafka-events': { type: 'string', default: '200000', help: 'events of the Kafka backlog' },
    'no-kafka': { type: 'boolean', default: false, help: 'skip the Kafka scenarios' },
    brokers: { type: 'string', help: 'Kafka brokers, comma-separated (default: var/services/services.json)' },
  },
});
const runs = Number(values.runs);
const gc = (globalThis as { gc?: () => void }).gc;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const rows: string[][] = [];

// ---- 1. events/s in-process ----
const targetEvents = Number(values.events);
// The dha-distributed scenario's mix (normal fleet traffic, lists, bulk sender, 300 bots), scaled.
const hours = Math.max(1, Math.round(targetEvents / 165_000));
const traffic = generate({
  seed: 1,
  start: '2026-03-02T06:00:00Z',
  duration_s: hours * 3600,
  legit: { senders: 5000, messages_per_hour: 50000, typo_rate: 0.01 },
  attacks: [
    { kind: 'big_sender', actor: 'bulk', ip: '198.51.100.10', messages_per_hour: 5000, unknown_rate: 0.01 },
    {
      kind: 'dha_distributed',
      actor: 'botnet',
      bots: 300,
      start_s: Math.max(0, hours - 1) * 3600,
      duration_s: 3600,
      domain: 'example.net',
    },
    { kind: 'dha_single', actor: 'h', ip: '203.0.113.66', start_s: 1800, unknown: 60 },
  ],
});
const events = traffic.events.slice(0, targetEvents);
process.stderr.write(`in-process: ${events.length} pre-built events\n`);

const cfg = defaultDetectConfig();
const silent = pino({ level: 'silent' });
function engineRate(): { rate: number; decisions: number } {
  let decisions = 0;
  const e = new DetectEngine(cfg, { detection: () => {}, decision: () => decisions++ }, { log: silent });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < events.length; i++) e.onEvent(events[i]!);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { rate: events.length / s, decisions };
}
engineRate(); // warm-up
const rates: number[] = [];
let decided = 0;
for (let r = 0; r < runs; r++) {
  const x = engineRate();
  rates.push(x.rate);
  decided = x.decisions;
}
rows.push([
  'mizugiwa engine (all 5 detectors, both stages)',
  `${fmt(median(rates))} events/s`,
  `${decided} decision records`,
]);

// The straightforward peer: per IP an object with arrays of timestamps, pruned to the window.
function naiveRate(): number {
  const win = 3600_000;
  const state = new Map<string, { unk: number[]; acc: number[] }>();
  let fired = 0;
  const t0 = process.hrtime.bigint();
  for (const ev of events) {
    const ip = ev.client_ip;
    if (ip === undefined || ev.ts === undefined) continue;
    const ms = Date.parse(ev.ts);
    let s = state.get(ip);
    if (s === undefined) {
      s = { unk: [], acc: [] };
      state.set(ip, s);
    }
    if (ev.kind === 'reject' && ev.reason === 'user_unknown') s.unk.push(ms);
    else if (ev.kind === 'client' || ev.kind === 'queued') s.acc.push(ms);
    else continue;
    while (s.unk.length > 0 && s.unk[0]! < ms - win) s.unk.shift();
    while (s.acc.length > 0 && s.acc[0]! < ms - win) s.acc.shift();
    if (s.unk.length >= 10 && s.unk.length / (s.unk.length + s.acc.length) >= 0.5) fired++;
  }
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  if (fired < 0) throw new Error('unreachable');
  return events.length / sec;
}
naiveRate();
const naive: number[] = [];
for (let r = 0; r < runs; r++) naive.push(naiveRate());
rows.push([
  'naive Map<ip, {timestamps[]}> (dha_source only)',
  `${fmt(median(naive))} events/s`,
  'one detector, no policy',
]);

// ---- 2. memory per tracked sources ----
const nSources = Number(values.sources);
function mem() {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
{
  const e = new DetectEngine(cfg, { detection: () => {}, decision: () => {} }, { log: silent });
  const before = mem();
  const base = Date.parse('2026-03-02T08:00:00Z');
  // Two events per source (a connection and an unknown recipient) within ten minutes: every source
  // is live in the per-source table when measured; the unknown recipient also creates its prefix
  // and domain state in stage 2.
  const ev: MailEvent = { kind: 'connect', raw: '', host: 'mx1', ts: '' };
  for (let i = 0; i < nSources; i++) {
    const ip = intToIp(0x0b000000 + i * 7);
    const ts = new Date(base + Math.floor((i / nSources) * 600_000)).toISOString();
    ev.kind = 'connect';
    ev.client_ip = ip;
    ev.ts = ts;
    ev.reason = undefined;
    ev.recipient = undefined;
    e.onEvent(ev);
    ev.kind = 'reject';
    ev.reason = 'user_unknown';
    ev.recipient = `x${i % 1000}@example.net`;
    ev.sender = 'a@b.example';
    e.onEvent(ev);
  }
  const after = mem();
  const tracked = e.source!.table.size;
  rows.push([
    `memory, ${fmt(tracked)} tracked sources (+${fmt(e.fleet!.prefix.table.size)} /24 prefixes)`,
    `${((after - before) / 1024 / 1024).toFixed(0)} MB`,
    gc ? 'heap + array buffers after gc' : 'run with --expose-gc for exact figures',
  ]);
}

// ---- 3. end to end through Kafka ----
if (!values['no-kafka']) {
  let brokers = values.brokers?.split(',');
  if (brokers === undefined) {
    try {
      // what scripts/services.sh up kafka wrote (dist/ has no test/ to import loadServices from)
      const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
      const services = JSON.parse(readFileSync(join(root, 'var/services/services.json'), 'utf8'));
      brokers = services.kafka?.brokers;
    } catch {
      brokers = undefined;
    }
  }
  if (brokers === undefined) {
    rows.push([
      'end to end through Kafka',
      'skipped',
      'no brokers (--brokers or scripts/services.sh up kafka)',
    ]);
  } else {
    for (const align of [true, false]) {
      const n = Math.min(Number(values['kafka-events']), events.length);
      const t = `bench.detect.${process.pid}.${Date.now()}`;
      const full = configSchema.parse({
        log: { level: 'warn' },
        bus: {
          kind: 'kafka',
          partitions: 4,
          kafka: { brokers },
          topics: {
            events: `${t}.events`,
            detections: `${t}.det`,
            decisions: `${t}.dec`,
            dead_letter: `${t}.dlq`,
          },
        },
        detect: {
          group_id: `${t}.g`,
          internal_topic: `${t}.by-domain`,
          rebuild: false,
          window: { align_partitions: align },
        },
      });
      const bus = await createBus(full.bus, { kafka: { maxWaitTimeMs: 100 } });
      await bus.ensureTopics([{ topic: full.bus.topics.events, partitions: 4 }]);
      const p = await bus.producer({ lingerMs: 5 });
      const records = events
        .slice(0, n)
        .map((e) => ({ key: e.client_ip ?? e.host ?? null, value: JSON.stringify(e) }));
      for (let i = 0; i < records.length; i += 5000)
        await p.send(full.bus.topics.events, records.slice(i, i + 5000));
      await p.close();
      const svc = new DetectService(full, { bus, log: silent });
      const t0 = Date.now();
      await svc.start();
      while (svc.stats.events === 0) await new Promise((r) => setTimeout(r, 5));
      const t1 = Date.now();
      const e1 = svc.stats.events;
      while (svc.stats.events < n) await new Promise((r) => setTimeout(r, 50));
      const t2 = Date.now();
      const sec = (t2 - t0) / 1000;
      rows.push([
        `end to end through Kafka, steady state (from the first event consumed), align_partitions: ${align}`,
        `${fmt((n - e1) / ((t2 - t1) / 1000))} events/s`,
        `start-up (topics, decisions read-back, group join) took ${((t1 - t0) / 1000).toFixed(1)} s`,
      ]);
      await svc.close();
      await bus.close();
      rows.push([
        `end to end through Kafka (1 member, 4 partitions, ${fmt(n)}-event backlog), align_partitions: ${align}`,
        `${fmt(n / sec)} events/s`,
        'consume + decode + detect + publish signals/outputs, commit per batch; includes group join',
      ]);
    }
  }
}

process.stdout.write('| measure | result | note |\n|---|---|---|\n');
for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
