import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { defaultDetectConfig } from '../../src/detect/config.js';
import type { Decision } from '../../src/decision/decision.js';
import { type ReplayRecord, replay } from '../../src/detect/replay.js';

// A Sendmail harvest as the real Sendmail logs it: each `<rcpt>... User unknown` comes before the
// from= line (nrcpts=0) that names the client. The join at the edge gives the rejects their client,
// so dha_source decides; the nrcpts=0 envelopes are not counted as accepted mail.
function harvest(ip: string, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const q = `6ARLso${String(i).padStart(2, '0')}025258`;
    const t = `2026-11-27T21:54:${String(10 + i * 2).padStart(2, '0')}`;
    out.push(`${t}.569360+00:00 mx sendmail[25258]: ${q}: <nosuch${i}@example.test>... User unknown`);
    out.push(
      `${t}.596630+00:00 mx sendmail[25258]: ${q}: from=<probe@client.test>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=[${ip}]`,
    );
  }
  return `${out.join('\n')}\n`;
}

async function decisions(text: string): Promise<Decision[]> {
  const out: ReplayRecord[] = [];
  await replay(
    [{ name: 'maillog', stream: Readable.from([Buffer.from(text)]) }],
    defaultDetectConfig(),
    {},
    (r) => {
      out.push(r);
    },
  );
  return out.filter((r): r is ReplayRecord & Decision & { type: 'decision' } => r.type === 'decision');
}

describe('replay of a Sendmail harvest', () => {
  it('decides the client at its 10th unknown recipient, with 100% unknown share', async () => {
    const d = await decisions(harvest('203.0.113.50', 12));
    expect(d).toHaveLength(1);
    expect(d[0]!.target).toBe('203.0.113.50');
    expect(d[0]!.detector).toBe('dha_source');
    expect(d[0]!.evidence.counts.user_unknown).toBe(10);
    expect(d[0]!.reason).toMatch(/100% of 10/);
    // Log time: created at the 10th reject's from= line (21:54:28), expiring an hour later.
    expect(d[0]!.created_at.startsWith('2026-11-27T21:54:28')).toBe(true);
    expect(Date.parse(d[0]!.expires_at) - Date.parse(d[0]!.created_at)).toBe(3_600_000);
  });

  it('decides nothing below the threshold', async () => {
    expect(await decisions(harvest('203.0.113.51', 9))).toEqual([]);
  });
});
