import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// `npm run bench -- NAME [ARGS...]`: runs one component's benchmark (compiled to dist/bench/).
// Each writes its figures as a markdown table; the README quotes them.

const BENCHES: Record<string, { script: string; what: string; needs?: string }> = {
  parse: {
    script: 'parse/run.js',
    what: 'parser lines/s on one core and peak memory, side by side with fail2ban-regex',
  },
  ship: {
    script: 'ship/throughput.js',
    what: 'file → acknowledged Kafka writes: lines/s, CPU s per 100k lines, peak RSS',
    needs: 'kafka',
  },
  detect: {
    script: 'detect/run.js',
    what: 'detector events/s per core, through Kafka, memory per 1M sources',
    needs: 'kafka',
  },
  store: {
    script: 'store/throughput.js',
    what: 'events/s into embedded chdb and the ClickHouse server, bytes per event',
    needs: 'kafka clickhouse',
  },
  bus: {
    script: 'bus/throughput.js',
    what: 'Kafka produce/consume records/s: kafkajs vs @platformatic/kafka, memory bus',
    needs: 'kafka',
  },
  respond: {
    script: 'respond/time-to-mitigate.js',
    what: 'decision → access map in force (Postfix hash, Sendmail): median, p99',
    needs: 'postfix sendmail',
  },
  'respond-e2e': {
    script: 'respond/e2e-kafka.js',
    what: 'attacker line → map entry through ship/detect/respond over Kafka',
    needs: 'kafka postfix',
  },
  run: {
    script: 'run/time-to-mitigate.js',
    what: 'single-host `mizugiwa run`: attacker line → map entry; peak memory with and without store',
    needs: 'postfix',
  },
  api: { script: 'api/serve.js', what: 'API latency: feed, search, top sources' },
};

const [name, ...args] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
if (!name || name === '--help' || name === '-h' || !BENCHES[name]) {
  if (name && !['--help', '-h'].includes(name)) process.stderr.write(`unknown benchmark: ${name}\n\n`);
  process.stdout.write('usage: npm run bench -- NAME [ARGS...]   (after npm run build)\n\n');
  for (const [n, b] of Object.entries(BENCHES)) {
    process.stdout.write(
      `  ${n.padEnd(12)} ${b.what}${b.needs ? ` [needs: scripts/services.sh up ${b.needs}]` : ''}\n`,
    );
  }
  process.exit(name && !['--help', '-h'].includes(name) ? 2 : 0);
}
const r = spawnSync(process.execPath, [join(here, BENCHES[name]!.script), ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
