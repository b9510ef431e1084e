import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, loadServices } from '../services/services.js';
import { respondConfig, responder, run, sleep, stateDir } from './helpers.js';
import { swaks } from './swaks.js';

// kill -9 of an agent in the middle of its rebuilds, against the real Postfix and its real map:
// the MTA keeps answering, the map is whole (the old generation or the new one, never a mix),
// and a restart converges on the state file. The agent is bench/respond/churn.ts (compiled),
// which rewrites N entries with "450 4.7.1 generation G" as fast as it can.

const pf = loadServices('postfix').postfix;
const N = 50;
const ROUNDS = 8;
const churn = join(repoRoot, 'dist', 'bench', 'respond', 'churn.js');
const dir = stateDir('crash');
const cfgFile = join(dir, 'respond.yaml');
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
  writeFileSync(
    cfgFile,
    JSON.stringify({
      data_dir: dir,
      log: { level: 'error' },
      respond: {
        mta: 'postfix',
        map_path: pf.access_map,
        map_type: 'hash',
        postmap: [pf.postmap],
        state_path: join(dir, 'state.json'),
        safety: { allow_loopback: true },
      },
    }),
  );
}, 180_000);

afterAll(async () => {
  // Leave the shared test map without our entries: an agent with an empty state rebuilds it.
  const clean = stateDir('crash-clean');
  const r = responder(
    respondConfig({
      mta: 'postfix',
      map_path: pf.access_map,
      postmap: [pf.postmap],
      state_path: join(clean, 's.json'),
    }),
    clean,
  );
  await r.start();
  await r.stop();
  rmSync(clean, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

async function mapGenerations(): Promise<Map<string, number>> {
  const r = await run([pf.postmap, '-q', '-', `hash:${pf.access_map}`], keys.map((k) => `${k}\n`).join(''));
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+)\t450 4\.7\.1 generation (\d+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function startChurn(generations?: number): {
  child: ChildProcess;
  gens: () => number;
  closed: Promise<void>;
} {
  const args = [churn, cfgFile, String(N), ...(generations !== undefined ? [String(generations)] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
  void closed.then(() => {
    if (stderr.trim()) console.error(stderr);
  });
  return { child, gens: () => last, closed };
}

describe('kill -9 while the agent rebuilds the map', () => {
  it('the map is the old or the new one, the MTA answers, a restart converges', async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const c = startChurn();
      const t0 = Date.now();
      while (c.gens() < 2) {
        if (Date.now() - t0 > 60_000) throw new Error('churn made no progress');
        await sleep(5);
      }
      await sleep(Math.floor(Math.random() * 40));
      c.child.kill('SIGKILL');
      await c.closed;
      const seen = c.gens();

      const gens = await mapGenerations();
      expect(gens.size, `round ${round}: every key in the map`).toBe(N);
      const distinct = [...new Set(gens.values())];
      expect(distinct, `round ${round}: one generation in the whole map`).toHaveLength(1);
      expect([seen, seen + 1], `round ${round}: the last generation written or the one after`).toContain(
        distinct[0],
      );

      const a = await swaks(pf.smtp, keys[6]!, 'postmaster@example.test', 'postmaster@example.test');
      expect(a.reply).toMatch(new RegExp(`^450 4\\.7\\.1 .*generation ${distinct[0]}$`));
      expect(
        (await swaks(pf.smtp, '127.0.0.45', 'postmaster@example.test', 'postmaster@example.test')).code,
      ).toBe(250);
    }

    // Restart: the state file is the intent, the map follows it, temp files are gone.
    const c = startChurn(0);
    await c.closed;
    expect(c.child.exitCode).toBe(0);
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as {
      entries: { reply: string }[];
    };
    const stateGens = new Set(state.entries.map((e) => e.reply));
    expect(stateGens.size).toBe(1);
    const want = Number(/generation (\d+)/.exec([...stateGens][0]!)![1]);
    const gens = await mapGenerations();
    expect([...new Set(gens.values())]).toEqual([want]);
    expect(gens.size).toBe(N);
    const leftovers = readdirSync(dirname(pf.access_map)).filter((f) =>
      f.startsWith(`${basename(pf.access_map)}.mizugiwa`),
    );
    expect(leftovers).toEqual([]);
  });
});
