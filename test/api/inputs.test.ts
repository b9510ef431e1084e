import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenTable } from '../../src/api/auth.js';
import { apiSchema } from '../../src/api/config.js';
import { InputError } from '../../src/api/errors.js';
import { parseRange, parseTime, parseWindow } from '../../src/api/time.js';
import { Whitelist } from '../../src/api/whitelist.js';

const NOW = Date.parse('2026-11-27T12:00:00Z');

describe('time parameters', () => {
  it('ISO 8601 with and without offset (UTC), ms since epoch, relative to now', () => {
    expect(parseTime('2026-11-27T10:15:00Z', 'from', NOW)).toBe(Date.parse('2026-11-27T10:15:00Z'));
    expect(parseTime('2026-11-27T11:15:00+01:00', 'from', NOW)).toBe(Date.parse('2026-11-27T10:15:00Z'));
    expect(parseTime('2026-11-27 10:15:00', 'from', NOW)).toBe(Date.parse('2026-11-27T10:15:00Z'));
    expect(parseTime('2026-11-27', 'from', NOW)).toBe(Date.parse('2026-11-27T00:00:00Z'));
    expect(parseTime(String(NOW), 'from', NOW)).toBe(NOW);
    expect(parseTime('now', 'to', NOW)).toBe(NOW);
    expect(parseTime('now-15m', 'from', NOW)).toBe(NOW - 15 * 60_000);
    expect(parseTime('-2h', 'from', NOW)).toBe(NOW - 2 * 3_600_000);
    expect(parseWindow('7d')).toBe(7 * 86_400_000);
  });

  it('garbage is an InputError naming the field', () => {
    for (const bad of [
      'yesterday',
      '2026-13-45T00:00:00Z',
      '-5y',
      'now+1h',
      '',
      '1e9',
      '2026-11-27T10:15:00Q',
    ]) {
      expect(() => parseTime(bad, 'from', NOW)).toThrow(InputError);
      expect(() => parseTime(bad, 'from', NOW)).toThrow(/^from: /);
    }
    expect(() => parseWindow('0m')).toThrow(/between/);
    expect(() => parseWindow('999999d')).toThrow(/between/);
    expect(() => parseRange({ from: 'now', to: '-1h' }, NOW)).toThrow(/from is after to/);
  });

  it('a default span opens the range before `to`', () => {
    expect(parseRange({ to: '2026-11-27T10:00:00Z' }, NOW, 3_600_000)).toEqual({
      from: '2026-11-27T09:00:00.000Z',
      to: '2026-11-27T10:00:00.000Z',
    });
  });
});

describe('tokens', () => {
  const table = new TokenTable(
    apiSchema.parse({
      tokens: [
        { name: 'alice', token: 'alice-secret-0123456789' },
        { name: 'ro', token: 'ro-secret-0123456789ab', write: false },
      ],
    }).tokens,
  );

  it('names the operator of a known token; refuses unknown ones and read-only writes', () => {
    expect(table.check('Bearer alice-secret-0123456789', 'write')).toEqual({
      ok: true,
      operator: { name: 'alice', write: true },
    });
    expect(table.check('bearer   alice-secret-0123456789  ', 'write').ok).toBe(true);
    expect(table.check(undefined, 'none')).toEqual({ ok: true, operator: null });
    expect(table.check(undefined, 'write')).toMatchObject({ ok: false, status: 401 });
    expect(table.check('Bearer nope-nope-nope-nope', 'none')).toMatchObject({ ok: false, status: 401 });
    expect(table.check('Basic YWxpY2U6eA==', 'read')).toMatchObject({ ok: false, status: 401 });
    expect(table.check('Bearer ro-secret-0123456789ab', 'read').ok).toBe(true);
    expect(table.check('Bearer ro-secret-0123456789ab', 'write')).toMatchObject({ ok: false, status: 403 });
  });

  it('without tokens every write is refused with 403', () => {
    expect(new TokenTable([]).check(undefined, 'write')).toMatchObject({ ok: false, status: 403 });
  });

  it('config: short tokens, duplicate names and bad listen addresses are errors', () => {
    expect(() => apiSchema.parse({ tokens: [{ name: 'a', token: 'short' }] })).toThrow(/at least 16/);
    expect(() =>
      apiSchema.parse({
        tokens: [
          { name: 'a', token: 'aaaaaaaaaaaaaaaa1' },
          { name: 'a', token: 'aaaaaaaaaaaaaaaa2' },
        ],
      }),
    ).toThrow(/unique/);
    expect(() => apiSchema.parse({ listen: 'localhost' })).toThrow(/HOST:PORT/);
    expect(() => apiSchema.parse({ listen: '127.0.0.1:99999' })).toThrow(/port/);
    expect(() => apiSchema.parse({ default_reply: '550 5.7.1 Go away' })).toThrow(/4xx/);
    expect(apiSchema.parse({}).listen).toBe('127.0.0.1:8426');
  });
});

describe('whitelist file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mz-wl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const open = (path: string, configured: Array<{ target: string; section: string }> = []) =>
    Whitelist.open({ path, configured, topic: 't' });

  it('a missing file is an empty list; entries survive a reopen, canonical', async () => {
    const path = join(dir, 'a', 'whitelist.json');
    const w = await open(path);
    expect(w.list()).toEqual([]);
    await w.add('2001:DB8:0:0::/64', 'partner', 'alice', new Date('2026-11-27T12:00:00Z'));
    const again = await open(path);
    expect(again.list()).toEqual([
      {
        target: '2001:db8::/64',
        reason: 'partner',
        added_by: 'operator:alice',
        added_at: '2026-11-27T12:00:00.000Z',
        source: 'api',
      },
    ]);
  });

  it('a corrupt file or a bad entry is an error naming the file; a bad configured entry names its section', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"version":1,"entries":[{"target":"300.1.1.1"');
    await expect(open(bad)).rejects.toThrow(/bad\.json is not JSON/);
    writeFileSync(bad, JSON.stringify({ version: 2, entries: [] }));
    await expect(open(bad)).rejects.toThrow(/not a version 1 whitelist/);
    writeFileSync(bad, JSON.stringify({ version: 1, entries: [{ target: '300.1.1.1', reason: 'x' }] }));
    await expect(open(bad)).rejects.toThrow(/bad\.json: not an IPv4/);
    await expect(
      open(join(dir, 'none.json'), [{ target: '10.0.0.0/33', section: 'respond.safety.whitelist' }]),
    ).rejects.toThrow(/respond\.safety\.whitelist whitelist: prefix length/);
  });

  it('refuses /0 and garbage; configured entries cannot be removed here', async () => {
    const w = await open(join(dir, 'c.json'), [
      { target: '192.0.2.0/24', section: 'detect.policy.whitelist' },
    ]);
    await expect(w.add('0.0.0.0/0', 'x', 'a', new Date())).rejects.toThrow(/every address/);
    await expect(w.add('example.org', 'x', 'a', new Date())).rejects.toThrow(/not an IPv4/);
    await expect(w.remove('192.0.2.0/24')).rejects.toThrow(/configuration file/);
    await expect(w.remove('198.51.100.0/24')).rejects.toThrow(/not on the runtime whitelist/);
  });
});
