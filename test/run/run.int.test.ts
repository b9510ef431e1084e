import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openClickHouse } from '../../src/clickhouse/client.js';
import { removeStateDirs, respondConfig, responder, run, stateDir, until } from '../respond/helpers.js';
import { swaks } from '../respond/swaks.js';
import { loadServices, repoRoot } from '../services/services.js';
import { uniqueLoopback } from '../services/swaks.js';

// The single-host mode end to end: `mizugiwa run` (one process, in-process bus, no Kafka) follows
// the real MTA's log; swaks from X asks for unknown users until dha_source decides; the entry goes
// into the MTA's own access map; X then gets 450 4.7.1 while Y is still served; after the
// decision's expiry (short here) X gets its normal answer again. Once for Postfix (with the store
// on: the events and the decision are then in the embedded ClickHouse), once for Sendmail.

const { postfix: pf, sendmail: sm } = loadServices('postfix', 'sendmail');
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const DURATION_S = 60; // the shortest detect.policy.duration_s allows
const MIN_UNKNOWN = 6;

let child: ChildProcess | undefined;
let output: string[] = [];

function startRun(cfg: object, dir: string): Promise<void> {
  const file = join(dir, 'run.yaml');
  writeFileSync(file, JSON.stringify(cfg));
  output = [];
  child = spawn(process.execPath, [cli, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (b: Buffer) => output.push(...b.toString().split('\n').filter(Boolean));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return until(
    () =>
      Promise.resolve(output.some((l) => l.includes('"msg":"mizugiwa running"')) || child?.exitCode !== null),
    90_000,
    'mizugiwa run ready',
  ).then(() => {
    if (child?.exitCode !== null)
      throw new Error(`mizugiwa run exited (${child?.exitCode}):\n${output.join('\n')}`);
  });
}

async function stopRun(): Promise<number | null> {
  const c = child;
  child = undefined;
  if (!c || c.exitCode !== null) return c?.exitCode ?? null;
  const closed = new Promise<number | null>((r) => c.once('close', (code) => r(code)));
  c.kill('SIGTERM');
  return closed;
}

function baseConfig(dir: string, maillog: string) {
  return {
    host: 'mx-run',
    data_dir: dir,
    log: { level: 'info' },
    bus: { kind: 'memory' },
    clickhouse: { backend: 'embedded', path: join(dir, 'chdb') },
    ship: { files: [maillog], start_at: 'end', poll_interval_ms: 50, linger_ms: 5 },
    detect: {
      policy: { whitelist: ['127.0.0.1/32'], duration_s: DURATION_S },
      dha_source: { min_unknown: MIN_UNKNOWN },
    },
  };
}

afterEach(async () => {
  await stopRun();
});

afterAll(async () => {
  // Leave the shared maps without our entries.
  for (const [mta, svc] of [
    ['postfix', { map_path: pf.access_map, postmap: [pf.postmap] }],
    ['sendmail', { map_path: sm.access_map, makemap: [sm.makemap], sendmail_cf: sm.cf }],
  ] as const) {
    const clean = stateDir(`run-clean-${mta}`);
    const r = responder(respondConfig({ mta, ...svc, state_path: join(clean, 's.json') }), clean);
    await r.start();
    await r.stop();
  }
  removeStateDirs();
}, 60_000);

describe('mizugiwa run (single host, in-process bus)', () => {
  it('Postfix: unknown users from X → 450 4.7.1 for X, 250 for Y, lifted after expiry; stored in ClickHouse', async () => {
    expect(existsSync(cli), `${cli}: run npm run build`).toBe(true);
    const dir = stateDir('run-postfix');
    const X = uniqueLoopback();
    const Y = uniqueLoopback();
    await startRun(
      {
        ...baseConfig(dir, pf.maillog),
        respond: {
          mta: 'postfix',
          map_path: pf.access_map,
          map_type: 'hash',
          postmap: [pf.postmap],
          coalesce_ms: 10,
          safety: { allow_loopback: true },
        },
        run: { store: true },
      },
      dir,
    );
    const inMap = async () => (await run([pf.postmap, '-q', X, `hash:${pf.access_map}`])).code === 0;

    let decidedAfter = 0;
    for (let i = 1; i <= 14 && decidedAfter === 0; i++) {
      const a = await swaks(pf.smtp, X, `nosuch-run-${i}@example.test`, `nosuch-run-${i}@example.test`);
      if (a.code === 450) decidedAfter = i - 1;
      else expect(a.reply).toMatch(/^550 5\.1\.1 /);
      if (i >= MIN_UNKNOWN && decidedAfter === 0) {
        await until(inMap, 5_000, `entry for ${X} in the map after ${i} unknown recipients`).catch(() => {});
      }
    }
    if (decidedAfter === 0) decidedAfter = 14;
    expect(await inMap()).toBe(true);
    expect(decidedAfter).toBeLessThan(15);
    expect(decidedAfter).toBeGreaterThanOrEqual(MIN_UNKNOWN);

    const blocked = await swaks(pf.smtp, X, 'postmaster@example.test', 'postmaster@example.test');
    expect(blocked.reply).toMatch(/^450 4\.7\.1 .*Too many unknown recipients/);
    expect((await swaks(pf.smtp, Y, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);

    await until(async () => !(await inMap()), (DURATION_S + 20) * 1000, `entry for ${X} lifted after expiry`);
    expect((await swaks(pf.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);

    expect(await stopRun()).toBe(0);
    // The same process stored what it saw: X's rejects and the decision, readable after it stopped.
    const ch = await openClickHouse({
      backend: 'embedded',
      path: join(dir, 'chdb'),
      database: 'mizugiwa',
      url: 'http://127.0.0.1:8123',
      username: 'default',
      password: '',
      request_timeout_ms: 30_000,
    });
    try {
      const rs = await ch.client.query({
        query: `SELECT countIf(reason = 'user_unknown') AS unknown, count() AS all
                FROM mizugiwa.mail_events FINAL WHERE client_ip = toIPv6({ip:String})`,
        query_params: { ip: X },
        format: 'JSONEachRow',
      });
      const [row] = (await rs.json()) as Array<{ unknown: string | number; all: string | number }>;
      expect(Number(row!.unknown)).toBeGreaterThanOrEqual(MIN_UNKNOWN);
      const ds = await ch.client.query({
        query: `SELECT count() AS n FROM mizugiwa.decisions WHERE target = {t:String}`,
        query_params: { t: X },
        format: 'JSONEachRow',
      });
      const [d] = (await ds.json()) as Array<{ n: string | number }>;
      expect(Number(d!.n)).toBeGreaterThanOrEqual(1);
    } finally {
      await ch.close();
    }
  });

  it('Sendmail: unknown users from X → 450 at connect for X, Y served, lifted after expiry (store off)', async () => {
    const dir = stateDir('run-sendmail');
    const X = uniqueLoopback();
    const Y = uniqueLoopback();
    await startRun(
      {
        ...baseConfig(dir, sm.maillog),
        respond: {
          mta: 'sendmail',
          map_path: sm.access_map,
          map_type: 'hash',
          makemap: [sm.makemap],
          sendmail_cf: sm.cf,
          coalesce_ms: 10,
          safety: { allow_loopback: true },
        },
        run: { store: false },
      },
      dir,
    );
    const blockedNow = async () =>
      (await swaks(sm.smtp, X, 'postmaster@example.test', 'postmaster@example.test')).code === 450;

    let decided = false;
    for (let i = 1; i <= 14 && !decided; i++) {
      const a = await swaks(sm.smtp, X, `nosuch-run-${i}@example.test`, `nosuch-run-${i}@example.test`);
      if (a.code === 450) decided = true;
      else expect(a.reply).toMatch(/^550 5\.1\.1 /);
    }
    if (!decided) await until(blockedNow, 10_000, `sendmail tempfails ${X}`);
    const blocked = await swaks(sm.smtp, X, 'postmaster@example.test', 'postmaster@example.test');
    expect(blocked.reply).toMatch(/^450 4\.7\.1 /);
    expect((await swaks(sm.smtp, Y, 'postmaster@example.test', 'postmaster@example.test')).code).toBe(250);
    expect(readFileSync(sm.access_map, 'utf8')).toContain(`Connect:${X}`);

    await until(
      async () => !(await blockedNow()),
      (DURATION_S + 20) * 1000,
      `${X} served again after expiry`,
    );
    expect(readFileSync(sm.access_map, 'utf8')).not.toContain(`Connect:${X}`);
    expect(await stopRun()).toBe(0);
  });
});
