import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/respond/entry.js';
import { MapError } from '../../src/respond/map-file.js';
import { createPostfixMap, type PostfixMapType } from '../../src/respond/postfix/access-map.js';
import { BEGIN } from '../../src/respond/section.js';
import { createSendmailMap } from '../../src/respond/sendmail/access-db.js';
import { loadServices } from '../services/services.js';
import { run, stateDir } from './helpers.js';

// Map files built by the real postmap and makemap (no MTA needed): what ends up in the database,
// what happens to the administrator's lines, and that a failing step leaves the old map in force.

const services = loadServices('postfix', 'sendmail');
const POSTMAP = services.postfix.postmap;
const MAKEMAP = services.sendmail.makemap;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function dir(name: string) {
  const d = stateDir(name);
  dirs.push(d);
  return d;
}

const entry = (target: string, reply = '450 4.7.1 Too many unknown recipients; try later'): Entry => ({
  target,
  reply,
  expires_at: Date.now() + 600_000,
  decision_id: `d-${target}`,
  detector: 'test',
  created_at: new Date().toISOString(),
});

function postfix(
  path: string,
  type: PostfixMapType,
  over: Partial<Parameters<typeof createPostfixMap>[0]> = {},
) {
  return createPostfixMap({ path, type, postmap: [POSTMAP], reload: null, timeoutMs: 10_000, ...over });
}
const q = async (type: string, path: string, key: string) =>
  (await run([POSTMAP, '-q', key, `${type}:${path}`])).stdout.trim();

describe.each(['hash', 'lmdb'] as const)('postfix %s: table', (type) => {
  it('holds addresses and /24 keys, keeps the administrator lines byte for byte, leaves no temp files', async () => {
    const d = dir(`map-${type}`);
    const path = join(d, 'access');
    const admin = '# mine\n198.51.100.9 OK\nlatin1 \xe9\xff bytes OK\n';
    writeFileSync(path, Buffer.from(admin, 'latin1'));
    const map = postfix(path, type);
    const r = await map.install([
      entry('192.0.2.7'),
      entry('203.0.113.0/24', '451 4.7.1 Slow down'),
      entry('2001:db8::25'),
    ]);
    expect(r).toMatchObject({ written: 3, skipped: [] });
    expect(await q(type, path, '2001:db8::25')).toBe('450 4.7.1 Too many unknown recipients; try later');
    expect(await q(type, path, '192.0.2.7')).toBe('450 4.7.1 Too many unknown recipients; try later');
    expect(await q(type, path, '203.0.113')).toBe('451 4.7.1 Slow down');
    expect(await q(type, path, '198.51.100.9')).toBe('OK');
    expect(readFileSync(path, 'latin1').startsWith(admin + BEGIN)).toBe(true);
    expect(readdirSync(d).sort()).toEqual(['access', `access.${type === 'hash' ? 'db' : 'lmdb'}`]);

    // Second rebuild: the section is replaced, not appended.
    await map.install([entry('192.0.2.8')]);
    expect(await q(type, path, '192.0.2.7')).toBe('');
    expect(await q(type, path, '192.0.2.8')).not.toBe('');
    expect(readFileSync(path, 'latin1').split(BEGIN)).toHaveLength(2);
  });
});

describe('postfix: failures leave the old map in force', () => {
  it('postmap failing (or missing) is a MapError; the old database still answers', async () => {
    const d = dir('map-fail');
    const path = join(d, 'access');
    await postfix(path, 'hash').install([entry('192.0.2.7')]);
    const dbBefore = statSync(`${path}.db`).ino;
    for (const postmap of [['false'], ['/nonexistent/postmap']]) {
      const err = await postfix(path, 'hash', { postmap })
        .install([entry('192.0.2.99')])
        .catch((e) => e);
      expect(err).toBeInstanceOf(MapError);
      expect(err.stage).toBe('build');
    }
    expect(statSync(`${path}.db`).ino).toBe(dbBefore);
    expect(await q('hash', path, '192.0.2.7')).not.toBe('');
    expect(readdirSync(d).sort()).toEqual(['access', 'access.db']);
  });

  it('a broken marker section is refused without touching the file', async () => {
    const d = dir('map-section');
    const path = join(d, 'access');
    writeFileSync(path, `${BEGIN}\n192.0.2.1 OK\n`);
    const err = await postfix(path, 'hash')
      .install([entry('192.0.2.7')])
      .catch((e) => e);
    expect(err).toBeInstanceOf(MapError);
    expect(err.stage).toBe('section');
    expect(readFileSync(path, 'utf8')).toBe(`${BEGIN}\n192.0.2.1 OK\n`);
    expect(existsSync(`${path}.db`)).toBe(false);
  });

  it('entries overlapping an administrator line are skipped (theirs wins)', async () => {
    const d = dir('map-hand');
    const path = join(d, 'access');
    writeFileSync(path, '192.0.2 OK\n');
    const map = postfix(path, 'hash');
    expect((await map.readHandManaged()).map((t) => t.text)).toEqual(['192.0.2.0/24']);
    const r = await map.install([entry('192.0.2.7'), entry('198.51.100.7')]);
    expect(r.skipped.map((e) => e.target)).toEqual(['192.0.2.7']);
    expect(await q('hash', path, '192.0.2.7')).toBe('');
    expect(await q('hash', path, '198.51.100.7')).not.toBe('');
  });
});

