import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServices, repoRoot } from '../services/services.js';
import { removeStateDirs, respondConfig, responder, run, sleep, stateDir, until } from './helpers.js';
import { swaks } from './swaks.js';

// The whole pipeline with real parts and separate processes, for each real MTA: swaks from
// 127.0.0.X asks for unknown users; `mizugiwa ship` tails the MTA's maillog into Kafka;
// `mizugiwa detect` (dha_source) decides; `mizugiwa respond` writes the decision into the MTA's
// access map; the next swaks from X gets 450 4.7.1 while Y still gets 250; after the decision's
// expiry (detect.policy.duration_s: 60, its minimum) X is served again.
// Sendmail is not in the list yet: its "<rcpt>... User unknown" line carries no client address
// (that is on the session's later "from=... relay=[IP]" line with the same queue id), and parse
// and detect do not join the two yet, so dha_source never counts a Sendmail harvest. The
// responder's own Sendmail path is tested against the real Sendmail in mta.int.test.ts.

const services = loadServices('kafka', 'postfix', 'sendmail');
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const children: ChildProcess[] = [];

beforeAll(async () => {
  // The processes run compiled code: build when dist is missing or older than the components.
  const newest = Math.max(
    ...['src/respond/agent.ts', 'src/detect/service.ts', 'src/ship/shipper.ts', 'src/cli/main.ts'].map(
      (f) => statSync(join(repoRoot, f)).mtimeMs,
    ),
  );
  if (!existsSync(cli) || statSync(cli).mtimeMs < newest) {
    await run([join(repoRoot, 'node_modules/.bin/tsc'), '-p', join(repoRoot, 'tsconfig.json')]);
  }
  expect(existsSync(cli), `${cli} (npm run build)`).toBe(true);
}, 180_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(
    children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('close', r)) : null)),
  );
  // Leave the shared maps without our entries.
  for (const respond of [
    { mta: 'postfix', map_path: services.postfix.access_map, postmap: [services.postfix.postmap] },
    { mta: 'sendmail', map_path: services.sendmail.access_map, makemap: [services.sendmail.makemap] },
  ]) {
    const clean = stateDir('e2e-clean');
    const r = responder(respondConfig({ ...respond, state_path: join(clean, 's.json') }), clean);
    await r.start();
    await r.stop();
  }
  removeStateDirs();
}, 60_000);

interface Mta {
  name: 'postfix' | 'sendmail';
  smtp: string;
  maillog: string;
  respond: Record<string, unknown>;
  inMap: (ip: string) => Promise<boolean>;
  X: string;
  Y: string;
}

const pf = services.postfix;
const sm = services.sendmail;
const mtas: Mta[] = [
  {
    name: 'postfix',
    smtp: pf.smtp,
    maillog: pf.maillog,
    respond: { mta: 'postfix', map_path: pf.access_map, map_type: 'hash', postmap: [pf.postmap] },
    inMap: async (ip) => (await run([pf.postmap, '-q', ip, `hash:${pf.access_map}`])).code === 0,
    X: '127.0.0.61',
    Y: '127.0.0.62',
  },
  {
    // Sendmail names the client only in the from= line written after the rejects: the shipper
    // holds the rejects until it (src/enrich/client-join.ts).
    name: 'sendmail',
    smtp: sm.smtp,
    maillog: sm.maillog,
    respond: {
      mta: 'sendmail',
      map_path: sm.access_map,
      map_type: 'hash',
      makemap: [sm.makemap],
      sendmail_cf: sm.cf,
    },
    inMap: async (ip) =>
      (await run([sm.makemap, '-u', 'hash', sm.access_map])).stdout.includes(`connect:${ip}\t`),
    X: '127.0.0.63',
    Y: '127.0.0.64',
  },
];

describe.each(mtas)(
  'DHA end to end over Kafka with the real $name: ship, detect, respond as processes',
  (mta) => {
    it('unknown users from X → decision → access map → X gets 450 4.7.1, Y 250; lifted after expiry', async () => {
      const { X, Y } = mta;
      const id = `${mta.name}-${process.pid}-${Date.now()}`;
      const dir = stateDir(`e2e-${mta.name}`);
      const cfgFile = join(dir, 'mizugiwa.yaml');
      writeFileSync(
        cfgFile,
        JSON.stringify({
          host: `mx-e2e-${mta.name}`,
          data_dir: dir,
          log: { level: 'info' },
          bus: {
            kind: 'kafka',
            partitions: 2,
            kafka: { brokers: services.kafka.brokers, client_id: 'mizugiwa-e2e' },
            topics: {
              events: `e2e.events.${id}`,
              detections: `e2e.detections.${id}`,
              decisions: `e2e.decisions.${id}`,
              dead_letter: `e2e.dlq.${id}`,
            },
          },
          ship: {
            files: [mta.maillog],
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
            ...mta.respond,
            state_path: join(dir, 'respond-state.json'),
            safety: { allow_loopback: true },
          },
        }),
      );
      const logs: Record<string, string[]> = { ship: [], detect: [], respond: [] };
      for (const name of ['respond', 'detect', 'ship']) {
        const child = spawn(process.execPath, [cli, name, '--config', cfgFile], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const keep = (b: Buffer) => logs[name]!.push(...b.toString().split('\n').filter(Boolean));
        child.stderr!.on('data', keep);
        child.stdout!.on('data', keep);
        children.push(child);
      }
      const logged = (name: string, msg: RegExp) => () =>
        Promise.resolve(logs[name]!.some((l) => msg.test(l)));
      const tail = (n: string) => () => `${n}:\n${logs[n]!.slice(-5).join('\n')}`;
      await until(logged('respond', /"msg":"responding"/), 120_000, tail('respond'));
      await until(logged('ship', /"msg":"shipping"/), 120_000, tail('ship'));
      await sleep(3000); // the detect group joins its two topics

      expect((await swaks(mta.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);
      // dha_source.min_unknown is 5: five unknown recipients, then the entry must follow.
      for (let i = 1; i <= 5; i++) {
        const a = await swaks(mta.smtp, X, `nosuch${i}@example.test`, `nosuch${i}@example.test`);
        expect(a.reply).toMatch(/^550 5\.1\.1 /);
      }
      const lastUnknownAt = performance.now();
      await until(() => mta.inMap(X), 30_000, tail('detect'));
      console.log(
        `e2e ${mta.name}: from the 5th 550 to the map entry: ${(performance.now() - lastUnknownAt).toFixed(0)} ms`,
      );

      const blocked = await swaks(mta.smtp, X, 'postmaster@example.test', 'postmaster@example.test');
      expect(blocked.reply).toMatch(/^450 4\.7\.1 .*Too many unknown recipients from your address/);
      expect((await swaks(mta.smtp, Y, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);

      await until(async () => !(await mta.inMap(X)), 75_000, 'entry lifted after the decision expired');
      expect((await swaks(mta.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);
      expect(logs.respond!.some((l) => /"msg":"entry expired"/.test(l))).toBe(true);
    }, 400_000);
  },
);
