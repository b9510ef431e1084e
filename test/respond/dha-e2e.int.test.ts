import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServices, repoRoot } from '../services/services.js';
import { removeStateDirs, respondConfig, responder, run, sleep, stateDir, until } from './helpers.js';
import { swaks } from './swaks.js';

// The whole pipeline with real parts and separate processes: swaks from 127.0.0.X asks the real
// Postfix for unknown users; `mizugiwa ship` tails its maillog into Kafka; `mizugiwa detect`
// (dha_source) decides; `mizugiwa respond` writes the decision into Postfix's access map; the next
// swaks from X gets 450 4.7.1 while Y still gets 250; after the decision's expiry X is served again.

const { kafka, postfix: pf } = loadServices('kafka', 'postfix');
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const X = '127.0.0.61';
const Y = '127.0.0.62';
const id = `${process.pid}-${Date.now()}`;
const dir = stateDir('e2e');
const cfgFile = join(dir, 'mizugiwa.yaml');
const children: ChildProcess[] = [];
const logs: Record<string, string[]> = { ship: [], detect: [], respond: [] };

beforeAll(async () => {
  // The processes run compiled code: build when dist is missing or older than this file's components.
  const newest = Math.max(
    ...['src/respond/agent.ts', 'src/detect/service.ts', 'src/ship/shipper.ts', 'src/cli/main.ts'].map(
      (f) => statSync(join(repoRoot, f)).mtimeMs,
    ),
  );
  if (!existsSync(cli) || statSync(cli).mtimeMs < newest) {
    await run([join(repoRoot, 'node_modules/.bin/tsc'), '-p', join(repoRoot, 'tsconfig.json')]);
  }
  expect(existsSync(cli), `${cli} (npm run build)`).toBe(true);
  writeFileSync(
    cfgFile,
    JSON.stringify({
      host: 'mx-e2e',
      data_dir: dir,
      log: { level: 'info' },
      bus: {
        kind: 'kafka',
        partitions: 2,
        kafka: { brokers: kafka.brokers, client_id: 'mizugiwa-e2e' },
        topics: {
          events: `e2e.events.${id}`,
          detections: `e2e.detections.${id}`,
          decisions: `e2e.decisions.${id}`,
          dead_letter: `e2e.dlq.${id}`,
        },
      },
      ship: {
        files: [pf.maillog],
        start_at: 'end',
        checkpoint_path: join(dir, 'ship-checkpoint.json'),
        poll_interval_ms: 50,
        linger_ms: 5,
      },
      detect: {
        group_id: `e2e-detect-${id}`,
        internal_topic: `e2e.by-domain.${id}`,
        policy: { whitelist: ['127.0.0.1/32'], duration_s: 60 },
        dha_source: { min_unknown: 5 },
      },
      respond: {
        mta: 'postfix',
        map_path: pf.access_map,
        map_type: 'hash',
        postmap: [pf.postmap],
        state_path: join(dir, 'respond-state.json'),
        safety: { allow_loopback: true },
      },
    }),
  );
}, 180_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(
    children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('close', r)) : null)),
  );
  // Leave the shared map without our entries.
  const clean = stateDir('e2e-clean');
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
  removeStateDirs();
}, 60_000);

function start(name: 'ship' | 'detect' | 'respond'): ChildProcess {
  const child = spawn(process.execPath, [cli, name, '--config', cfgFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (b: Buffer) => logs[name]!.push(...b.toString().split('\n').filter(Boolean)));
  child.stdout!.on('data', (b: Buffer) => logs[name]!.push(...b.toString().split('\n').filter(Boolean)));
  children.push(child);
  return child;
}

const logged = (name: string, msg: RegExp) => () => Promise.resolve(logs[name]!.some((l) => msg.test(l)));
const inMap = async () => (await run([pf.postmap, '-q', X, `hash:${pf.access_map}`])).code === 0;

describe('DHA end to end over Kafka: ship, detect, respond as separate processes', () => {
  it('unknown users from X → decision → access map → X gets 450 4.7.1, Y 250; lifted after expiry', async () => {
    start('respond');
    start('detect');
    start('ship');
    const tail = (n: string) => () => `${n} not ready:\n${logs[n]!.slice(-5).join('\n')}`;
    await until(logged('respond', /"msg":"responding"/), 120_000, tail('respond'));
    await until(logged('ship', /"msg":"shipping"/), 120_000, tail('ship'));
    await sleep(3000); // the detect group joins its two topics

    expect((await swaks(pf.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);
    // dha_source.min_unknown is 5: five unknown recipients, then the entry must follow.
    for (let i = 1; i <= 5; i++) {
      const a = await swaks(pf.smtp, X, `nosuch${i}@example.test`, `nosuch${i}@example.test`);
      expect(a.reply).toMatch(/^550 5\.1\.1 /);
    }
    const lastUnknownAt = performance.now();
    await until(
      inMap,
      30_000,
      `entry for ${X} in the map; detect said: ${logs.detect!.slice(-5).join('\n')}`,
    );
    console.log(
      `e2e: from the 5th 550 to the map entry: ${(performance.now() - lastUnknownAt).toFixed(0)} ms`,
    );

    const blocked = await swaks(pf.smtp, X, 'postmaster@example.test', 'postmaster@example.test');
    expect(blocked.reply).toMatch(/^450 4\.7\.1 .*Too many unknown recipients from your address/);
    expect((await swaks(pf.smtp, Y, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);

    // duration_s 60: the entry leaves the map on the agent's clock, and X is served again.
    await until(async () => !(await inMap()), 75_000, 'entry lifted after the decision expired');
    expect((await swaks(pf.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);
    expect(logs.respond!.some((l) => /"msg":"entry expired"/.test(l))).toBe(true);
  }, 400_000);
});