describe('postfix: an administrator saving the file during a rebuild', () => {
  it('loses nothing: the agent notices the change before its rename and starts over', async () => {
    const d = dir('map-race');
    const path = join(d, 'access');
    writeFileSync(path, '# mine\n');
    // A postmap that, the first time it builds, plays the administrator appending a line.
    const script = join(d, 'postmap-with-admin');
    writeFileSync(
      script,
      `#!/bin/sh\ncase "$1" in -q) ;; *) if [ ! -e ${d}/edited ]; then echo "198.51.100.1 OK" >> ${path}; touch ${d}/edited; fi ;; esac\nexec ${POSTMAP} "$@"\n`,
      { mode: 0o755 },
    );
    await postfix(path, 'hash', { postmap: [script] }).install([entry('192.0.2.7')]);
    expect(existsSync(join(d, 'edited'))).toBe(true);
    expect(readFileSync(path, 'latin1')).toContain('198.51.100.1 OK\n');
    expect(await q('hash', path, '198.51.100.1')).toBe('OK');
    expect(await q('hash', path, '192.0.2.7')).not.toBe('');
  });
});

describe('postfix cidr: table', () => {
  it('holds any prefix, and runs the reload command after the rename', async () => {
    const d = dir('map-cidr');
    const path = join(d, 'access.cidr');
    const marker = join(d, 'reloaded');
    const map = postfix(path, 'cidr', { reload: ['touch', marker] });
    await map.install([entry('192.0.2.7'), entry('198.51.100.0/22'), entry('2001:db8:5::/48')]);
    expect(await q('cidr', path, '192.0.2.7')).not.toBe('');
    expect(await q('cidr', path, '198.51.102.200')).not.toBe('');
    expect(await q('cidr', path, '198.51.104.1')).toBe('');
    expect(await q('cidr', path, '2001:db8:5:1::9')).not.toBe('');
    expect(existsSync(marker)).toBe(true);
  });

  it('a failing reload is a MapError (retried by the agent)', async () => {
    const d = dir('map-cidr-reload');
    const err = await postfix(join(d, 'access.cidr'), 'cidr', { reload: ['false'] })
      .install([entry('192.0.2.7')])
      .catch((e) => e);
    expect(err).toBeInstanceOf(MapError);
    expect(err.stage).toBe('reload');
  });
});

describe('sendmail access db', () => {
  it('Connect: keys for addresses and /24, dumped back by makemap -u; administrator lines kept', async () => {
    const d = dir('map-sendmail');
    const path = join(d, 'access');
    writeFileSync(path, 'Connect:198.51.100.9\tOK\nFrom:spam@example.com\tREJECT\n');
    const map = createSendmailMap({
      path,
      type: 'hash',
      makemap: [MAKEMAP],
      sendmailCf: null,
      timeoutMs: 10_000,
    });
    await map.install([entry('192.0.2.7'), entry('203.0.113.0/24'), entry('2001:db8::25')]);
    const dump = (await run([MAKEMAP, '-u', 'hash', path])).stdout;
    expect(dump).toContain('connect:ipv6:2001:db8::25\tERROR:4.7.1:');
    expect(dump).toContain(
      'connect:192.0.2.7\tERROR:4.7.1:"450 4.7.1 Too many unknown recipients; try later"',
    );
    expect(dump).toContain('connect:203.0.113\tERROR:4.7.1:');
    expect(dump).toContain('connect:198.51.100.9\tOK');
    expect(dump).toContain('from:spam@example.com\tREJECT');
    expect(readdirSync(d).sort()).toEqual(['access', 'access.db']);
  });

  it('makemap failing leaves the old db', async () => {
    const d = dir('map-sendmail-fail');
    const path = join(d, 'access');
    const good = createSendmailMap({
      path,
      type: 'hash',
      makemap: [MAKEMAP],
      sendmailCf: null,
      timeoutMs: 10_000,
    });
    await good.install([entry('192.0.2.7')]);
    const bad = createSendmailMap({
      path,
      type: 'hash',
      makemap: ['false'],
      sendmailCf: null,
      timeoutMs: 10_000,
    });
    await expect(bad.install([entry('192.0.2.8')])).rejects.toBeInstanceOf(MapError);
    const dump = (await run([MAKEMAP, '-u', 'hash', path])).stdout;
    expect(dump).toContain('connect:192.0.2.7\t');
    expect(dump).not.toContain('connect:192.0.2.8\t');
  });
});
