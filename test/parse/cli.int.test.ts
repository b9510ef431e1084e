// `mizugiwa parse` as a process (the built CLI: `npm test` builds first): the exact output contract,
// exit codes, and a reader that goes away early.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MailEvent } from '../../src/event/mail-event.js';
import { repoRoot } from '../services/services.js';

const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

describe('mizugiwa parse (process)', () => {
  it('is built', () => {
    expect(existsSync(cli), `${cli} missing: run npm run build`).toBe(true);
  });

  it('prints exactly one JSON object per stdin line, in order, and --stats on stderr', () => {
    const input = Buffer.concat([
      Buffer.from('Nov 27 10:00:00 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]\r\n\n\0\0garbage\n'),
      Buffer.from([0xff, 0xfe, 0x0a]),
      Buffer.from('2026-11-27 10:02:00 1TrBfO-0003Wx-Nj Completed'),
    ]);
    const res = spawnSync(
      process.execPath,
      [cli, 'parse', '--stats', '--year', '2026', '--timezone', 'UTC', '--host', 'ex'],
      {
        input,
        encoding: 'utf8',
      },
    );
    expect(res.status).toBe(0);
    const out = res.stdout.split('\n');
    expect(out.pop()).toBe('');
    const events = out.map((l) => JSON.parse(l) as MailEvent);
    expect(events.map((e) => e.kind)).toEqual(['connect', 'unknown', 'unknown', 'unknown', 'removed']);
    expect(events[0]!.ts).toBe('2026-11-27T10:00:00+00:00');
    expect(events[2]!.raw).toBe('\uFFFD\uFFFDgarbage');
    expect(events[4]!.host).toBe('ex');
    expect(JSON.parse(res.stderr.trim())).toEqual({
      lines: 5,
      kinds: { connect: 1, unknown: 3, removed: 1 },
    });
  });

  it('exits 2 with one line for an unreadable file or a bad flag, before any output', () => {
    for (const args of [
      ['parse', '/nonexistent/mail.log'],
      ['parse', '--year', 'abc'],
      ['parse', '--timezone', 'Nowhere/X'],
    ]) {
      const res = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input: '' });
      expect(res.status, args.join(' ')).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('ends quietly (exit 0) when its reader closes the pipe early', async () => {
    const child = spawn(process.execPath, [cli, 'parse', '--year', '2026'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.once('data', () => child.stdout.destroy());
    const line = 'Nov 27 10:00:00 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]\n';
    const block = line.repeat(5000);
    const feed = () => {
      while (child.stdin.writable && child.stdin.write(block)) {}
    };
    child.stdin.on('drain', feed);
    child.stdin.on('error', () => {});
    feed();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(stderr).toBe('');
  });
});
