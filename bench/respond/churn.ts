// Rebuilds the access map in a loop, as fast as it goes: every generation rewrites N entries
// (127.1.0.1, 127.1.0.2, ... 250 per /24) with the reply "450 4.7.1 generation G". Prints "gen G" once a
// generation is in the map. Used by the kill -9 test (test/respond/crash.int.test.ts) and to see
// the rebuild rate of a map:   node dist/bench/respond/churn.js CONFIG.yaml [N] [GENERATIONS]
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log/logger.js';
import { responderFromConfig } from '../../src/respond/start.js';

/** The k-th churn target (k from 1): 127.1.0.1 .. 127.1.0.250, 127.1.1.1, ... */
function churnTarget(k: number): string {
  return `127.1.${Math.floor((k - 1) / 250)}.${((k - 1) % 250) + 1}`;
}

const [file, nArg, gensArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: churn.js CONFIG.yaml [N=50] [GENERATIONS=forever]\n');
  process.exit(2);
}
const n = Number(nArg ?? 50);
const generations = gensArg ? Number(gensArg) : Number.POSITIVE_INFINITY;
const cfg = loadConfig(file);
const log = createLogger({ level: cfg.log.level, component: 'respond' });
const responder = responderFromConfig(cfg, log);
await responder.start();
process.stdout.write('started\n');
const t0 = performance.now();
let g = 0;
while (g < generations) {
  g++;
  const now = Date.now();
  for (let k = 1; k <= n; k++) {
    void responder.apply({
      id: `churn-${g}-${k}`,
      target: churnTarget(k),
      action: 'tempfail',
      reply: `450 4.7.1 generation ${g}`,
      detector: 'churn',
      reason: 'churn',
      confidence: 1,
      evidence: { counts: {}, window_s: 0, sample_event_ids: [] },
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + 3600_000).toISOString(),
      state: 'active',
    });
  }
  if (!(await responder.flush())) {
    process.stderr.write(`generation ${g}: map not rebuilt\n`);
    process.exit(1);
  }
  process.stdout.write(`gen ${g}\n`);
}
const ms = performance.now() - t0;
process.stdout.write(
  `${g} generations of ${n} entries in ${ms.toFixed(0)} ms: ${(ms / g).toFixed(1)} ms per rebuild\n`,
);
await responder.stop();
