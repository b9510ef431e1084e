import { describe, expect, it } from 'vitest';
import { describeFailure, execCommand } from '../../src/respond/exec.js';

describe('execCommand', () => {
  it('feeds stdin and collects stdout', async () => {
    const r = await execCommand(['cat'], { input: 'a\tb\n', timeoutMs: 5000 });
    expect(r).toMatchObject({ code: 0, stdout: 'a\tb\n' });
  });

  it('a missing command is a result naming it, not an exception', async () => {
    const r = await execCommand(['/nonexistent/postmap', 'hash:x'], { timeoutMs: 5000 });
    expect(r.spawnError).toBe('command not found: /nonexistent/postmap');
    expect(describeFailure(['/nonexistent/postmap', 'hash:x'], r)).toBe(
      '/nonexistent/postmap hash:x: command not found: /nonexistent/postmap',
    );
  });

  it('kills a command past its time limit', async () => {
    const r = await execCommand(['sleep', '10'], { timeoutMs: 100 });
    expect(r.signal).toBe('SIGKILL');
    expect(describeFailure(['sleep', '10'], r)).toMatch(/killed by SIGKILL/);
  });

  it('reports the exit code and the end of stderr', async () => {
    const r = await execCommand(['sh', '-c', 'echo "postmap: fatal: bad" >&2; exit 1'], { timeoutMs: 5000 });
    expect(describeFailure(['postmap', 'hash:x'], r)).toBe(
      'postmap hash:x exited with 1: postmap: fatal: bad',
    );
  });

  it('a command that does not read its stdin is fine', async () => {
    const r = await execCommand(['true'], { input: 'x'.repeat(1 << 20), timeoutMs: 5000 });
    expect(r.code).toBe(0);
  });
});
