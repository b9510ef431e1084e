import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint } from '../../src/ship/checkpoint.js';
import { componentRegExp, discover, expand, rotatedSiblings, watchDirs } from '../../src/ship/discovery.js';
import {
  eventId,
  fileIdOf,
  fingerprintMatches,
  fingerprintOf,
  isCompressedHead,
  isCompressedName,
} from '../../src/ship/identity.js';
import { FileTail } from '../../src/ship/tail.js';
import { tmp } from './helpers.js';

describe('file identity', () => {
  it('fingerprints the first line, or the first N bytes of a longer one, and nothing before that', () => {
    expect(fingerprintOf(Buffer.from('abc'), 256)).toBeNull();
    const a = fingerprintOf(Buffer.from('first line\nsecond'), 256)!;
    expect(a.len).toBe(11);
    expect(fingerprintOf(Buffer.from('first line\nother second line'), 256)).toEqual(a);
    expect(fingerprintOf(Buffer.alloc(300, 0x61), 256)!.len).toBe(256);
  });

  it('checks a fingerprint against an open file', async () => {
    const dir = tmp('id');
    const p = join(dir, 'f');
    writeFileSync(p, 'hello\nworld\n');
    const fd = await open(p, 'r');
    const fp = fingerprintOf(readFileSync(p), 256)!;
    expect(await fingerprintMatches(fd, fp)).toBe(true);
    writeFileSync(p, 'hellO\nworld\n');
    expect(await fingerprintMatches(fd, fp)).toBe(false);
    await fd.close();
  });

  it('makes readable, deterministic ids', () => {
    const fp = fingerprintOf(Buffer.from('x\n'), 256)!;
    const id = fileIdOf(2049, 1234, fp);
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(fileIdOf(2049, 1234, fp)).toBe(id);
    expect(fileIdOf(2049, 1235, fp)).not.toBe(id);
    expect(eventId('mx1', id, 42)).toBe(`mx1:${id}:42`);
  });

  it('knows compressed rotations by name and by magic number', () => {
    for (const n of ['maillog.1.gz', 'mail.log.2.bz2', 'x.xz', 'x.zst', 'x.lz4'])
      expect(isCompressedName(n)).toBe(true);
    for (const n of ['maillog', 'maillog.1', 'maillog-20261127', 'mail.log.0'])
      expect(isCompressedName(n)).toBe(false);
    expect(isCompressedHead(gzipSync('x'))).toBe(true);
    expect(isCompressedHead(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]))).toBe(true);
    expect(isCompressedHead(Buffer.from('Nov 27 21:08:16 mx1 postfix/smtpd[1]: connect'))).toBe(false);
  });
});

describe('discovery', () => {
  it('matches path components like a shell', () => {
    expect(componentRegExp('maillog*').test('maillog.1')).toBe(true);
    expect(componentRegExp('mail?log').test('mail.log')).toBe(true);
    expect(componentRegExp('mail.[0-9]').test('mail.7')).toBe(true);
    expect(componentRegExp('mail.[!0-9]').test('mail.7')).toBe(false);
    expect(componentRegExp('a.b').test('axb')).toBe(false);
  });

  it('expands globs in any component, skips dot files and compressed rotations', async () => {
    const dir = tmp('glob');
    for (const d of ['mx1', 'mx2', 'other']) mkdirSync(join(dir, d));
    for (const f of ['mx1/maillog', 'mx1/maillog.1', 'mx1/maillog.2.gz', 'mx2/maillog', 'mx2/.maillog.swp'])
      writeFileSync(join(dir, f), '');
    expect(await discover([join(dir, 'mx*/maillog*')])).toEqual(
      ['mx1/maillog', 'mx1/maillog.1', 'mx2/maillog'].map((f) => join(dir, f)),
    );
    expect(await expand(join(dir, 'nothing*'))).toEqual([]);
    expect(await expand(join(dir, 'not-yet'))).toEqual([join(dir, 'not-yet')]);
    expect(watchDirs([join(dir, 'mx*/maillog*'), join(dir, 'mx1/maillog')])).toEqual([dir, join(dir, 'mx1')]);
    expect(await rotatedSiblings(join(dir, 'mx1/maillog'))).toEqual([join(dir, 'mx1/maillog.1')]);
  });

  it('follows a symlinked log path', async () => {
    const dir = tmp('glob');
    writeFileSync(join(dir, 'real.log'), '');
    symlinkSync(join(dir, 'real.log'), join(dir, 'mail.log'));
    expect(await discover([join(dir, 'mail.*')])).toEqual([join(dir, 'mail.log')]);
  });
});

describe('checkpoint', () => {
  const entry = {
    file_id: '0123456789abcdef',
    path: '/var/log/maillog',
    origin_path: '/var/log/maillog',
    dev: 2049,
    ino: 77,
    fp: 'ab'.repeat(32),
    fp_len: 80,
    offset: 123456,
    updated_at: '2026-11-27T21:00:00.000Z',
  };

  it('round-trips, replaces atomically and leaves no temp file', async () => {
    const dir = tmp('cp');
    const p = join(dir, 'sub', 'checkpoint.json');
    expect(await readCheckpoint(p)).toBeNull();
    const cp = { version: 1 as const, host: 'mx1', written_at: 'now', files: [entry] };
    await writeCheckpoint(p, cp);
    await writeCheckpoint(p, { ...cp, files: [{ ...entry, offset: 999 }] });
    expect((await readCheckpoint(p))!.files[0]!.offset).toBe(999);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['checkpoint.json']);
  });

  it('refuses a damaged or foreign file with a message that says what to do', async () => {
    const dir = tmp('cp');
    const p = join(dir, 'checkpoint.json');
    writeFileSync(p, '{"version":1,');
    await expect(readCheckpoint(p)).rejects.toThrow(/not valid JSON.*move it away/);
    writeFileSync(p, JSON.stringify({ version: 2, files: [] }));
    await expect(readCheckpoint(p)).rejects.toThrow(/unsupported version 2/);
    writeFileSync(p, JSON.stringify({ version: 1, files: [{ ...entry, offset: -1 }] }));
    await expect(readCheckpoint(p)).rejects.toThrow(/files\[0\] is malformed/);
  });
});

describe('FileTail', () => {
  const opts = { maxLineBytes: 1024, fingerprintBytes: 256, chunkBytes: 4096 };

  it('notices a copytruncate that happened between taking the fingerprint and the first read', async () => {
    const dir = tmp('tail');
    const p = join(dir, 'maillog');
    writeFileSync(p, 'old first line\nold second\n');
    const tail = (await FileTail.open(p, 0, opts))!;
    tail.fp = fingerprintOf(await tail.head(), 256);
    writeFileSync(p, 'new first line\nnew second\n'); // truncate + rewrite, same inode
    expect((await tail.read()).status).toBe('truncated');
    await tail.close();
  });

  it('reads through its descriptor after the path is renamed, and reports growth at EOF', async () => {
    const dir = tmp('tail');
    const p = join(dir, 'maillog');
    writeFileSync(p, 'a\n');
    const tail = (await FileTail.open(p, 0, opts))!;
    expect((await tail.read()).status).toBe('identified');
    tail.fileId = tail.ownFileId();
    const { renameSync, appendFileSync } = await import('node:fs');
    renameSync(p, `${p}.1`);
    appendFileSync(`${p}.1`, 'b\n');
    const r = await tail.read();
    expect(r.status).toBe('data');
    expect(r.lines.map((l) => l.data.toString())).toEqual(['a', 'b']);
    expect((await tail.read()).status).toBe('eof');
    await tail.close();
  });
});
