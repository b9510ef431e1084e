import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServices, repoRoot } from '../services/services.js';
import { removeStateDirs, respondConfig, responder, run, sleep, stateDir } from './helpers.js';
import { swaks } from './swaks.js';

// kill -9 of an agent in the middle of its rebuilds, against the real Postfix and Sendmail and
// their real maps: the MTA keeps answering, the map is whole (the old generation or the new one,
// never a mix), and a restart converges on the state file. The agent is bench/respond/churn.ts
// (compiled), which rewrites N entries with "450 4.7.1 generation G" as fast as it can.

const services = loadServices('postfix', 'sendmail');
const N = 50;
const ROUNDS = 8;
const churn = join(repoRoot, 'dist', 'bench', 'respond', 'churn.js');
const keys = Array.from({ length: N }, (_, i) => `127.1.0.${i + 1}`);

beforeAll(async () => {
  // The child runs compiled code: build when dist is missing or older than the sources.
  const sources = [
    'bench/respond/churn.ts',
    ...readdirSync(join(repoRoot, 'src/respond'), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `src/respond/${f}`),
  ];
  const newest = Math.max(...sources.map((f) => statSync(join(repoRoot, f)).mtimeMs));
  if (!existsSync(churn) || statSync(churn).mtimeMs < newest) {
    await run([join(repoRoot, 'node_modules/.bin/tsc'), '-p', join(repoRoot, 'tsconfig.json')]);
  }
  expect(existsSync(churn), `${churn} (npm run build)`).toBe(true);
}, 180_000);

interface Mta {
  name: string;
  smtp: string;
  mapPath: string;
  respond: Record<string, unknown>;
  /** key → generation, as the MTA's database answers now. */
  generations: () => Promise<Map<string, number>>;
}

const pf = services.postfix;
const sm = services.sendmail;
const mtas: Mta[] = [
  {
    name: 'postfix',
    smtp: pf.smtp,
    mapPath: pf.access_map,
    respond: { mta: 'postfix', map_path: pf.access_map, map_type: 'hash', postmap: [pf.postmap] },
    generations: async () => {
      const r = await run(
        [pf.postmap, '-q', '-', `hash:${pf.access_map}`],
        keys.map((k) => `${k}\n`).join(''),
      );
      return parse(r.stdout, /^(\S+)\t450 4\.7\.1 generation (\d+)$/);
    },
  },
  {
    name: 'sendmail',
    smtp: sm.smtp,
    mapPath: sm.access_map,
    respond: { mta: 'sendmail', map_path: sm.access_map, map_type: 'hash', makemap: [sm.makemap] },
    generations: async () => {
      const r = await run([sm.makemap, '-u', 'hash', sm.access_map]);
      return parse(r.stdout, /^connect:(127\.1\.0\.\d+)\tERROR:4\.7\.1:"450 4\.7\.1 generation (\d+)"$/);
    },
  },
];

function parse(out: string, re: RegExp): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of out.split('\n')) {
    const x = re.exec(line);
    if (x) m.set(x[1]!, Number(x[2]));
  }
  return m;
}

afterAll(async () => {
  // Leave the shared test maps without our entries: an agent with an empty state rebuilds them.
  for (const mta of mtas) {
    const clean = stateDir('crash-clean');
    const r = responder(respondConfig({ ...mta.respond, state_path: join(clean, 's.json') }), clean);
    await r.start();
    await r.stop();
  }
  removeStateDirs();
});

function startChurn(cfgFile: string, generations?: number) {
  const args = [churn, cfgFile, String(N), ...(generations !== undefined ? [String(generations)] : [])];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let last = 0;
  let buf = '';
  child.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    for (const m of buf.matchAll(/^gen (\d+)$/gm)) last = Math.max(last, Number(m[1]));
    buf = buf.slice(buf.lastIndexOf('\n') + 1);
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return { child, gens: () => last, closed, stderr: () => stderr };
}

describe.each(mtas)('kill -9 while the agent rebuilds the real $name map', (mta) => {
  it('the map is the old or the new one, the MTA answers, a restart converges', async () => {
    const dir = stateDir(`crash-${mta.name}`);
    const cfgFile = join(dir, 'respond.yaml');
    writeFileSync(
      cfgFile,
      JSON.stringify({
        data_dir: dir,
        log: { level: 'error' },
        respond: { ...mta.respond, state_path: join(dir, 'state.json'), safety: { allow_loopback: true } },
      }),
    );
    for (let round = 1; round <= ROUNDS; round++) {
      const c = startChurn(cfgFile);
      const t0 = Date.now();
      while (c.gens() < 2) {
        if (Date.now() - t0 > 60_000) throw new Error(`churn made no progress: ${c.stderr()}`);
        await sleep(5);
      }
      await sleep(Math.floor(Math.random() * 40));
      c.child.kill('SIGKILL');
      await c.closed;
      const seen = c.gens();

      const gens = await mta.generations();
      expect(gens.size, `round ${round}: every key in the map`).toBe(N);
      const distinct = [...new Set(gens.values())];
      expect(distinct, `round ${round}: one generation in the whole map`).toHaveLength(1);
      expect([seen, seen + 1], `round ${round}: the last generation written or the one after`).toContain(
        distinct[0],
      );

      const a = await swaks(mta.smtp, keys[6]!, 'postmaster@example.test', 'postmaster@example.test');
      expect(a.reply).toMatch(new RegExp(`^450 4\\.7\\.1 .*generation ${distinct[0]}`));
      const b = await swaks(mta.smtp, '127.0.0.45', 'postmaster@example.test', 'postmaster@example.test');
      expect(b.code).toBe(250);
    }

    // Restart: the state file is the intent, the map follows it, temp files are gone.
    const c = startChurn(cfgFile, 0);
    await c.closed;
    expect(c.child.exitCode, c.stderr()).toBe(0);
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as {
      entries: { reply: string }[];
    };
    const stateGens = new Set(state.entries.map((e) => e.reply));
    expect(stateGens.size).toBe(1);
    const want = Number(/generation (\d+)/.exec([...stateGens][0]!)![1]);
    const gens = await mta.generations();
    expect([...new Set(gens.values())]).toEqual([want]);
    expect(gens.size).toBe(N);
    const leftovers = readdirSync(dirname(mta.mapPath)).filter((f) =>
      f.startsWith(`${basename(mta.mapPath)}.mizugiwa`),
    );
    expect(leftovers).toEqual([]);
  });
});
