import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'mizugiwa-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const cli = join(import.meta.dirname, '../../dist/src/cli/main.js');

describe('config', () => {
  it('fills in documented defaults', () => {
    const cfg = loadConfig(undefined, {});
    expect(cfg.bus.kind).toBe('memory');
    expect(cfg.clickhouse.backend).toBe('embedded');
    expect(cfg.bus.topics.decisions).toBe('mail.decisions');
  });

  it('reads a YAML file and keeps defaults for the rest', () => {
    const cfg = loadConfig(
      file('ok.yaml', 'bus:\n  kind: kafka\n  kafka:\n    brokers: [127.0.0.1:19092]\n'),
      {},
    );
    expect(cfg.bus.kind).toBe('kafka');
    expect(cfg.bus.kafka.brokers).toEqual(['127.0.0.1:19092']);
    expect(cfg.bus.kafka.client_id).toBe('mizugiwa');
  });

  it('refuses an unknown key, naming it', () => {
    expect(() => loadConfig(file('unknown.yaml', 'bus:\n  kafka:\n    brokerz: [a]\n'), {})).toThrow(
      /bus\.kafka\.brokerz: unknown key/,
    );
  });

  it('refuses a wrong type, naming the key and what it got', () => {
    expect(() => loadConfig(file('type.yaml', 'bus:\n  partitions: many\n'), {})).toThrow(
      /bus\.partitions: expected number, got the string "many"/,
    );
  });

  it('refuses a missing file and bad YAML', () => {
    expect(() => loadConfig(join(dir, 'nope.yaml'), {})).toThrow(ConfigError);
    expect(() => loadConfig(join(dir, 'nope.yaml'), {})).toThrow(/config file not found/);
    expect(() => loadConfig(file('bad.yaml', 'bus: [\n'), {})).toThrow(/not valid YAML/);
  });

  it('applies MIZUGIWA_* environment overrides over the file', () => {
    const cfg = loadConfig(file('env.yaml', 'bus:\n  kind: memory\n'), {
      MIZUGIWA_BUS__KIND: 'kafka',
      MIZUGIWA_BUS__PARTITIONS: '8',
      MIZUGIWA_BUS__KAFKA__BROKERS: '[h1:9092, h2:9092]',
      MIZUGIWA_HOST: '12345',
    });
    expect(cfg.bus.kind).toBe('kafka');
    expect(cfg.bus.partitions).toBe(8);
    expect(cfg.bus.kafka.brokers).toEqual(['h1:9092', 'h2:9092']);
    expect(cfg.host).toBe('12345');
  });

  it('refuses an environment variable that names no key', () => {
    expect(() => loadConfig(undefined, { MIZUGIWA_BUSS__KIND: 'x' })).toThrow(/MIZUGIWA_BUSS__KIND/);
  });
});

// Each case starts the CLI: allow for a loaded machine.
describe('mizugiwa config (CLI)', { timeout: 60_000 }, () => {
  for (const [what, path, pattern] of [
    [
      'unknown key',
      () => file('c1.yaml', 'clickhouse:\n  bakend: server\n'),
      /clickhouse\.bakend: unknown key/,
    ],
    [
      'wrong type',
      () => file('c2.yaml', 'clickhouse:\n  request_timeout_ms: "soon"\n'),
      /request_timeout_ms/,
    ],
    ['missing file', () => join(dir, 'missing.yaml'), /config file not found/],
  ] as const) {
    it(`${what}: one line on stderr, exit code 2`, () => {
      const r = spawnSync(process.execPath, [cli, 'config', 'check', path()], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    });
  }

  it('config defaults prints valid YAML with descriptions that loads back', () => {
    const out = execFileSync(process.execPath, [cli, 'config', 'defaults'], { encoding: 'utf8' });
    expect(out).toContain('# parsed MailEvents, keyed by client IP');
    const p = file('defaults.yaml', out);
    expect(loadConfig(p, {})).toEqual(parse(out));
  });
});
