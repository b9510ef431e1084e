// API latency: what an operator's search and an MTA's feed fetch cost, end to end and by part,
// over seeded data in the embedded engine with the production schema.
//   feed     : GET /api/v1/feed/postfix with D decisions in force (fastify inject; then real HTTP)
//              beside its parts: decisionsInForce (ClickHouse) and buildFeed+renderFeed (safety
//              rules and text), and beside node:http serving the same text precomputed (the
//              ceiling of the HTTP part)
//   search   : GET /api/v1/events?ip=ATTACKER beside searchByIp called directly
//   top      : GET /api/v1/top/unknown-recipients (/24) beside topUnknownRecipientSources directly
// Medians and p95 of R runs each, milliseconds; RSS after the runs.
//
//   npx tsc -p tsconfig.json && node dist/bench/api/serve.js [--events 200000] [--decisions 5000] [--runs 30]
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildFeed, renderFeed } from '../../src/api/feed.js';
import { buildApi } from '../../src/api/server.js';
import { MemoryBus } from '../../src/bus/memory.js';
import { openClickHouse } from '../../src/clickhouse/client.js';
import { migrate } from '../../src/clickhouse/migrate.js';
import { configSchema } from '../../src/config/config.js';
import type { Decision } from '../../src/decision/decision.js';
import { createLogger } from '../../src/log/logger.js';
import { parseTargets } from '../../src/respond/safety.js';
import { decisionsInForce, searchByIp, topUnknownRecipientSources } from '../../src/store/queries.js';
import { schemaOptions } from '../../src/store/schema-options.js';
import { StoreWriter } from '../../src/store/writer.js';
import { generate } from '../../src/traffic/generator.js';
import { Rng } from '../../src/traffic/rng.js';
import { benchArgs } from '../lib/args.js';

const args = benchArgs('api bench', {
  usage: `usage: node dist/bench/api/serve.js [options]   (or: npm run bench -- api [options])

API latency over seeded data in the embedded engine: the feed, a search by IP and the top
unknown-recipient sources, each beside its parts; medians and p95 in ms, RSS after the runs.`,
  options: {
    events: { type: 'string', default: '200000', help: 'events stored before the runs' },
    decisions: { type: 'string', default: '5000', help: 'decisions in force for the feed' },
    runs: { type: 'string', default: '30', help: 'requests per measure' },
  },
});
const N = Number(args.events);
const D = Number(args.decisions);
const RUNS = Number(args.runs);
createLogger({ level: 'warn' });

const dir = mkdtempSync(join(tmpdir(), 'mz-bench-api-'));
const cfg = configSchema.parse({
  data_dir: join(dir, 'data'),
  clickhouse: { path: join(dir, 'chdb'), database: 'mz' },
  respond: { safety: { max_entries: Math.max(10_000, D) } },
  // The seeded traffic is dated 2026-03-02: keep it past the default 90-day TTL.
  store: { retention_days: 3650 },
  // Every feed request builds (the cache would answer repeated fetches from memory; measured apart).
  api: { max_search_limit: 100_000, feed: { cache_ms: 0 } },
});
const ch = await openClickHouse(cfg.clickhouse);
await migrate(ch, schemaOptions(cfg));

// ---- data ----------------------------------------------------------------------------------
const hours = Math.max(1, Math.round(N / 165_000));
const traffic = generate({
  seed: 1,
  start: '2026-03-02T06:00:00Z',
  duration_s: hours * 3600,
  legit: { senders: 5000, messages_per_hour: 50000, typo_rate: 0.01 },
  attacks: [
    {
      kind: 'dha_prefix',
      actor: 'net',
      net24: '203.0.113',
      sources: 40,
      unknown_each: 30,
      start_s: 600,
      duration_s: 1800,
    },
    { kind: 'dha_single', actor: 'h', ip: '198.51.100.66', start_s: 1800, unknown: 400 },
  ],
});
const events = traffic.events.slice(0, N);
const writer = await StoreWriter.open(ch, cfg.store);
await writer.write('events', events);
const rng = new Rng(7);
const now = Date.now();
const decisions: Decision[] = [];
const seen = new Set<string>();
while (decisions.length < D) {
  const ip = `${[45, 77, 91, 185, 193][rng.int(5)]}.${rng.int(256)}.${rng.int(256)}.${1 + rng.int(254)}`;
  if (seen.has(ip)) continue;
  seen.add(ip);
  decisions.push({
    id: `dec-${decisions.length}`,
    target: ip,
    action: 'tempfail',
    reply: '450 4.7.1 Too many unknown recipients; try later',
    detector: 'dha_distributed',
    reason: 'bench',
    confidence: 0.9,
    evidence: { counts: { user_unknown: 12 }, window_s: 3600, sample_event_ids: [] },
    created_at: new Date(now - rng.int(3_600_000)).toISOString(),
    expires_at: new Date(now + 3_600_000 + rng.int(3_600_000)).toISOString(),
    state: 'active',
    origin: 'dha_distributed',
  });
}
await writer.write('decisions', decisions);
await writer.close();
const stored = await ch.client.query({
  query: 'SELECT count() AS n FROM mz.mail_events',
  format: 'JSONEachRow',
});
const storedEvents = Number((await stored.json<{ n: string }>())[0]!.n);
if (storedEvents !== events.length) throw new Error(`stored ${storedEvents} of ${events.length} events`);
process.stderr.write(`stored ${events.length} events, ${decisions.length} decisions\n`);

