import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultDetectConfig } from '../../src/detect/config.js';
import { fileInputs, type ReplayRecord, replay } from '../../src/detect/replay.js';
import { loadServices } from '../services/services.js';

// `replay` over the logs the real Postfix and Sendmail of scripts/services.sh wrote: every line
// read, every line's time understood, output limited to well-formed detections and decisions.

const { postfix, sendmail } = loadServices('postfix', 'sendmail');

describe('replay over real MTA logs', () => {
  it('reads the Postfix and Sendmail maillogs merged by time', async () => {
    const files = [postfix.maillog, sendmail.maillog];
    const lines = files.map(
      (f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .filter((l) => l !== '').length,
    );
    const out: ReplayRecord[] = [];
    const stats = await replay(fileInputs(files), defaultDetectConfig(), {}, (r) => {
      out.push(r);
    });
    expect(stats.lines).toBe(lines[0]! + lines[1]!);
    expect(stats.events).toBeGreaterThan(0);
    expect(stats.no_time).toBe(0);
    for (const r of out) {
      expect(['detection', 'decision']).toContain(r.type);
      // the test MTAs are fed from loopback, which the default whitelist covers
      if (r.type === 'decision') expect(r.reply).toMatch(/^4/);
    }
    expect(out.filter((r) => r.type === 'decision')).toEqual([]);
  });
});
