import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmp } from './helpers.js';

const cli = join(import.meta.dirname, '../../dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

describe('mizugiwa ship (CLI)', () => {
  it('documents itself', () => {
    const r = run('ship', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--config <file>/);
    expect(r.stdout).toMatch(/SIGHUP/);
  });

  it('refuses the memory bus and empty file lists with one line, exit 2', () => {
    const dir = tmp('cli');
    writeFileSync(join(dir, 'mem.yaml'), 'bus: { kind: memory }\n');
    const r = run('ship', '--config', join(dir, 'mem.yaml'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^mizugiwa: .*bus\.kind: .*mizugiwa run/m);
    writeFileSync(join(dir, 'none.yaml'), 'bus: { kind: kafka }\nship: { files: [] }\n');
    expect(run('ship', '--config', join(dir, 'none.yaml')).stderr).toMatch(/ship\.files: no files to follow/);
    writeFileSync(join(dir, 'typo.yaml'), 'bus: { kind: kafka }\nship: { start_at: middle }\n');
    const t = run('ship', '--config', join(dir, 'typo.yaml'));
    expect(t.status).toBe(2);
    expect(t.stderr).toMatch(/ship\.start_at/);
  });

  it('refuses a damaged checkpoint before connecting to anything', () => {
    const dir = tmp('cli');
    mkdirSync(join(dir, 'var', 'ship'), { recursive: true });
    writeFileSync(join(dir, 'var', 'ship', 'checkpoint.json'), '{"version":1,"files":[');
    writeFileSync(
      join(dir, 'c.yaml'),
      `data_dir: ${join(dir, 'var')}\nbus: { kind: kafka, kafka: { brokers: ['127.0.0.1:1'] } }\nship: { files: [${join(dir, 'maillog')}] }\n`,
    );
    const r = run('ship', '--config', join(dir, 'c.yaml'));
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('mizugiwa:'))).toHaveLength(1);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    expect(r.stderr).toMatch(/checkpoint .* is not valid JSON .*move it away/);
  });
});
