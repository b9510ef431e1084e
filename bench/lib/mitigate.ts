// Time to mitigate against the real Postfix: swaks asks for 5 unknown recipients in one session
// from a new source; the clock starts when the session is over (its last line is in the maillog)
// and stops when `postmap -q` answers for the source from the map Postfix reads (polled every
// 5 ms). Median and p99 over `runs` sources (hdr-histogram-js).
import { execFile } from 'node:child_process';
import * as hdr from 'hdr-histogram-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Responder } from '../../src/respond/agent.js';
import { respondSchema } from '../../src/respond/config.js';

export interface PostfixService {
  smtp: string;
  maillog: string;
  access_map: string;
  postmap: string;
}

export interface MitigateResult {
  runs: number;
  medianMs: number;
  p99Ms: number;
  minMs: number;
}

export function exec(argv: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((done) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 30_000 }, (err, stdout) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sources are 127.<net>.<k>.1: one per /24, so no prefix decision covers the next one. */
export async function measureTimeToMitigate(
  pf: PostfixService,
  opts: { runs: number; net: number; unknown: number; onTimeout?: () => void },
): Promise<MitigateResult> {
  const h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  for (let k = 1; k <= opts.runs; k++) {
    const src = `127.${opts.net}.${k}.1`;
    const rcpts = Array.from({ length: opts.unknown }, (_, i) => `nosuch${k}x${i}@example.test`).join(',');
    await exec([
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
      if ((await exec([pf.postmap, '-q', src, `hash:${pf.access_map}`])).code === 0) break;
      if (performance.now() - t0 > 60_000) {
        opts.onTimeout?.();
        throw new Error(`${src}: no map entry within 60 s`);
      }
      await sleep(5);
    }
    h.recordValue(Math.round((performance.now() - t0) * 1000));
    await sleep(200);
  }
  return {
    runs: opts.runs,
    medianMs: h.getValueAtPercentile(50) / 1000,
    p99Ms: h.getValueAtPercentile(99) / 1000,
    minMs: h.minNonZeroValue / 1000,
  };
}

/** Leaves the shared test map without the benchmark's entries. */
export async function cleanMap(pf: PostfixService, dir: string): Promise<void> {
  const clean = new Responder({
    config: respondSchema.parse({
      mta: 'postfix',
      map_path: pf.access_map,
      postmap: [pf.postmap],
      state_path: `${dir}/clean.json`,
    }),
    dataDir: dir,
    log: pino({ level: 'silent' }),
    registry: new Registry(),
  });
  await clean.start();
  await clean.stop();
}
