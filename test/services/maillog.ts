// Waits for lines to appear in an MTA's log file (written by Postfix's postlogd or rsyslogd).
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls FILE until a line matches every pattern; returns that line or throws after timeoutMs. */
export async function waitForLogLine(
  file: string,
  patterns: (string | RegExp)[],
  timeoutMs = 15_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const matches = (line: string) =>
    patterns.every((p) => (typeof p === 'string' ? line.includes(p) : p.test(line)));
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const hit = text.split('\n').find(matches);
    if (hit !== undefined) return hit;
    if (Date.now() > deadline) {
      const tail = text.split('\n').slice(-10).join('\n');
      throw new Error(
        `no line matching ${patterns.map(String).join(' & ')} in ${file} after ${timeoutMs} ms; tail:\n${tail}`,
      );
    }
    await sleep(200);
  }
}
