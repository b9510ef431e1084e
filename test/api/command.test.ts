import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// `mizugiwa api` as a process (the built CLI, as `npm test` builds it): help, configuration
// mistakes as one line and exit 2, and a real start, request and SIGTERM.

const cli = join(import.meta.dirname, '../../dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'mz-api-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const good = join(dir, 'good.yaml');
writeFileSync(
  good,
  `data_dir: ${join(dir, 'data')}\nclickhouse: { path: ${join(dir, 'chdb')}, database: mz }\napi:\n  listen: 127.0.0.1:0\n`,
);

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('mizugiwa api', { timeout: 120_000 }, () => {
  it('--help names the routes', () => {
    const r = run(['api', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\/api\/v1\/feed\/postfix/);
    expect(r.stdout).toMatch(/--listen/);
  });

  it('configuration mistakes are one line and exit 2', () => {
    const missing = run(['api', '--config', join(dir, 'nope.yaml')]);
    expect([missing.status, missing.stderr.trim()]).toEqual([
      2,
      `mizugiwa: config file not found: ${join(dir, 'nope.yaml')}`,
    ]);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'api:\n  tokens: [{ name: ops, token: short }]\n  default_reply: "550 5.7.1 no"\n');
    const r = run(['api', '--config', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/api\.tokens\.0\.token: a token must be at least 16 characters/);
    expect(r.stderr).toMatch(/api\.default_reply: must be a 4xx reply/);
    const listen = run(['api', '--config', good, '--listen', 'nonsense']);
    expect([listen.status, listen.stderr.trim()]).toEqual([
      2,
      'mizugiwa: --listen: expected HOST:PORT, got "nonsense"',
    ]);
  });

  it('starts, answers /health, and stops on SIGTERM with exit 0', async () => {
    const child = spawn(process.execPath, [cli, 'api', '--config', good], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no 'api listening' line:\n${stderr}`)), 90_000);
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString('utf8');
        const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)".*"msg":"api listening"/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}:\n${stderr}`)));
    });
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', writes: false });
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', (c) => resolve(c));
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
  }, 120_000);
});