// ---- measuring ---------------------------------------------------------------------------------
const bus = new MemoryBus({ partitions: 1 });
const producer = await bus.producer();
const app = await buildApi({ cfg, ch, bus, producer, log: pino({ level: 'silent' }) });

async function time(label: string, fn: () => Promise<unknown>): Promise<string[]> {
  await fn();
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!;
  return [label, at(0.5).toFixed(1), at(0.95).toFixed(1)];
}

const rows: string[][] = [];
const inject = async (url: string) => {
  const r = await app.inject({ method: 'GET', url });
  if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode} ${r.body.slice(0, 200)}`);
  return r;
};
const feedText = (await inject('/api/v1/feed/postfix')).body;
const entries = feedText.split('\n').filter((l) => l && !l.startsWith('#')).length;
rows.push(await time(`feed/postfix, ${entries} entries (inject)`, () => inject('/api/v1/feed/postfix')));
rows.push(
  await time('  part: decisionsInForce (ClickHouse)', () =>
    decisionsInForce(ch, Date.now(), { limit: 100_000 }),
  ),
);
const inForce = await decisionsInForce(ch, Date.now(), { limit: 100_000 });
const safety = { cfg: cfg.respond.safety, whitelist: parseTargets(cfg.respond.safety.whitelist, 'w') };
rows.push(
  await time('  part: buildFeed + renderFeed', async () =>
    renderFeed(buildFeed(inForce, { kind: 'postfix', type: 'hash' }, safety, Date.now()), {
      kind: 'postfix',
      type: 'hash',
    }),
  ),
);
{
  const cached = await buildApi({
    cfg: { ...cfg, api: { ...cfg.api, feed: { ...cfg.api.feed, cache_ms: 60_000 } } },
    ch,
    producer,
    log: pino({ level: 'silent' }),
  });
  rows.push(
    await time('feed/postfix from the feed cache (inject)', () =>
      cached.inject({ method: 'GET', url: '/api/v1/feed/postfix' }),
    ),
  );
  await cached.close();
}
const address = await app.listen({ host: '127.0.0.1', port: 0 });
rows.push(
  await time('feed/postfix over HTTP (fetch)', async () =>
    (await fetch(`${address}/api/v1/feed/postfix`)).text(),
  ),
);
const staticServer = createServer((_req, res) =>
  res.writeHead(200, { 'content-type': 'text/plain' }).end(feedText),
);
await new Promise<void>((r) => staticServer.listen(0, '127.0.0.1', r));
const staticUrl = `http://127.0.0.1:${(staticServer.address() as AddressInfo).port}/`;
rows.push(
  await time('  peer: node:http, same text precomputed', async () => (await fetch(staticUrl)).text()),
);

const hits = (await inject('/api/v1/events?ip=198.51.100.66&limit=100000')).json().count;
rows.push(
  await time(`events?ip= (${hits} events, inject)`, () =>
    inject('/api/v1/events?ip=198.51.100.66&limit=100000'),
  ),
);
rows.push(await time('  part: searchByIp direct', () => searchByIp(ch, '198.51.100.66', { limit: 100_000 })));
const range = '&from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z';
rows.push(
  await time('top/unknown-recipients /24 (inject)', () =>
    inject(`/api/v1/top/unknown-recipients?v4_prefix=24${range}`),
  ),
);
rows.push(
  await time('  part: topUnknownRecipientSources direct', () =>
    topUnknownRecipientSources(ch, {
      from: '2026-03-02T00:00:00Z',
      to: '2026-03-03T00:00:00Z',
      v4_prefix: 24,
    }),
  ),
);

const rss = Math.round(process.memoryUsage().rss / 1e6);
const w = [Math.max(...rows.map((r) => r[0]!.length)), 10, 10];
process.stdout.write(
  `api bench: ${events.length} events, ${decisions.length} decisions, ${RUNS} runs each, load ${loadavg()[0]!.toFixed(1)}, rss ${rss} MB\n`,
);
process.stdout.write(
  `${'what'.padEnd(w[0]!)}  ${'median ms'.padStart(w[1]!)}  ${'p95 ms'.padStart(w[2]!)}\n`,
);
for (const r of rows)
  process.stdout.write(`${r[0]!.padEnd(w[0]!)}  ${r[1]!.padStart(w[1]!)}  ${r[2]!.padStart(w[2]!)}\n`);

staticServer.close();
await app.close();
await producer.close();
await bus.close();
await ch.close();
rmSync(dir, { recursive: true, force: true });
