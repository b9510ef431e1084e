import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServices, repoRoot } from '../services/services.js';
import { decision, removeStateDirs, run, stateDir, until } from './helpers.js';

// `mizugiwa respond` as an operator runs it: --help, configuration errors (exit 2, one line naming
// the key), --once against the real postmap, --list, --dry-run.

const { postfix: pf, kafka } = loadServices('postfix', 'kafka');
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const dir = stateDir('cli');

beforeAll(async () => {
  const newest = Math.max(
    ...['src/respond/command.ts', 'src/respond/agent.ts', 'src/respond/config.ts'].map(
      (f) => statSync(join(repoRoot, f)).mtimeMs,
    ),
  );
  if (!existsSync(cli) || statSync(cli).mtimeMs < newest) {
    await run([join(repoRoot, 'node_modules/.bin/tsc'), '-p', join(repoRoot, 'tsconfig.json')]);
  }
}, 180_000);
afterAll(() => removeStateDirs());

function mizugiwa(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
function config(name: string, respond: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ data_dir: dir, log: { level: 'warn' }, respond, ...extra }));
  return file;
}

describe('mizugiwa respond', () => {
  it('--help names every option', () => {
    const r = mizugiwa('respond', '--help');
    expect(r.code).toBe(0);
    for (const o of ['--config', '--dry-run', '--once', '--list']) expect(r.stdout).toContain(o);
  });

  it('configuration errors: exit 2 with the key and the reason', () => {
    const bad = mizugiwa(
      'respond',
      '-c',
      config('bad1.yaml', { safety: { whitelist: ['10.0.0.1/8'] } }),
      '--once',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/respond\.safety\.whitelist\.0: target 10\.0\.0\.1\/8 has host bits set/);
    const cidr = mizugiwa(
      'respond',
      '-c',
      config('bad2.yaml', { mta: 'sendmail', map_type: 'cidr' }),
      '--once',
    );
    expect(cidr.code).toBe(2);
    expect(cidr.stderr).toMatch(/respond\.map_type: sendmail's access db is built by makemap/);
    const memory = mizugiwa('respond', '-c', config('mem.yaml', { map_path: join(dir, 'm') }));
    expect(memory.code).toBe(2);
    expect(memory.stderr).toMatch(/bus\.kind: `mizugiwa respond` reads decisions from Kafka/);
  });

  it('--once rebuilds the map from the state file (dropping what expired), --list prints the state', async () => {
    const map = join(dir, 'access');
    const state = join(dir, 'state.json');
    const now = Date.now();
    writeFileSync(
      state,
      JSON.stringify({
        version: 1,
        written_at: new Date(now).toISOString(),
        entries: [
          {
            ...decision('192.0.2.7', 0),
            decision_id: 'a',
            expires_at: new Date(now + 600_000).toISOString(),
          },
          { ...decision('192.0.2.8', 0), decision_id: 'b', expires_at: new Date(now - 1000).toISOString() },
        ],
      }),
    );
    const cfg = config('once.yaml', { map_path: map, postmap: [pf.postmap], state_path: state });
    const once = mizugiwa('respond', '-c', cfg, '--once');
    expect(once.code, once.stderr).toBe(0);
    expect((await run([pf.postmap, '-q', '192.0.2.7', `hash:${map}`])).stdout.trim()).toMatch(
      /^450 4\.7\.1 /,
    );
    expect((await run([pf.postmap, '-q', '192.0.2.8', `hash:${map}`])).code).toBe(1);
    const list = mizugiwa('respond', '-c', cfg, '--list');
    expect(list.code).toBe(0);
    const lines = list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((e) => e.target)).toEqual(['192.0.2.7']);
  });

  it('--dry-run --once touches neither the map nor the state', () => {
    const map = join(dir, 'dry-access');
    const cfg = config('dry.yaml', {
      map_path: map,
      postmap: [pf.postmap],
      state_path: join(dir, 'dry.json'),
    });
    const r = mizugiwa('respond', '-c', cfg, '--once', '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(map)).toBe(false);
    expect(existsSync(join(dir, 'dry.json'))).toBe(false);
    expect(existsSync(`${join(dir, 'dry.json')}.lock`)).toBe(false);
  });

  it('a map command that is missing fails --once (exit 1) and leaves the old map', async () => {
    const map = join(dir, 'access');
    const before = readFileSync(`${map}.db`);
    const cfg = config('nopostmap.yaml', {
      map_path: map,
      postmap: ['/nonexistent/postmap'],
      state_path: join(dir, 'state.json'),
    });
    const r = mizugiwa('respond', '-c', cfg, '--once');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/command not found: \/nonexistent\/postmap/);
    expect(readFileSync(`${map}.db`).equals(before)).toBe(true);
  });

  it('as a daemon: SIGHUP rebuilds the map (picking up new lines of the administrator), SIGTERM exits 0', async () => {
    const map = join(dir, 'daemon-access');
    const state = join(dir, 'daemon-state.json');
    const cfg = config(
      'daemon.yaml',
      { map_path: map, postmap: [pf.postmap], state_path: state },
      {
        host: 'cli-test',
        log: { level: 'info' },
        bus: {
          kind: 'kafka',
          kafka: { brokers: kafka.brokers, client_id: 'mizugiwa-cli-test' },
          topics: { decisions: `test.respond.cli.${process.pid}.${Date.now()}` },
        },
      },
    );
    const child = spawn(process.execPath, [cli, 'respond', '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (b: Buffer) => {
      log += b.toString();
    });
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await until(
      async () => log.includes('"msg":"responding"'),
      120_000,
      () => log.slice(-2000),
    );
    expect(existsSync(`${map}.db`)).toBe(true);

    writeFileSync(map, `198.51.100.77 OK\n${readFileSync(map, 'latin1')}`);
    child.kill('SIGHUP');
    await until(
      async () => (await run([pf.postmap, '-q', '198.51.100.77', `hash:${map}`])).stdout.trim() === 'OK',
      30_000,
      () => log.slice(-2000),
    );
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(`${state}.lock`)).toBe(false);
    expect(existsSync(`${map}.mizugiwa-lock`)).toBe(false);
  }, 180_000);

  it('Kafka unreachable: the daemon keeps running, keeps the map and expires entries on time', async () => {
    const map = join(dir, 'nokafka-access');
    const state = join(dir, 'nokafka-state.json');
    const expires = Date.now() + 6000;
    writeFileSync(
      state,
      JSON.stringify({
        version: 1,
        written_at: new Date().toISOString(),
        entries: [
          { ...decision('192.0.2.9', 0), decision_id: 'x', expires_at: new Date(expires).toISOString() },
        ],
      }),
    );
    const cfg = config(
      'nokafka.yaml',
      { map_path: map, postmap: [pf.postmap], state_path: state },
      {
        log: { level: 'info' },
        bus: { kind: 'kafka', kafka: { brokers: ['127.0.0.1:1'], connection_timeout_ms: 500 } },
      },
    );
    const child = spawn(process.execPath, [cli, 'respond', '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (b: Buffer) => {
      log += b.toString();
    });
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const present = async () => (await run([pf.postmap, '-q', '192.0.2.9', `hash:${map}`])).code === 0;
    await until(present, 30_000, () => log.slice(-2000));
    await until(
      async () => !(await present()),
      15_000,
      () => log.slice(-2000),
    );
    expect(Date.now()).toBeLessThan(expires + 1000);
    expect(log).not.toContain('"msg":"responding"');
    await until(
      async () => log.includes('cannot read decisions from Kafka'),
      60_000,
      () => log.slice(-2000),
    );
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 180_000);
});
